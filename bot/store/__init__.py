"""Durable state: jobs, results, settings, the asset cache and usage.

``open_store(url)`` picks the store a ``DATABASE_URL`` names: SQLite for one process, PostgreSQL
for a database that operators run (and, later, several processes share).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.store.errors import SchemaTooNew, StoreError
from bot.store.sqlite import SqliteStore
from bot.store.url import StoreUrl, StoreUrlError

if TYPE_CHECKING:
    from bot.store.postgres import PostgresStore

__all__ = [
    "SchemaTooNew",
    "SqliteStore",
    "StoreError",
    "StoreUrl",
    "StoreUrlError",
    "open_store",
]


def open_store(url: StoreUrl | str) -> SqliteStore | PostgresStore:
    """The store at ``url``, not yet open: ``async with open_store(url) as store``."""
    where = url if isinstance(url, StoreUrl) else StoreUrl.parse(url)
    if where.kind == "sqlite":
        return SqliteStore(where.path)
    # Imported here: a SQLite deployment never loads the PostgreSQL driver.
    from bot.store.postgres import PostgresStore

    return PostgresStore(where)
