"""Settings are checked once, name the variable at fault, and never show a token."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.config import ConfigError, Settings

BASE = {"USEAPI_TOKEN": "user:1234-secret-token"}


def load(**extra: str) -> Settings:
    return Settings.from_env({**BASE, **extra}, env_file=None)


def test_defaults() -> None:
    settings = load()
    assert settings.useapi_base_url == "https://api.useapi.net/v1/google-flow"
    assert settings.database.kind == "sqlite"
    assert settings.database.path == Path("data/bot.sqlite3")
    assert settings.limits.queued_per_user == 10
    assert settings.limits.running_per_user == 2
    assert (settings.tuning.account_min_concurrency, settings.tuning.account_max_concurrency) == (
        3,
        20,
    )
    assert settings.models.default.id == "nano-banana-2-lite"


def test_tokens_never_show() -> None:
    settings = load(DISCORD_TOKEN="discord-secret", TELEGRAM_TOKEN="123:telegram-secret")
    shown = repr(settings) + str(settings)
    for secret in ("user:1234-secret-token", "discord-secret", "telegram-secret"):
        assert secret not in shown
    assert settings.telegram_token is not None
    assert settings.telegram_token.reveal() == "123:telegram-secret"


def test_missing_token_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="USEAPI_TOKEN is not set"):
        Settings.from_env({}, env_file=None)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BOT_QUEUED_PER_USER", "ten", "BOT_QUEUED_PER_USER must be a number"),
        ("BOT_RUNNING_PER_USER", "0", "BOT_RUNNING_PER_USER must be at least 1"),
        ("BOT_ADMINS", "discord:abc", "BOT_ADMINS: 'discord:abc' should look like"),
        ("BOT_ADMINS", "slack:1", "should look like discord:123456"),
        ("DATABASE_URL", "mysql://u:pw@host/db", "DATABASE_URL must look like sqlite:///"),
        ("DATABASE_URL", "sqlite:///", "or postgresql://user:password@host:5432/dbname"),
        ("DATABASE_URL", "postgresql://u@host/db?colour=red", "not a valid PostgreSQL URL"),
        ("BOT_DEFAULT_MODEL", "dalle", "BOT_DEFAULT_MODEL 'dalle' is not a known model"),
        ("BOT_DEFAULT_ASPECT_RATIO", "auto", "BOT_DEFAULT_ASPECT_RATIO 'auto' is not one of"),
        ("BOT_MODERATION_FALLBACK", "maybe", "BOT_MODERATION_FALLBACK must be true or false"),
        ("BOT_MODELS_FILE", "/nonexistent.toml", "BOT_MODELS_FILE: cannot read"),
        ("BOT_LOG_LEVEL", "loud", "BOT_LOG_LEVEL must be"),
        ("BOT_UPSTREAM_MEDIA_HOSTS", "https://cdn.example", "BOT_UPSTREAM_MEDIA_HOSTS: 'https:"),
        ("BOT_UPSTREAM_MEDIA_HOSTS", "cdn.example:8443", "should be a host name"),
        ("BOT_UPSTREAM_MEDIA_HOSTS", "*", "should be a host name"),
        ("BOT_UPSTREAM_MEDIA_HOSTS", "cdn.*.example", "should be a host name"),
        ("BOT_HTTP_LISTEN", "8080", "BOT_HTTP_LISTEN must look like host:port"),
        ("BOT_HTTP_LISTEN", "0.0.0.0:99999", "BOT_HTTP_LISTEN must look like host:port"),
        ("BOT_LOG_FORMAT", "yaml", "BOT_LOG_FORMAT must be text or json"),
        ("BOT_RETENTION_DAYS", "-1", "BOT_RETENTION_DAYS must be at least 0"),
        ("BOT_DEFAULT_LANGUAGE", "tlh", "BOT_DEFAULT_LANGUAGE must be one of en, "),
        ("WIREFLOW_API_KEY", "sk-wf-123", "WIREFLOW_API_KEY and WIREFLOW_WORKFLOW_ID go together"),
        ("WIREFLOW_WORKFLOW_ID", "cm1", "WIREFLOW_API_KEY and WIREFLOW_WORKFLOW_ID go together"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(**{name: value})


@pytest.mark.parametrize(
    "name", ["USEAPI_TOKEN", "TELEGRAM_TOKEN", "DISCORD_TOKEN", "GEMINI_API_KEY", "NBPRO_API_KEY"]
)
def test_a_secret_too_short_to_be_one_is_refused_without_echoing_it(name: str) -> None:
    # Logs lose every secret: a token "t" would take every "t" from every line.
    with pytest.raises(ConfigError, match=f"{name} is 3 characters long") as caught:
        load(**{name: "xq7"})
    assert "xq7" not in str(caught.value)


@pytest.mark.parametrize(
    "value", ["s3cret-1234", "has space in it 0123", "x" * 257, "new\nline-0123456789"]
)
def test_a_webhook_secret_telegram_would_refuse_or_anyone_could_guess_is_refused(
    value: str,
) -> None:
    with pytest.raises(ConfigError, match="16 to 256 letters, digits") as caught:
        load(TELEGRAM_WEBHOOK_SECRET=value)
    assert value not in str(caught.value)


def test_a_good_webhook_secret_is_kept_secret() -> None:
    value = "Ab_-" * 4
    settings = load(TELEGRAM_WEBHOOK_SECRET=value)
    assert settings.telegram_webhook_secret is not None
    assert settings.telegram_webhook_secret.reveal() == value
    assert value not in repr(settings)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:hunter2@host/db",
        "postgresql://u:hunter2@[::1/db",  # libpq quotes a URL it can't parse, whole
        "postgresql://u:hunter2@host/db?colour=red",
        "postgresql://u@host/db?password=hunter2&colour=red",
        "postgres://u:hunter%32@ho st/db",  # percent-encoded: hunter2 once decoded
    ],
)
def test_database_url_password_is_not_echoed(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(DATABASE_URL=url)
    shown = (
        str(caught.value) + repr(caught.value) + "".join(traceback.format_exception(caught.value))
    )
    assert "hunter" not in shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bot:hunter2@db.example:5432/bot",
        "postgres://bot:hunter2@db.example/bot?sslmode=require",
        "postgresql://bot@/bot?host=/var/run/postgresql&password=hunter2",
    ],
)
def test_a_postgresql_url_is_taken_and_never_shown(url: str) -> None:
    settings = load(DATABASE_URL=url)
    assert settings.database.kind == "postgresql"
    assert settings.database.reveal() == url
    shown = repr(settings) + str(settings) + str(settings.database)
    assert "hunter2" not in shown
    assert "bot:***@" in shown or "password=***" in shown


def test_media_hosts_default_to_googles_and_can_be_set() -> None:
    assert load().upstream_media_hosts == (
        "storage.googleapis.com",
        "flow-content.google",
        "*.googleusercontent.com",
    )
    hosts = load(BOT_UPSTREAM_MEDIA_HOSTS=" CDN.Example. , *.media.example ").upstream_media_hosts
    assert hosts == ("cdn.example", "*.media.example")


def test_admins_and_allowlists() -> None:
    settings = load(BOT_ADMINS="discord:123, telegram:-456", BOT_ALLOWED_CHATS="telegram:-100")
    assert settings.admins == (("discord", "123"), ("telegram", "-456"))
    assert settings.allowed_chats == frozenset({"telegram:-100"})


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("USEAPI_TOKEN=from-file\nBOT_QUEUED_PER_USER=4\nBOT_RUNNING_PER_USER=3\n")
    settings = Settings.from_env({"BOT_QUEUED_PER_USER": "7"}, env_file=env)
    assert settings.useapi_token is not None
    assert settings.useapi_token.reveal() == "from-file"
    assert settings.limits.queued_per_user == 7
    assert settings.limits.running_per_user == 3


def test_operating_settings() -> None:
    assert (load().http_listen, load().log_format, load().retention_days) == (None, "text", 30)
    settings = load(BOT_HTTP_LISTEN="127.0.0.1:9100", BOT_LOG_FORMAT="JSON", BOT_RETENTION_DAYS="0")
    assert (settings.http_listen, settings.log_format, settings.retention_days) == (
        ("127.0.0.1", 9100),
        "json",
        0,
    )
    assert load(BOT_HTTP_LISTEN="[::1]:9100").http_listen == ("::1", 9100)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://bot.example.org", "https://bot.example.org"),
        ("https://bot.example.org/nano/", "https://bot.example.org/nano"),
        ("https://bot.example.org:8443", "https://bot.example.org:8443"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://bot.localhost", "http://bot.localhost"),
    ],
)
def test_the_public_address_is_https_or_on_this_machine(url: str, expected: str) -> None:
    assert load(BOT_PUBLIC_URL=url).public_url == expected
    assert load().public_url is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://bot.example.org", "an https:// address \\(http:// only for localhost\\)"),
        ("http://10.0.0.5:8080", "must be an https:// address"),
        ("ftp://bot.example.org", "must be an https:// address"),
        ("bot.example.org", "must be the bot's public web address"),
        ("https://", "must be the bot's public web address"),
        ("https://bot.example.org/?x=1", "no user, query or fragment"),
        ("https://bot.example.org/?token=s3cret", "got 'https://bot.example.org/'"),
        ("https://bot.example.org/#top", "no user, query or fragment"),
        ("https://me:pw@bot.example.org", "no user, query or fragment"),
        ("https://bot.example.org:port", "must be the bot's public web address"),
    ],
)
def test_a_wrong_public_address_says_what_to_set(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load(BOT_PUBLIC_URL=url)
    assert str(caught.value).startswith("BOT_PUBLIC_URL must")
    assert "pw@" not in str(caught.value)
    assert "s3cret" not in str(caught.value)  # a query may carry a token: never echoed


WIREFLOW = {"WIREFLOW_API_KEY": "wf-key-abcdef", "WIREFLOW_WORKFLOW_ID": "wf-1"}


def test_the_public_address_is_served_on_a_listener_of_its_own() -> None:
    settings = load(
        **WIREFLOW,
        BOT_PUBLIC_URL="https://bot.example.org",
        BOT_PUBLIC_LISTEN="127.0.0.1:8081",
        BOT_HTTP_LISTEN="127.0.0.1:8080",
    )
    assert (settings.public_listen, settings.http_listen) == (
        ("127.0.0.1", 8081),
        ("127.0.0.1", 8080),
    )
    assert load().public_listen is None
    # Where no road makes links, neither is needed, nor refused.
    assert load(BOT_PUBLIC_URL="https://bot.example.org").public_listen is None
    assert load(**WIREFLOW, BOT_PUBLIC_LISTEN="127.0.0.1:8081").public_url is None
    with pytest.raises(ConfigError, match="BOT_PUBLIC_LISTEN must look like host:port"):
        load(**WIREFLOW, BOT_PUBLIC_URL="https://bot.example.org", BOT_PUBLIC_LISTEN="8081")


def test_a_public_address_without_its_listener_names_the_setting_to_add() -> None:
    """Also for a worker with no listener at all: any process may lead and make links."""
    for http in ({}, {"BOT_HTTP_LISTEN": "0.0.0.0:8080"}):
        with pytest.raises(ConfigError) as caught:
            load(**WIREFLOW, **http, BOT_PUBLIC_URL="https://bot.example.org/nano")
        assert str(caught.value).startswith(
            "BOT_PUBLIC_URL is set but BOT_PUBLIC_LISTEN is not: set BOT_PUBLIC_LISTEN to the "
            "host:port your proxy forwards https://bot.example.org/nano to"
        )


def test_a_prompt_limit_no_platform_can_carry_is_refused_at_start() -> None:
    """Discord's forms (R1–R4, "Imagine with this image") hold 4000 characters and a Telegram
    message 4096: a higher limit would be a promise the bot breaks where users type."""
    assert load(BOT_MAX_PROMPT_CHARS="4000").limits.max_prompt_chars == 4000
    with pytest.raises(ConfigError) as caught:
        load(BOT_MAX_PROMPT_CHARS="4001")
    assert str(caught.value) == (
        "BOT_MAX_PROMPT_CHARS must be at most 4000 (the most Discord's prompt forms hold; a "
        "Telegram message holds 4096), got '4001'"
    )


def test_the_default_language_takes_a_code_or_a_platforms_tag() -> None:
    assert load().default_language == "en"
    assert load(BOT_DEFAULT_LANGUAGE="es").default_language == "es"
    assert load(BOT_DEFAULT_LANGUAGE="es-419").default_language == "es"


def test_provider_keys_are_secrets() -> None:
    settings = load(
        GEMINI_API_KEY="AIza-key", WIREFLOW_API_KEY="sk-wf-123", WIREFLOW_WORKFLOW_ID="cm1"
    )
    assert "AIza-key" not in repr(settings)
    assert settings.gemini_api_key is not None
    assert settings.gemini_api_key.reveal() == "AIza-key"
    assert settings.gemini_base_url == "https://generativelanguage.googleapis.com"
    assert settings.wireflow_workflow_id == "cm1"
    assert settings.nbpro_api_key is None


ROOT = Path(__file__).resolve().parents[2]


def settings_read() -> set[str]:
    """Every variable the code reads: each is named, quoted, as the first argument of a call
    (``env.text("BOT_…")``, ``listen("BOT_HTTP_LISTEN", …)``, ``setting("DATABASE_URL")``)."""
    source = "".join((ROOT / "bot" / name).read_text() for name in ("config.py", "env.py"))
    source += (ROOT / "bot" / "__main__.py").read_text()
    return set(re.findall(r'\w\(\s*"([A-Z][A-Z0-9]*_[A-Z0-9_]+)"', source))


def test_env_example_lists_every_setting_read_and_no_other() -> None:
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert len(settings_read()) > 50
    assert settings_read() - listed == set()  # a setting an operator can't find
    assert listed - settings_read() == set()  # a setting the bot ignores


def test_the_values_in_env_example_are_the_defaults() -> None:
    """A copied .env.example changes nothing but what the operator fills in."""
    example = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    assert load(**{**example, **BASE}) == load()


def test_every_setting_the_readme_names_is_one() -> None:
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    named = set(re.findall(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b", (ROOT / "README.md").read_text()))
    # A placeholder in the Discord invite URL, and the tests' own PostgreSQL.
    assert named - listed == {"APPLICATION_ID", "BOT_TEST_DATABASE_URL"}


def test_the_defaults_the_readme_gives_are_the_defaults() -> None:
    example = dict(
        re.findall(r"^([A-Z][A-Z0-9_]+)=(.+)$", (ROOT / ".env.example").read_text(), re.M)
    )
    readme = (ROOT / "README.md").read_text()
    given = re.findall(r"`([A-Z][A-Z0-9_]+)` \((?:default )?`?([\w:.]+)`?[;),]", readme)
    given = [(name, value) for name, value in given if name in example]
    assert len(given) >= 7
    assert [(name, example[name]) for name, _ in given] == given


def test_bot_platforms_picks_what_this_process_hears() -> None:
    tokens = {"DISCORD_TOKEN": "discord-token", "TELEGRAM_TOKEN": "1:tg-tok1"}
    assert load(**tokens).receiving == ("discord", "telegram")  # every platform with a token
    assert load(TELEGRAM_TOKEN="1:tg-tok1").receiving == ("telegram",)
    assert load(**tokens, BOT_PLATFORMS="Telegram").receiving == ("telegram",)
    assert load(**tokens, BOT_PLATFORMS="telegram, discord").receiving == ("telegram", "discord")
    assert load(**tokens, BOT_PLATFORMS="none").receiving == ()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"BOT_PLATFORMS": "discord"}, "BOT_PLATFORMS names discord, but DISCORD_TOKEN is not set"),
        ({"BOT_PLATFORMS": "console"}, "BOT_PLATFORMS: 'console' is not a platform"),
        (
            {"BOT_PLATFORMS": "none,telegram", "TELEGRAM_TOKEN": "1:tg-tok1"},
            "'none' is not a platform",
        ),
        ({"DISCORD_SHARD_IDS": "0"}, "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"),
        ({"DISCORD_SHARD_IDS": "2", "DISCORD_SHARD_COUNT": "2"}, "from 0 to 1"),
        ({"DISCORD_SHARD_IDS": "a", "DISCORD_SHARD_COUNT": "2"}, "shard numbers"),
        ({"DISCORD_SHARD_COUNT": "0"}, "DISCORD_SHARD_COUNT must be at least 1"),
    ],
)
def test_bad_platform_and_shard_settings_say_what_to_set(
    extra: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(**extra)


def test_discord_shards() -> None:
    settings = load(DISCORD_SHARD_IDS="2, 0", DISCORD_SHARD_COUNT="4")
    assert settings.discord_shards == (2, 0)
    assert settings.discord_shard_count == 4
    assert load().discord_shards is None
