"""The operator's controls on PostgreSQL (``bot.core.controls.Controls``): bans, quotas (the default
one too), blocked words, the queue's pause, each server's settings, what a day's jobs came to,
and who did what. ``PostgresStore`` adds the jobs on top.

Every process sharing the database reads these where they apply, so a change is seen at once.
A change that reports whether it changed anything does so in one statement, or locks the row it
read first (``FOR UPDATE``), so that two admins at once can't both be told "done".
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.community import AuditEntry, ServerSettings
from bot.core.controls import DayStats
from bot.core.people import UserKey
from bot.store.codec import DEFAULT, PAUSED, decode_server, encode_server
from bot.store.postgres_server import PostgresDatabase


class PostgresControls(PostgresDatabase):
    async def is_banned(self, user: UserKey) -> bool:
        row = await self._one(
            "SELECT 1 AS banned FROM bans WHERE platform = %s AND user_id = %s",
            (user.platform, user.user_id),
        )
        return row is not None

    async def set_banned(self, user: UserKey, banned: bool) -> bool:
        if banned:
            rows = await self._query(
                "INSERT INTO bans (platform, user_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1 AS banned",
                (user.platform, user.user_id),
            )
        else:
            rows = await self._query(
                "DELETE FROM bans WHERE platform = %s AND user_id = %s RETURNING 1 AS banned",
                (user.platform, user.user_id),
            )
        return bool(rows)

    async def quota(self, user: UserKey | None) -> int | None:
        who = user or DEFAULT
        row = await self._one(
            "SELECT images FROM quotas WHERE platform = %s AND user_id = %s",
            (who.platform, who.user_id),
        )
        return int(row["images"]) if row else None

    async def set_quota(self, user: UserKey | None, images: int | None) -> None:
        who = user or DEFAULT
        if images is None:
            await self._query(
                "DELETE FROM quotas WHERE platform = %s AND user_id = %s",
                (who.platform, who.user_id),
            )
            return
        await self._query(
            "INSERT INTO quotas (platform, user_id, images) VALUES (%s, %s, %s) "
            "ON CONFLICT (platform, user_id) DO UPDATE SET images = excluded.images",
            (who.platform, who.user_id, images),
        )

    async def blocked_words(self) -> list[str]:
        rows = await self._query(
            "SELECT phrase FROM blocked_words WHERE blocked = 1 ORDER BY phrase"
        )
        return [str(row["phrase"]) for row in rows]

    async def set_blocked(self, phrase: str, blocked: bool) -> bool:
        async with self._transaction() as db:
            # A phrase's row stays once there: an unblocked one, so that BOT_BLOCKED_WORDS won't
            # seed it again. A concurrent insert of it waits here, then does nothing.
            cur = await db.execute(
                "INSERT INTO blocked_words (phrase, blocked) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING RETURNING phrase",
                (phrase, int(blocked)),
            )
            if await cur.fetchone() is not None:
                return blocked  # a new phrase: blocking it changed something, unblocking not
            cur = await db.execute(
                "UPDATE blocked_words SET blocked = %s, updated_at = now() "
                "WHERE phrase = %s AND blocked <> %s",
                (int(blocked), phrase, int(blocked)),
            )
            return cur.rowcount == 1

    async def seed_blocked(self, phrases: Sequence[str]) -> None:
        async with self._transaction() as db, db.cursor() as many:
            await many.executemany(
                "INSERT INTO blocked_words (phrase, blocked) VALUES (%s, 1) ON CONFLICT DO NOTHING",
                [(phrase,) for phrase in phrases],
            )

    async def paused(self) -> bool:
        row = await self._one("SELECT value FROM switches WHERE name = %s", (PAUSED,))
        return bool(row and row["value"] == "1")

    async def set_paused(self, paused: bool) -> bool:
        value = "1" if paused else "0"
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO switches (name, value) VALUES (%s, '0') ON CONFLICT DO NOTHING",
                (PAUSED,),
            )
            cur = await db.execute(
                "UPDATE switches SET value = %s WHERE name = %s AND value <> %s",
                (value, PAUSED, value),
            )
            return cur.rowcount == 1

    async def server_settings(self, platform: str, server: str) -> ServerSettings:
        row = await self._one(
            "SELECT data FROM servers WHERE platform = %s AND server_id = %s", (platform, server)
        )
        return decode_server(row["data"]) if row else ServerSettings()

    async def save_server_settings(
        self, platform: str, server: str, settings: ServerSettings
    ) -> None:
        await self._query(
            "INSERT INTO servers (platform, server_id, data) VALUES (%s, %s, %s) "
            "ON CONFLICT (platform, server_id) DO UPDATE SET data = excluded.data",
            (platform, server, encode_server(settings)),
        )

    async def images_in(self, user: UserKey, server: str, day: str) -> int:
        row = await self._one(
            "SELECT coalesce(sum(charged), 0) AS images FROM jobs "
            "WHERE day = %s AND platform = %s AND user_id = %s AND server = %s",
            (day, user.platform, user.user_id, server),
        )
        return int(row["images"]) if row else 0

    async def day_stats(self, day: str, *, top: int) -> DayStats:
        states: dict[str, int] = {}
        outcomes: dict[str, int] = {}
        for row in await self._query(
            "SELECT state, outcome, count(*) AS n FROM jobs WHERE day = %s GROUP BY state, outcome",
            (day,),
        ):
            states[row["state"]] = states.get(row["state"], 0) + int(row["n"])
            if row["outcome"] is not None:
                outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + int(row["n"])
        users = [
            (UserKey(row["platform"], row["user_id"]), int(row["images"]))
            for row in await self._query(
                "SELECT platform, user_id, images FROM usage WHERE day = %s AND images > 0 "
                "ORDER BY images DESC, platform, user_id LIMIT %s",
                (day, top),
            )
        ]
        return DayStats(states, outcomes, users)

    async def audit(self, actor: UserKey, action: str, target: str) -> None:
        await self._query(
            "INSERT INTO audit (platform, user_id, action, target) VALUES (%s, %s, %s, %s)",
            (actor.platform, actor.user_id, action, target),
        )

    async def audit_log(self, limit: int) -> list[AuditEntry]:
        rows = await self._query(
            "SELECT extract(epoch FROM at)::float8 AS at, platform, user_id, action, target "
            "FROM audit ORDER BY id DESC LIMIT %s",
            (limit,),
        )
        return [
            AuditEntry(
                float(row["at"]),
                f"{row['platform']}:{row['user_id']}",
                row["action"],
                row["target"],
            )
            for row in rows
        ]
