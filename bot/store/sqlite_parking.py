"""The pending table on SQLite (``bot.core.ports.Parking``): values a front end parks to find
again after a restart, and the admin alerts not given yet (``Store.hold_alert``), parked under
the admin's ``platform:id``. ``SqliteStore`` adds the jobs on top."""

from __future__ import annotations

import time

from bot.core.alerts import HeldAlert
from bot.core.people import UserKey
from bot.store.codec import ALERTS, decode_text, encode_text
from bot.store.sqlite_file import SqliteDatabase, rows


class SqliteParking(SqliteDatabase):
    async def add_pending(self, kind: str, key: str, value: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO pending (kind, key, value, created_at) VALUES (?, ?, ?, ?)",
                (kind, key, value, time.time()),
            )

    async def take_pending(self, kind: str, key: str) -> list[str]:
        async with self._transaction() as db:
            async with db.execute(
                "SELECT value FROM pending WHERE kind = ? AND key = ? ORDER BY id", (kind, key)
            ) as cur:
                values = [str(row[0]) async for row in cur]
            await db.execute("DELETE FROM pending WHERE kind = ? AND key = ?", (kind, key))
        return values

    async def peek_pending(self, kind: str, key: str) -> list[str]:
        sql = "SELECT value FROM pending WHERE kind = ? AND key = ? ORDER BY id"
        return [str(row[0]) for row in await rows(self.reader, sql, (kind, key))]

    async def move_pending(self, kind: str, key: str, to_kind: str) -> list[str]:
        async with (
            self._transaction() as db,
            db.execute(
                "UPDATE pending SET kind = ? WHERE kind = ? AND key = ? RETURNING id, value",
                (to_kind, kind, key),
            ) as cur,
        ):
            rows = [(int(row[0]), str(row[1])) async for row in cur]
        return [value for _, value in sorted(rows)]

    async def pending_keys(self, kind: str, older_than: float) -> list[str]:
        found = await rows(
            self.reader,
            "SELECT DISTINCT key FROM pending WHERE kind = ? AND created_at < ?",
            (kind, time.time() - older_than),
        )
        return [str(row[0]) for row in found]

    # Admin alerts not given yet, parked under the admin's ``platform:id``.

    async def hold_alert(self, admin: UserKey, text: str) -> None:
        await self.add_pending(ALERTS, str(admin), encode_text(text))

    async def take_alerts(self, admin: UserKey) -> list[str]:
        return [decode_text(value) for value in await self.take_pending(ALERTS, str(admin))]

    async def held_alerts(self) -> list[HeldAlert]:
        found = await rows(
            self.reader,
            "SELECT key, value, created_at FROM pending WHERE kind = ? ORDER BY id",
            (ALERTS,),
        )
        return [HeldAlert(UserKey.parse(k), decode_text(str(v)), float(at)) for k, v, at in found]
