"""The accounts' learned limits in PostgreSQL (``PostgresStore`` has these queries through
``PostgresLimits``)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.store.postgres_server import PostgresDatabase


class PostgresLimits(PostgresDatabase):
    async def account_limits(self) -> dict[str, float]:
        rows = await self._query("SELECT account, concurrency FROM account_limits")
        return {str(row["account"]): float(row["concurrency"]) for row in rows}

    async def save_account_limits(self, limits: Mapping[str, float]) -> None:
        async with self._transaction() as db, db.cursor() as many:
            await many.executemany(
                "INSERT INTO account_limits (account, concurrency) VALUES (%s, %s) "
                "ON CONFLICT (account) DO UPDATE "
                "SET concurrency = excluded.concurrency, updated_at = now()",
                list(limits.items()),
            )
