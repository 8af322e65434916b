"""``DATABASE_URL``: which store and where, parsed once; the password never shows.

libpq echoes a URL it can't parse, password included, so every message built from a driver's
error goes through ``StoreUrl.redact`` before anyone sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
EXAMPLES = (
    "sqlite:///data/bot.sqlite3 (relative), sqlite:////var/lib/bot/bot.sqlite3 (absolute) "
    "or postgresql://user:password@host:5432/dbname"
)

# user:password@ in the authority, and password=… among the query parameters.
_USERINFO_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:([^/?#]*)@")
_QUERY_PASSWORD = re.compile(r"[?&]password=([^&#]*)")


class StoreUrlError(ValueError):
    """The URL names no store this bot has, or can't be parsed; the message holds no secret."""


@dataclass(frozen=True)
class StoreUrl:
    """A parsed ``DATABASE_URL``: ``sqlite`` with a path, or ``postgresql`` with a libpq URI."""

    kind: Literal["sqlite", "postgresql"]
    _url: str = field(repr=False)

    @classmethod
    def parse(cls, url: str) -> StoreUrl:
        url = url.strip()
        if url.startswith(SQLITE_PREFIX) and len(url) > len(SQLITE_PREFIX):
            return cls("sqlite", url)
        if url.startswith(POSTGRES_SCHEMES):
            parsed = cls("postgresql", url)
            parsed._check_postgres()
            return parsed
        scheme = url.split(":", 1)[0] if ":" in url else url[:12]
        raise StoreUrlError(f"must look like {EXAMPLES}; got {scheme}:…")

    def _check_postgres(self) -> None:
        """libpq's own parser, so that what passes here also connects (or fails to, loudly)."""
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(self._url)
        except ProgrammingError as exc:
            reason = self.redact(str(exc)).strip()
            raise StoreUrlError(f"is not a valid PostgreSQL URL: {reason}") from None

    @property
    def path(self) -> Path:
        if self.kind != "sqlite":
            raise ValueError("only a sqlite:/// URL has a path")
        return Path(self._url[len(SQLITE_PREFIX) :])

    def reveal(self) -> str:
        """The URL as given, password included: for the driver only."""
        return self._url

    @property
    def redacted(self) -> str:
        return self.redact(self._url)

    def redact(self, text: str) -> str:
        """``text`` with every form of this URL's password replaced by ``***``."""
        secrets = {
            form
            for match in (_USERINFO_PASSWORD.match(self._url), *_QUERY_PASSWORD.finditer(self._url))
            if match is not None and match[1]
            for form in (match[1], unquote(match[1]))
        }
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"StoreUrl({self.redacted!r})"

    def __str__(self) -> str:
        return self.redacted
