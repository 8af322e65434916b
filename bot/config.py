"""Settings from the environment (and ``.env``), validated once at start.

Every variable is listed, with a comment, in ``.env.example``. Tokens are held as ``Secret`` so
that no repr, log line or error message can show them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values

from bot.core.domain import CONSOLE, DISCORD, TELEGRAM, UserKey
from bot.core.models_table import MAX_COUNT, MIN_COUNT, UPSCALE_SIZES, ModelTable, ModelTableError
from bot.core.policy import Defaults, Limits, Tuning
from bot.providers import gemini, nbpro, wireflow
from bot.providers.flow import DEFAULT_BASE_URL
from bot.providers.media import DEFAULT_MEDIA_HOSTS
from bot.store.url import StoreUrl, StoreUrlError

PLATFORMS = (DISCORD, TELEGRAM)
LOG_FORMATS = ("text", "json")
# The Bot API's own root; another one is a local Bot API server (without its upload limits).
PUBLIC_TELEGRAM_API = "https://api.telegram.org"
DEFAULT_DATABASE = StoreUrl.parse("sqlite:///data/bot.sqlite3")
# A host name, or "*." and a domain: ASCII (IDNA) labels, no scheme, port or path.
_HOST_PATTERN = re.compile(r"(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+")
T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the variable and what to do."""


