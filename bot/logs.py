"""Logging: one handler on stderr, chatty libraries held back, and no secret on any line.

Secrets are kept out at the source: ``Secret`` prints as ``***``, and the library loggers in
``FLOORS`` stay above the levels where they print tokens, prompts and images. ``Redact`` is the
second line of defence: every record, from any logger, loses every configured secret (raw or
URL-encoded), the password in DATABASE_URL and every Discord interaction or webhook token from
its message, its arguments and its traceback before it is written. Tracebacks that bypass
logging (uncaught in the main thread, in a thread, or raised where Python can only report them)
are sent through it too.

``BOT_LOG_FORMAT=json`` writes one JSON object per line instead (time, level, logger, message,
exception, and the job the line is about), redacted the same way: the filter runs first.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO
from urllib.parse import quote, quote_plus

from bot.config import Secret, Settings
from bot.core.context import current_job

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
MASK = "***"

# The lowest level each library logger may print at, whatever BOT_LOG_LEVEL says.
FLOORS = {
    # Telegram Bot API URLs carry the bot token: httpx logs request URLs at INFO, and PTB's Bot
    # logs its API URL, and every call's parameters (users' words), at DEBUG.
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram.Bot": logging.INFO,
    "telegram.ext.ExtBot": logging.INFO,
    # aiosqlite logs every statement with its parameters at DEBUG: users' prompts and images.
    "aiosqlite": logging.INFO,
    # discord.py logs at DEBUG every gateway event (interaction tokens, prompts), every REST
    # call with its body, and every webhook URL: an interaction's token is in its path.
    "discord.gateway": logging.INFO,
    "discord.http": logging.INFO,
    "discord.webhook": logging.INFO,
}

# Discord puts interaction and webhook tokens in URL paths (/webhooks/<app id>/<token>/…);
# they are nobody's setting, so they are recognised by shape.
_URL_TOKENS = re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/?#\s'\"]+")
_TRACEBACKS = logging.Formatter()
log = logging.getLogger(__name__)


def secrets_of(settings: Settings) -> list[str]:
    """The value of every ``Secret`` setting: tokens, keys, webhook secrets, present or future."""
    values = (getattr(settings, field.name) for field in dataclasses.fields(settings))
    return [value.reveal() for value in values if isinstance(value, Secret)]


class Redact(logging.Filter):
    """A handler filter that takes the secrets out of a record before any formatter sees it."""

    def __init__(
        self, secrets: Iterable[str], also: Callable[[str], str] = lambda text: text
    ) -> None:
        super().__init__()
        self._also = also
        forms = {f for s in secrets if s for f in (s, quote(s, safe=""), quote_plus(s), quote(s))}
        # Longest first, so a secret that contains another is masked whole.
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        self._secrets = re.compile(alternatives) if alternatives else None

    def text(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        return self._also(_URL_TOKENS.sub(rf"\g<1>{MASK}", text))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it, without the arguments
            message = f"{record.msg} (the log call's arguments did not fit its format)"
        record.msg, record.args = self.text(message), None
        # Formatters reuse exc_text once set: set it, redacted, before one formats exc_info.
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.text(record.stack_info)
        return True


class JobContext(logging.Filter):
    """Adds ``job_id``: the job whose work wrote the record (``bot.core.context.current_job``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = current_job.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; what it holds has been through ``Redact`` already."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (job := getattr(record, "job_id", None)) is not None:
            line["job"] = job
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """UTC, ISO 8601 with milliseconds: what log collectors parse without being told."""
        stamp = datetime.fromtimestamp(record.created, UTC)
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Log to ``stream`` (stderr) at BOT_LOG_LEVEL, redacted; route stray tracebacks there too."""
    handler = logging.StreamHandler(stream)
    json_lines = settings.log_format == "json"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(FORMAT))
    # DATABASE_URL may hold a password, which only it knows how to find in a text.
    handler.addFilter(Redact(secrets_of(settings), settings.database.redact))
    handler.addFilter(JobContext())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    level = logging.getLevelName(settings.log_level)
    for name, floor in FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, level))
    logging.captureWarnings(True)
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
    sys.unraisablehook = _unraisable


def _uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    log.critical("uncaught exception", exc_info=(kind, exc, tb))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return  # how a thread ends on purpose, as threading's own hook sees it
    name = args.thread.name if args.thread else "?"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    log.critical("uncaught exception in thread %s", name, exc_info=exc_info)


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    what = unraisable.err_msg or "Exception ignored in"
    exc = unraisable.exc_value
    exc_info = (unraisable.exc_type, exc, unraisable.exc_traceback) if exc else None
    log.error("%s: %r", what, unraisable.object, exc_info=exc_info)
