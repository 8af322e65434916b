"""``SqlitePeople``: users joined across platforms by ``/link`` on SQLite — who is whom, the
short-lived codes that join them (kept as hashes only), and the tries at guessing one; and the
language each one reads."""

from __future__ import annotations

import time

from bot.core.people import Identity, UserKey
from bot.store.sqlite_file import SqliteDatabase, one, rows, scalar


class SqlitePeople(SqliteDatabase):
    async def identity(self, user: UserKey) -> Identity:
        found = await rows(
            self.reader,
            "SELECT platform, user_id, identity FROM identities WHERE identity = "
            "(SELECT identity FROM identities WHERE platform = ? AND user_id = ?) "
            "ORDER BY platform, user_id",
            (user.platform, user.user_id),
        )
        if not found:
            return Identity.alone(user)
        return Identity(UserKey.parse(str(found[0][2])), tuple(UserKey(r[0], r[1]) for r in found))

    async def language(self, user: UserKey) -> str | None:
        row = await one(
            self.reader,
            "SELECT code FROM languages WHERE platform = ? AND user_id = ?",
            (user.platform, user.user_id),
        )
        return str(row[0]) if row else None

    async def save_language(self, user: UserKey, code: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO languages (platform, user_id, code) VALUES (?, ?, ?) "
                "ON CONFLICT (platform, user_id) DO UPDATE SET code = excluded.code",
                (user.platform, user.user_id, code),
            )

    async def link(self, first: UserKey, second: UserKey) -> bool:
        async with self._transaction() as db:
            linked = await scalar(
                db,
                "SELECT count(*) FROM identities WHERE (platform = ? AND user_id = ?) "
                "OR (platform = ? AND user_id = ?)",
                (first.platform, first.user_id, second.platform, second.user_id),
            )
            if linked:
                return False
            await db.executemany(
                "INSERT INTO identities (platform, user_id, identity) VALUES (?, ?, ?)",
                [(user.platform, user.user_id, str(first)) for user in (first, second)],
            )
            return True

    async def unlink(self, user: UserKey) -> list[UserKey]:
        async with (
            self._transaction() as db,
            db.execute(
                "DELETE FROM identities WHERE identity = "
                "(SELECT identity FROM identities WHERE platform = ? AND user_id = ?) "
                "RETURNING platform, user_id",
                (user.platform, user.user_id),
            ) as cur,
        ):
            return sorted([UserKey(row[0], row[1]) async for row in cur], key=str)

    async def add_link_code(self, user: UserKey, code_hash: str, *, ttl: float) -> None:
        now = time.time()
        async with self._transaction() as db:
            # A new code replaces the user's earlier ones; expired codes of anyone go too.
            await db.execute(
                "DELETE FROM link_codes WHERE (platform = ? AND user_id = ?) OR expires_at <= ?",
                (user.platform, user.user_id, now),
            )
            await db.execute(
                "INSERT INTO link_codes (code_hash, platform, user_id, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (code_hash, user.platform, user.user_id, now + ttl),
            )

    async def take_link_code(self, code_hash: str) -> UserKey | None:
        async with self._transaction() as db:
            async with db.execute(
                "DELETE FROM link_codes WHERE code_hash = ? RETURNING platform, user_id, "
                "expires_at",
                (code_hash,),
            ) as cur:
                row = await cur.fetchone()
            return UserKey(row[0], row[1]) if row and row[2] > time.time() else None

    async def link_tries(self, user: UserKey, *, within: float) -> int:
        return await scalar(
            self.reader,
            "SELECT count(*) FROM link_tries WHERE platform = ? AND user_id = ? AND created_at > ?",
            (user.platform, user.user_id, time.time() - within),
        )

    async def add_link_try(self, user: UserKey, *, within: float) -> None:
        now = time.time()
        async with self._transaction() as db:
            await db.execute("DELETE FROM link_tries WHERE created_at <= ?", (now - within,))
            await db.execute(
                "INSERT INTO link_tries (platform, user_id, created_at) VALUES (?, ?, ?)",
                (user.platform, user.user_id, now),
            )