class Secret:
    """A token: compares and hashes like its value, prints as ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    useapi_token: Secret
    useapi_base_url: str = DEFAULT_BASE_URL
    useapi_accounts: tuple[str, ...] = ()
    upstream_media_hosts: tuple[str, ...] = DEFAULT_MEDIA_HOSTS
    discord_token: Secret | None = None
    telegram_token: Secret | None = None
    telegram_api_url: str = PUBLIC_TELEGRAM_API
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: Secret | None = None
    telegram_webhook_listen: tuple[str, int] = ("0.0.0.0", 8443)  # noqa: S104 — a webhook must be reachable
    discord_dev_guild: int | None = None
    database: StoreUrl = DEFAULT_DATABASE  # prints with its password as ***
    admins: tuple[tuple[str, str], ...] = ()
    allowed_users: frozenset[str] = frozenset()
    allowed_chats: frozenset[str] = frozenset()
    models: ModelTable = field(default_factory=ModelTable.builtin)
    limits: Limits = field(default_factory=Limits)
    tuning: Tuning = field(default_factory=Tuning)
    defaults: Defaults = field(default_factory=Defaults)
    console_dir: Path = Path("images")
    log_level: str = "INFO"
    log_format: str = "text"
    http_listen: tuple[str, int] | None = None
    retention_days: int = 30  # 0: keep forever
    # The other providers: read (and checked by ``python -m bot check``), not yet served from.
    gemini_api_key: Secret | None = None
    gemini_base_url: str = gemini.DEFAULT_BASE_URL
    nbpro_api_key: Secret | None = None
    nbpro_base_url: str = nbpro.DEFAULT_BASE_URL
    wireflow_api_key: Secret | None = None
    wireflow_base_url: str = wireflow.DEFAULT_BASE_URL
    wireflow_workflow_id: str | None = None

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: Path | None = Path(".env"),
    ) -> Settings:
        """Read and check every setting; the process environment wins over ``.env``."""
        return _parse(_Env(_environment(environ, env_file)))


def setting(name: str, env_file: Path | None = Path(".env")) -> str:
    """One raw setting, read as ``Settings.from_env`` reads it (for commands that need no more)."""
    return _Env(_environment(None, env_file)).text(name)


def _environment(environ: Mapping[str, str] | None, env_file: Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


class _Env:
    def __init__(self, values: Mapping[str, str]):
        self._values = values

    def text(self, name: str, default: str = "") -> str:
        return self._values.get(name, "").strip() or default

    def secret(self, name: str) -> Secret | None:
        value = self.text(name)
        return Secret(value) if value else None

    def number(self, name: str, default: T, kind: Callable[[str], T], low: float) -> T:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < low:  # type: ignore[operator]
            raise ConfigError(f"{name} must be at least {low}, got {raw!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def ids(self, name: str) -> list[tuple[str, str]]:
        """A comma list of ``platform:id`` pairs."""
        out = []
        for item in filter(None, (p.strip() for p in self.text(name).split(","))):
            key = UserKey.parse(item)
            user = key.user_id.strip()
            if key.platform not in (*PLATFORMS, CONSOLE) or not user.lstrip("-").isdigit():
                raise ConfigError(
                    f"{name}: {item!r} should look like discord:123456 or telegram:123456"
                )
            out.append((key.platform, user))
        return out


def _parse(env: _Env) -> Settings:
    token = env.secret("USEAPI_TOKEN")
    if token is None:
        raise ConfigError(
            "USEAPI_TOKEN is not set: put your useapi.net API token in the environment or .env"
        )
    models_file = env.text("BOT_MODELS_FILE")
    try:
        models = ModelTable.load(Path(models_file) if models_file else None)
        default_model = env.text("BOT_DEFAULT_MODEL")
        if default_model:
            spec = models.resolve(default_model)
            if spec is None:
                raise ConfigError(
                    f"BOT_DEFAULT_MODEL {default_model!r} is not a known model; "
                    f"use one of {', '.join(models.ids())}"
                )
            models = ModelTable(models.models, spec.id)
    except ModelTableError as exc:
        raise ConfigError(f"BOT_MODELS_FILE: {exc}") from exc

    base_min = Tuning()
    tuning = Tuning(
        account_min_concurrency=env.number(
            "BOT_ACCOUNT_MIN_CONCURRENCY", base_min.account_min_concurrency, int, 1
        ),
        account_max_concurrency=env.number(
            "BOT_ACCOUNT_MAX_CONCURRENCY", base_min.account_max_concurrency, int, 1
        ),
        retry_min_seconds=env.number("BOT_RETRY_MIN_SECONDS", base_min.retry_min_seconds, float, 0),
        retry_max_seconds=env.number("BOT_RETRY_MAX_SECONDS", base_min.retry_max_seconds, float, 0),
        job_deadline_seconds=env.number(
            "BOT_JOB_DEADLINE_SECONDS", base_min.job_deadline_seconds, float, 1
        ),
        generation_timeout_seconds=env.number(
            "BOT_GENERATION_TIMEOUT_SECONDS", base_min.generation_timeout_seconds, float, 1
        ),
        moderation_fallback=env.flag("BOT_MODERATION_FALLBACK", base_min.moderation_fallback),
        accounts_refresh_seconds=env.number(
            "BOT_ACCOUNTS_REFRESH_SECONDS", base_min.accounts_refresh_seconds, float, 10
        ),
    )
    if tuning.account_max_concurrency < tuning.account_min_concurrency:
        raise ConfigError("BOT_ACCOUNT_MAX_CONCURRENCY must be ≥ BOT_ACCOUNT_MIN_CONCURRENCY")

    base_limits = Limits()
    limits = Limits(
        max_prompt_chars=env.number("BOT_MAX_PROMPT_CHARS", base_limits.max_prompt_chars, int, 1),
        max_image_bytes=int(
            env.number("BOT_MAX_IMAGE_MB", base_limits.max_image_bytes / 2**20, float, 0.1) * 2**20
        ),
        max_image_pixels=env.number(
            "BOT_MAX_IMAGE_PIXELS", base_limits.max_image_pixels, int, 1024
        ),
        queued_per_user=env.number("BOT_QUEUED_PER_USER", base_limits.queued_per_user, int, 1),
        running_per_user=env.number("BOT_RUNNING_PER_USER", base_limits.running_per_user, int, 1),
        daily_images_per_user=env.number(
            "BOT_DAILY_IMAGES_PER_USER", base_limits.daily_images_per_user, int, 0
        ),
    )

    base_defaults = Defaults()
    defaults = Defaults(
        aspect_ratio=env.text("BOT_DEFAULT_ASPECT_RATIO", base_defaults.aspect_ratio),
        count=env.number("BOT_DEFAULT_COUNT", base_defaults.count, int, 1),
        upscale_resolution=env.text(
            "BOT_DEFAULT_UPSCALE_RESOLUTION", base_defaults.upscale_resolution
        ).lower(),
    )
    if not models.default.accepts_ratio(defaults.aspect_ratio, with_references=False):
        raise ConfigError(
            f"BOT_DEFAULT_ASPECT_RATIO {defaults.aspect_ratio!r} is not one of "
            f"{', '.join(models.default.aspect_ratios)}"
        )
    if not MIN_COUNT <= defaults.count <= MAX_COUNT:
        raise ConfigError(f"BOT_DEFAULT_COUNT must be between {MIN_COUNT} and {MAX_COUNT}")
    if defaults.upscale_resolution not in UPSCALE_SIZES:
        raise ConfigError(f"BOT_DEFAULT_UPSCALE_RESOLUTION must be {' or '.join(UPSCALE_SIZES)}")

    wireflow_key = env.secret("WIREFLOW_API_KEY")
    wireflow_workflow = env.text("WIREFLOW_WORKFLOW_ID") or None
    if (wireflow_key is None) != (wireflow_workflow is None):
        raise ConfigError(
            "WIREFLOW_API_KEY and WIREFLOW_WORKFLOW_ID go together: set both (the workflow id is "
            "in the workflow's URL at wireflow.ai), or neither"
        )

    return Settings(
        useapi_token=token,
        useapi_base_url=env.text("USEAPI_BASE_URL", Settings.useapi_base_url).rstrip("/"),
        useapi_accounts=tuple(
            a.strip() for a in env.text("USEAPI_ACCOUNTS").split(",") if a.strip()
        ),
        upstream_media_hosts=_media_hosts(env.text("BOT_UPSTREAM_MEDIA_HOSTS")),
        discord_token=env.secret("DISCORD_TOKEN"),
        telegram_token=env.secret("TELEGRAM_TOKEN"),
        telegram_api_url=env.text("TELEGRAM_API_URL", Settings.telegram_api_url).rstrip("/"),
        telegram_webhook_url=_https_url(env.text("TELEGRAM_WEBHOOK_URL")),
        telegram_webhook_secret=env.secret("TELEGRAM_WEBHOOK_SECRET"),
        telegram_webhook_listen=_listen(
            "TELEGRAM_WEBHOOK_LISTEN", env.text("TELEGRAM_WEBHOOK_LISTEN", "0.0.0.0:8443")
        ),
        discord_dev_guild=env.number("DISCORD_DEV_GUILD", None, int, 1),
        database=_database(env.text("DATABASE_URL")),
        admins=tuple(env.ids("BOT_ADMINS")),
        allowed_users=frozenset(str(UserKey(*pair)) for pair in env.ids("BOT_ALLOWED_USERS")),
        allowed_chats=frozenset(str(UserKey(*pair)) for pair in env.ids("BOT_ALLOWED_CHATS")),
        models=models,
        limits=limits,
        tuning=tuning,
        defaults=defaults,
        console_dir=Path(env.text("BOT_CONSOLE_DIR", "images")),
        log_level=_log_level(env.text("BOT_LOG_LEVEL", "INFO")),
        log_format=_choice("BOT_LOG_FORMAT", env.text("BOT_LOG_FORMAT", "text"), LOG_FORMATS),
        http_listen=_listen("BOT_HTTP_LISTEN", http)
        if (http := env.text("BOT_HTTP_LISTEN"))
        else None,
        retention_days=env.number("BOT_RETENTION_DAYS", Settings.retention_days, int, 0),
        gemini_api_key=env.secret("GEMINI_API_KEY"),
        gemini_base_url=env.text("GEMINI_BASE_URL", gemini.DEFAULT_BASE_URL).rstrip("/"),
        nbpro_api_key=env.secret("NBPRO_API_KEY"),
        nbpro_base_url=env.text("NBPRO_BASE_URL", nbpro.DEFAULT_BASE_URL).rstrip("/"),
        wireflow_api_key=wireflow_key,
        wireflow_base_url=env.text("WIREFLOW_BASE_URL", wireflow.DEFAULT_BASE_URL).rstrip("/"),
        wireflow_workflow_id=wireflow_workflow,
    )


def _database(url: str) -> StoreUrl:
    if not url:
        return DEFAULT_DATABASE
    try:
        return StoreUrl.parse(url)
    except StoreUrlError as exc:
        raise ConfigError(f"DATABASE_URL {exc}") from None


def _media_hosts(raw: str) -> tuple[str, ...]:
    if not raw:
        return DEFAULT_MEDIA_HOSTS
    hosts = tuple(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())
    for host in hosts:
        if not _HOST_PATTERN.fullmatch(host):
            raise ConfigError(
                f"BOT_UPSTREAM_MEDIA_HOSTS: {host!r} should be a host name like "
                "storage.googleapis.com, or *.googleusercontent.com for every host in a domain"
            )
    return hosts


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"BOT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


def _https_url(url: str) -> str | None:
    if not url:
        return None
    if not url.startswith("https://"):
        raise ConfigError("TELEGRAM_WEBHOOK_URL must be an https:// URL (Telegram requires it)")
    return url


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value.lower() not in choices:
        raise ConfigError(f"{name} must be {' or '.join(choices)}, got {value!r}")
    return value.lower()


def _listen(name: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must look like host:port, e.g. 0.0.0.0:8443, got {value!r}")
    return host.strip("[]"), int(port)
