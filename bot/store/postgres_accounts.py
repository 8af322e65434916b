"""What PostgreSQL keeps about each upstream account: the ids of the references uploaded to it
(the asset cache) and the concurrency it was found to take (``PostgresStore`` has these queries
through ``PostgresAccounts``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.store.postgres_server import PostgresDatabase


class PostgresAccounts(PostgresDatabase):
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

    async def cached_asset(self, sha256: str, account: str, *, max_age: float) -> str | None:
        row = await self._one(
            "SELECT media_id FROM assets WHERE sha256 = %s AND account = %s "
            "AND created_at > now() - make_interval(secs => %s)",
            (sha256, account, max_age),
        )
        return str(row["media_id"]) if row else None

    async def cache_asset(self, sha256: str, account: str, media_id: str) -> None:
        await self._query(
            "INSERT INTO assets (sha256, account, media_id) VALUES (%s, %s, %s) "
            "ON CONFLICT (sha256, account) DO UPDATE "
            "SET media_id = excluded.media_id, created_at = excluded.created_at",
            (sha256, account, media_id),
        )

    async def forget_assets(self, account: str, sha256s: Sequence[str]) -> None:
        await self._query(
            "DELETE FROM assets WHERE account = %s AND sha256 = ANY(%s)",
            (account, list(sha256s)),
        )
