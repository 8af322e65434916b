"""The pending table on PostgreSQL (``bot.core.ports.Parking``): values a front end parks to
find again after a restart, and the admin alerts not given yet (``Store.hold_alert``), parked
under the admin's ``platform:id``. ``PostgresStore`` adds the jobs on top."""

from __future__ import annotations

from bot.core.alerts import HeldAlert
from bot.core.people import UserKey
from bot.store.codec import ALERTS, decode_text, encode_text
from bot.store.postgres_server import PostgresDatabase


class PostgresParking(PostgresDatabase):
    async def add_pending(self, kind: str, key: str, value: str) -> None:
        await self._query(
            "INSERT INTO pending (kind, key, value) VALUES (%s, %s, %s)", (kind, key, value)
        )

    async def take_pending(self, kind: str, key: str) -> list[str]:
        # One statement: two takers can't both get a value.
        rows = await self._query(
            "DELETE FROM pending WHERE kind = %s AND key = %s RETURNING id, value", (kind, key)
        )
        return [str(row["value"]) for row in sorted(rows, key=lambda row: int(row["id"]))]

    async def peek_pending(self, kind: str, key: str) -> list[str]:
        rows = await self._query(
            "SELECT value FROM pending WHERE kind = %s AND key = %s ORDER BY id", (kind, key)
        )
        return [str(row["value"]) for row in rows]

    async def move_pending(self, kind: str, key: str, to_kind: str) -> list[str]:
        # One statement: two claimers can't both get a value.
        rows = await self._query(
            "UPDATE pending SET kind = %s WHERE kind = %s AND key = %s RETURNING id, value",
            (to_kind, kind, key),
        )
        return [str(row["value"]) for row in sorted(rows, key=lambda row: int(row["id"]))]

    async def pending_keys(self, kind: str, older_than: float) -> list[str]:
        rows = await self._query(
            "SELECT DISTINCT key FROM pending "
            "WHERE kind = %s AND created_at < now() - make_interval(secs => %s)",
            (kind, older_than),
        )
        return [str(row["key"]) for row in rows]

    # Admin alerts not given yet, parked under the admin's ``platform:id``.

    async def hold_alert(self, admin: UserKey, text: str) -> None:
        await self.add_pending(ALERTS, str(admin), encode_text(text))

    async def take_alerts(self, admin: UserKey) -> list[str]:
        return [decode_text(value) for value in await self.take_pending(ALERTS, str(admin))]

    async def held_alerts(self) -> list[HeldAlert]:
        rows = await self._query(
            "SELECT key, value, extract(epoch FROM created_at) AS since FROM pending "
            "WHERE kind = %s ORDER BY id",
            (ALERTS,),
        )
        return [
            HeldAlert(UserKey.parse(str(r["key"])), decode_text(str(r["value"])), float(r["since"]))
            for r in rows
        ]
