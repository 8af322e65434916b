"""The store's schema, step by step, for SQLite and PostgreSQL side by side.

Step *i* moves a store from schema version *i* to *i + 1*; both stores share the numbering, so a
version means the same tables everywhere and ``migrate-store`` copies between equal versions.
A step that has shipped is never edited (databases in the field ran it as written): a change is
a new step, written for both. The two forms say the same thing in each dialect: SQLite keeps
times as epoch seconds (REAL) from the process clock; PostgreSQL keeps ``timestamptz`` from the
server's clock, the one clock every process sharing the database agrees on, and ``bigint``
identity ids (``BY DEFAULT``, so a copy keeps its ids).

SQLite runs a step statement by statement (split on ``;``), PostgreSQL as one script, so a
PostgreSQL step may hold function bodies.

Steps 1 to 12 are ``bot.store.shipped_steps``; a new step is added here, after them, as
``Step(sqlite=..., postgres=...)`` with a comment saying what it is for.
"""

from __future__ import annotations

from bot.store.errors import SchemaTooNew
from bot.store.shipped_steps import SHIPPED, Step

MIGRATIONS: tuple[Step, ...] = (
    *SHIPPED,
    # 13 onwards: here.
)

LATEST = len(MIGRATIONS)


def check_version(version: int, where: str) -> None:
    """Refuse a database a newer bot has migrated: this one would misread it."""
    if version > LATEST:
        raise SchemaTooNew(where, version, LATEST)
