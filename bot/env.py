"""Reading the environment (and ``.env``): raw values, checked as numbers, flags, ids, word
lists, addresses, choices and the like (each value's own check, with the sentence a wrong one
gets), and the one error a wrong setting raises. ``bot.config`` builds the ``Settings`` from
these.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from dotenv import dotenv_values

from bot.core import i18n
from bot.core.people import CONSOLE, DISCORD, TELEGRAM, UserKey
from bot.core.service.rules import MAX_PHRASE, phrase_of
from bot.providers.media import DEFAULT_MEDIA_HOSTS
from bot.store.url import StoreUrl, StoreUrlError

PLATFORMS = (DISCORD, TELEGRAM)
DEFAULT_DATABASE = StoreUrl.parse("sqlite:///data/bot.sqlite3")
_HOST_PATTERN = re.compile(r"(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+")
T = TypeVar("T")


SHORTEST_SECRET = 8


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


def setting(name: str, env_file: Path | None = Path(".env")) -> str:
    """One raw setting, read as ``Settings.from_env`` reads it (for commands that need no more)."""
    return Env(environment(None, env_file)).text(name)


def environment(environ: Mapping[str, str] | None, env_file: Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


class Env:
    def __init__(self, values: Mapping[str, str]):
        self._values = values

    def text(self, name: str, default: str = "") -> str:
        return self._values.get(name, "").strip() or default

    def secret(self, name: str) -> Secret | None:
        value = self.text(name)
        if not value:
            return None
        # Every log line loses every secret (``logs.Redact``): a stray "t" would take every "t"
        # with it, and no real token or key is this short. The value itself is never echoed.
        if len(value) < SHORTEST_SECRET:
            raise ConfigError(
                f"{name} is {len(value)} characters long, too short to be a token or key: "
                "paste the whole value"
            )
        return Secret(value)

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


def blocked_words(raw: str) -> tuple[str, ...]:
    """A comma list, or ``@path`` to a file with one word or phrase a line (``#`` comments)."""
    if raw.startswith("@"):
        path = Path(raw[1:]).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(
                f"BOT_BLOCKED_WORDS: {path} can't be read ({why}): give a readable file after @, "
                "or a comma list of words"
            ) from None
        items = [line for line in lines if not line.lstrip().startswith("#")]
    else:
        items = raw.split(",")
    phrases = []
    for item in filter(str.strip, items):
        phrase = phrase_of(item)
        if phrase is None:
            raise ConfigError(
                f"BOT_BLOCKED_WORDS: {item.strip()[:40]!r} is not a word or phrase of at most "
                f"{MAX_PHRASE} characters"
            )
        phrases.append(phrase)
    return tuple(dict.fromkeys(phrases))


def public_url(raw: str) -> str | None:
    """``BOT_PUBLIC_URL``: https, or http on this machine only (a link in the clear on the
    internet could be read on its way); no user, query or fragment."""
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
        parts.port  # noqa: B018 — a port that is not a number raises here
    except ValueError:
        host = ""
    if not host or parts.username is not None or parts.query or parts.fragment:
        # A password, or a token in a query or fragment, is never echoed.
        shown = "" if "@" in raw else f", got {re.split('[?#]', raw)[0][:80]!r}"
        raise ConfigError(
            "BOT_PUBLIC_URL must be the bot's public web address, like https://bot.example.org "
            f"(no user, query or fragment){shown}"
        )
    if parts.scheme != "https" and not (parts.scheme == "http" and _this_machine(host)):
        raise ConfigError("BOT_PUBLIC_URL must be an https:// address (http:// only for localhost)")
    return raw.rstrip("/")


def _this_machine(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shards(raw: str, count: int | None) -> tuple[int, ...] | None:
    if not raw.strip():
        return None
    if count is None:
        raise ConfigError(
            "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (the shards of all processes)"
        )
    try:
        shards = tuple(dict.fromkeys(int(part) for part in raw.split(",") if part.strip()))
    except ValueError:
        raise ConfigError("DISCORD_SHARD_IDS must be shard numbers, comma-separated") from None
    if not shards or not all(0 <= shard < count for shard in shards):
        raise ConfigError(f"DISCORD_SHARD_IDS must be numbers from 0 to {count - 1}")
    return shards


def database(url: str) -> StoreUrl:
    if not url:
        return DEFAULT_DATABASE
    try:
        return StoreUrl.parse(url)
    except StoreUrlError as exc:
        raise ConfigError(f"DATABASE_URL {exc}") from None


def media_hosts(raw: str) -> tuple[str, ...]:
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


def log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"BOT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


# setWebhook's secret_token: 1-256 characters, only A-Z, a-z, 0-9, _ and - (core.telegram.org/
# bots/api#setwebhook). It alone tells Telegram's posts from anyone's: too long to guess.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")


def webhook_secret(secret: Secret | None) -> Secret | None:
    if secret is not None and not _WEBHOOK_SECRET.fullmatch(secret.reveal()):
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET must be 16 to 256 letters, digits, _ or -; make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return secret


def https_url(url: str) -> str | None:
    if not url:
        return None
    if not url.startswith("https://"):
        raise ConfigError("TELEGRAM_WEBHOOK_URL must be an https:// URL (Telegram requires it)")
    return url


def choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value.lower() not in choices:
        raise ConfigError(f"{name} must be {' or '.join(choices)}, got {value!r}")
    return value.lower()


def language(value: str) -> str:
    if (code := i18n.pick(value)) is None:
        shipped = ", ".join(i18n.LANGUAGES)
        raise ConfigError(f"BOT_DEFAULT_LANGUAGE must be one of {shipped}, got {value!r}")
    return code


def listen(name: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must look like host:port, e.g. 0.0.0.0:8443, got {value!r}")
    return host.strip("[]"), int(port)
