"""The operator's controls on SQLite (``bot.core.controls.Controls``): bans, quotas (the default
one too), blocked words, the queue's pause, each server's settings, what a day's jobs came to,
and who did what. ``SqliteStore`` adds the jobs on top."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.core.community import AuditEntry, ServerSettings
from bot.core.controls import DayStats
from bot.core.people import UserKey
from bot.store.codec import DEFAULT, PAUSED, decode_server, encode_server
from bot.store.sqlite_file import SqliteDatabase, one, rows


class SqliteControls(SqliteDatabase):
    async def is_banned(self, user: UserKey) -> bool:
        row = await one(
            self.reader,
            "SELECT 1 FROM bans WHERE platform = ? AND user_id = ?",
            (user.platform, user.user_id),
        )
        return row is not None

    async def set_banned(self, user: UserKey, banned: bool) -> bool:
        async with self._transaction() as db:
            if banned:
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO bans (platform, user_id, created_at) VALUES (?, ?, ?)",
                    (user.platform, user.user_id, time.time()),
                )
            else:
                cursor = await db.execute(
                    "DELETE FROM bans WHERE platform = ? AND user_id = ?",
                    (user.platform, user.user_id),
                )
            return cursor.rowcount == 1

    async def quota(self, user: UserKey | None) -> int | None:
        who = user or DEFAULT
        row = await one(
            self.reader,
            "SELECT images FROM quotas WHERE platform = ? AND user_id = ?",
            (who.platform, who.user_id),
        )
        return int(row[0]) if row else None

    async def set_quota(self, user: UserKey | None, images: int | None) -> None:
        who = user or DEFAULT
        async with self._transaction() as db:
            if images is None:
                await db.execute(
                    "DELETE FROM quotas WHERE platform = ? AND user_id = ?",
                    (who.platform, who.user_id),
                )
            else:
                await db.execute(
                    "INSERT OR REPLACE INTO quotas (platform, user_id, images) VALUES (?, ?, ?)",
                    (who.platform, who.user_id, images),
                )

    async def blocked_words(self) -> list[str]:
        sql = "SELECT phrase FROM blocked_words WHERE blocked = 1 ORDER BY phrase"
        return [str(row[0]) for row in await rows(self.reader, sql)]

    async def set_blocked(self, phrase: str, blocked: bool) -> bool:
        async with self._transaction() as db:
            row = await one(db, "SELECT blocked FROM blocked_words WHERE phrase = ?", (phrase,))
            # An unblocked phrase stays as a row, so that BOT_BLOCKED_WORDS won't seed it again.
            await db.execute(
                "INSERT OR REPLACE INTO blocked_words (phrase, blocked, updated_at) "
                "VALUES (?, ?, ?)",
                (phrase, int(blocked), time.time()),
            )
            return bool(row and row[0]) != blocked

    async def seed_blocked(self, phrases: Sequence[str]) -> None:
        async with self._transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO blocked_words (phrase, blocked, updated_at) "
                "VALUES (?, 1, ?)",
                [(phrase, time.time()) for phrase in phrases],
            )

    async def paused(self) -> bool:
        row = await one(self.reader, "SELECT value FROM switches WHERE name = ?", (PAUSED,))
        return bool(row and row[0] == "1")

    async def set_paused(self, paused: bool) -> bool:
        async with self._transaction() as db:
            row = await one(db, "SELECT value FROM switches WHERE name = ?", (PAUSED,))
            await db.execute(
                "INSERT OR REPLACE INTO switches (name, value) VALUES (?, ?)",
                (PAUSED, "1" if paused else "0"),
            )
            return bool(row and row[0] == "1") != paused

    async def server_settings(self, platform: str, server: str) -> ServerSettings:
        row = await one(
            self.reader,
            "SELECT data FROM servers WHERE platform = ? AND server_id = ?",
            (platform, server),
        )
        return decode_server(row[0]) if row else ServerSettings()

    async def save_server_settings(
        self, platform: str, server: str, settings: ServerSettings
    ) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO servers (platform, server_id, data) VALUES (?, ?, ?)",
                (platform, server, encode_server(settings)),
            )

    async def images_in(self, user: UserKey, server: str, day: str) -> int:
        row = await one(
            self.reader,
            "SELECT coalesce(sum(charged), 0) FROM jobs "
            "WHERE day = ? AND platform = ? AND user_id = ? AND server = ?",
            (day, user.platform, user.user_id, server),
        )
        return int(row[0]) if row else 0

    async def day_stats(self, day: str, *, top: int) -> DayStats:
        states: dict[str, int] = {}
        outcomes: dict[str, int] = {}
        for state, outcome, count in await rows(
            self.reader,
            "SELECT state, outcome, count(*) FROM jobs WHERE day = ? GROUP BY state, outcome",
            (day,),
        ):
            states[state] = states.get(state, 0) + count
            if outcome is not None:
                outcomes[outcome] = outcomes.get(outcome, 0) + count
        top_users = await rows(
            self.reader,
            "SELECT platform, user_id, images FROM usage WHERE day = ? AND images > 0 "
            "ORDER BY images DESC, platform, user_id LIMIT ?",
            (day, top),
        )
        users = [(UserKey(str(p), str(u)), int(n)) for p, u, n in top_users]
        return DayStats(states, outcomes, users)

    async def audit(self, actor: UserKey, action: str, target: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO audit (at, platform, user_id, action, target) VALUES (?, ?, ?, ?, ?)",
                (time.time(), actor.platform, actor.user_id, action, target),
            )

    async def audit_log(self, limit: int) -> list[AuditEntry]:
        found = await rows(
            self.reader,
            "SELECT at, platform, user_id, action, target FROM audit ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            AuditEntry(float(at), f"{platform}:{user}", str(action), str(target))
            for at, platform, user, action, target in found
        ]
