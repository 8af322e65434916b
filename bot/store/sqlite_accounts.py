"""What SQLite keeps about each upstream account: the ids of the references uploaded to it (the
asset cache) and the concurrency it was found to take (``SqliteStore`` has these queries through
``SqliteAccounts``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from bot.store.sqlite_file import SqliteDatabase, one, rows


class SqliteAccounts(SqliteDatabase):
    async def account_limits(self) -> dict[str, float]:
        found = await rows(self.reader, "SELECT account, concurrency FROM account_limits")
        return {str(row[0]): float(row[1]) for row in found}

    async def save_account_limits(self, limits: Mapping[str, float]) -> None:
        now = time.time()
        async with self._transaction() as db:
            await db.executemany(
                "INSERT OR REPLACE INTO account_limits (account, concurrency, updated_at) "
                "VALUES (?, ?, ?)",
                [(account, limit, now) for account, limit in limits.items()],
            )

    async def cached_asset(self, sha256: str, account: str, *, max_age: float) -> str | None:
        row = await one(
            self.reader,
            "SELECT media_id FROM assets WHERE sha256 = ? AND account = ? AND created_at > ?",
            (sha256, account, time.time() - max_age),
        )
        return str(row[0]) if row else None

    async def cache_asset(self, sha256: str, account: str, media_id: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO assets (sha256, account, media_id, created_at) "
                "VALUES (?, ?, ?, ?)",
                (sha256, account, media_id, time.time()),
            )

    async def forget_assets(self, account: str, sha256s: Sequence[str]) -> None:
        async with self._transaction() as db:
            await db.executemany(
                "DELETE FROM assets WHERE account = ? AND sha256 = ?",
                [(account, sha) for sha in sha256s],
            )
