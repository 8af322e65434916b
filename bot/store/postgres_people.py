"""``PostgresPeople``: users joined across platforms by ``/link`` on PostgreSQL — who is whom,
the short-lived codes that join them (kept as hashes only), and the tries at guessing one; and
the language each one reads. Times are the server's, as everywhere in this store."""

from __future__ import annotations

from bot.core.people import Identity, UserKey
from bot.store.caps import LINKS_LOCK
from bot.store.postgres_server import PostgresDatabase


class PostgresPeople(PostgresDatabase):
    async def identity(self, user: UserKey) -> Identity:
        rows = await self._query(
            "SELECT platform, user_id, identity FROM identities WHERE identity = "
            "(SELECT identity FROM identities WHERE platform = %s AND user_id = %s) "
            "ORDER BY platform, user_id",
            (user.platform, user.user_id),
        )
        if not rows:
            return Identity.alone(user)
        users = tuple(UserKey(row["platform"], row["user_id"]) for row in rows)
        return Identity(UserKey.parse(rows[0]["identity"]), users)

    async def language(self, user: UserKey) -> str | None:
        row = await self._one(
            "SELECT code FROM languages WHERE platform = %s AND user_id = %s",
            (user.platform, user.user_id),
        )
        return str(row["code"]) if row else None

    async def save_language(self, user: UserKey, code: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO languages (platform, user_id, code) VALUES (%s, %s, %s) "
                "ON CONFLICT (platform, user_id) DO UPDATE SET code = excluded.code",
                (user.platform, user.user_id, code),
            )

    async def link(self, first: UserKey, second: UserKey) -> bool:
        try:
            async with self._transaction() as db:
                await db.execute("SELECT pg_advisory_xact_lock(%s)", (LINKS_LOCK,))  # caps.py
                # Either user linked already (or meanwhile, by another process: the unique key
                # makes this wait for it) inserts fewer than both: then nothing is kept.
                cur = await db.execute(
                    "INSERT INTO identities (platform, user_id, identity) "
                    "SELECT platform, user_id, %s FROM (VALUES (%s, %s), (%s, %s)) "
                    "AS v(platform, user_id) WHERE NOT EXISTS (SELECT 1 FROM identities i "
                    "WHERE (i.platform, i.user_id) IN ((%s, %s), (%s, %s))) "
                    "ON CONFLICT DO NOTHING",
                    (str(first), *_pair(first, second), *_pair(first, second)),
                )
                if cur.rowcount != 2:
                    raise _Taken
        except _Taken:
            return False
        return True

    async def unlink(self, user: UserKey) -> list[UserKey]:
        async with self._transaction() as db:
            await db.execute("SELECT pg_advisory_xact_lock(%s)", (LINKS_LOCK,))  # caps.py
            cur = await db.execute(
                "DELETE FROM identities WHERE identity = "
                "(SELECT identity FROM identities WHERE platform = %s AND user_id = %s) "
                "RETURNING platform, user_id",
                (user.platform, user.user_id),
            )
            rows = await cur.fetchall()
        return sorted((UserKey(row["platform"], row["user_id"]) for row in rows), key=str)

    async def add_link_code(self, user: UserKey, code_hash: str, *, ttl: float) -> None:
        async with self._transaction() as db:
            # A new code replaces the user's earlier ones; expired codes of anyone go too.
            await db.execute(
                "DELETE FROM link_codes WHERE (platform = %s AND user_id = %s) "
                "OR expires_at <= now()",
                (user.platform, user.user_id),
            )
            await db.execute(
                "INSERT INTO link_codes (code_hash, platform, user_id, expires_at) "
                "VALUES (%s, %s, %s, now() + make_interval(secs => %s))",
                (code_hash, user.platform, user.user_id, ttl),
            )

    async def take_link_code(self, code_hash: str) -> UserKey | None:
        # One statement: two takers can't both get it.
        row = await self._one(
            "DELETE FROM link_codes WHERE code_hash = %s "
            "RETURNING platform, user_id, expires_at > now() AS valid",
            (code_hash,),
        )
        return UserKey(row["platform"], row["user_id"]) if row and row["valid"] else None

    async def link_tries(self, user: UserKey, *, within: float) -> int:
        row = await self._one(
            "SELECT count(*) AS tries FROM link_tries WHERE platform = %s AND user_id = %s "
            "AND created_at > now() - make_interval(secs => %s)",
            (user.platform, user.user_id, within),
        )
        return int(row["tries"]) if row else 0

    async def add_link_try(self, user: UserKey, *, within: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM link_tries WHERE created_at <= now() - make_interval(secs => %s)",
                (within,),
            )
            await db.execute(
                "INSERT INTO link_tries (platform, user_id) VALUES (%s, %s)",
                (user.platform, user.user_id),
            )


class _Taken(Exception):
    """One of the users is linked already: the transaction rolls back."""


def _pair(first: UserKey, second: UserKey) -> tuple[str, str, str, str]:
    return first.platform, first.user_id, second.platform, second.user_id
