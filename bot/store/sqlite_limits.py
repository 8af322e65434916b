"""The accounts' learned limits in SQLite (``SqliteStore`` has these queries through
``SqliteLimits``)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from bot.store.sqlite_file import SqliteDatabase


class SqliteLimits(SqliteDatabase):
    async def account_limits(self) -> dict[str, float]:
        async with self.reader.execute("SELECT account, concurrency FROM account_limits") as cur:
            return {str(row[0]): float(row[1]) async for row in cur}

    async def save_account_limits(self, limits: Mapping[str, float]) -> None:
        now = time.time()
        async with self._transaction() as db:
            await db.executemany(
                "INSERT OR REPLACE INTO account_limits (account, concurrency, updated_at) "
                "VALUES (?, ?, ?)",
                [(account, limit, now) for account, limit in limits.items()],
            )
