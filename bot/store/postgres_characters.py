"""Characters in PostgreSQL: a user's named characters and their pictures (``PostgresStore`` has
these queries through ``PostgresCharacters``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import LiteralString

from bot.core.character_records import Character, CharacterImage, name_key
from bot.core.people import UserKey
from bot.store.codec import CHARACTER_COLUMNS, CHARACTER_DELETES, characters_from_rows
from bot.store.postgres_server import PostgresDatabase


class PostgresCharacters(PostgresDatabase):
    async def add_character(
        self,
        owner: UserKey,
        name: str,
        account: str,
        handle: str,
        images: Sequence[CharacterImage],
    ) -> Character | None:
        async with self._transaction() as db:
            # One statement decides a race for the name: the loser inserts nothing.
            cur = await db.execute(
                "INSERT INTO characters (platform, user_id, name, name_key, account, handle) "
                "VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (platform, user_id, name_key) DO NOTHING RETURNING id",
                (owner.platform, owner.user_id, name, name_key(name), account, handle),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            character_id = int(row["id"])
            async with db.cursor() as many:
                await many.executemany(
                    "INSERT INTO character_images (character_id, idx, sha256, mime, data) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    [
                        (character_id, idx, image.sha256, image.mime, image.data)
                        for idx, image in enumerate(images, 1)
                    ],
                )
        kept = tuple(CharacterImage(i.sha256, i.mime) for i in images)
        return Character(character_id, owner, name, account, handle, kept)

    async def characters(self, owner: UserKey) -> list[Character]:
        return await self._characters(
            "c.platform = %s AND c.user_id = %s", (owner.platform, owner.user_id)
        )

    async def shared_characters(self, place: str) -> list[Character]:
        return await self._characters(
            "c.id IN (SELECT character_id FROM character_shares WHERE place = %s)", (place,)
        )

    async def share_character(self, place: str, character_id: int, name: str) -> bool:
        rows = await self._query(
            "INSERT INTO character_shares (place, name_key, character_id) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING character_id",
            (place, name_key(name), character_id),
        )
        return bool(rows)

    async def unshare_character(self, place: str, character_id: int) -> bool:
        rows = await self._query(
            "DELETE FROM character_shares WHERE place = %s AND character_id = %s "
            "RETURNING character_id",
            (place, character_id),
        )
        return bool(rows)

    async def character(self, character_id: int) -> Character | None:
        found = await self._characters("c.id = %s", (character_id,))
        return found[0] if found else None

    async def _characters(self, where: LiteralString, params: Sequence[object]) -> list[Character]:
        # ``where`` is always a literal of this module; values travel as parameters.
        sql = (
            f"SELECT {CHARACTER_COLUMNS} FROM characters c "  # noqa: S608
            "JOIN character_images i ON i.character_id = c.id "
            f"WHERE {where} ORDER BY c.name_key, c.id, i.idx"
        )
        return characters_from_rows(await self._query(sql, params))

    async def character_images(self, character_id: int) -> list[CharacterImage]:
        rows = await self._query(
            "SELECT sha256, mime, data FROM character_images WHERE character_id = %s ORDER BY idx",
            (character_id,),
        )
        return [CharacterImage(r["sha256"], r["mime"], bytes(r["data"])) for r in rows]

    async def picture(self, sha256: str) -> bytes | None:
        row = await self._one(
            "SELECT data FROM blobs WHERE sha256 = %s "
            "UNION ALL SELECT data FROM character_images WHERE sha256 = %s LIMIT 1",
            (sha256, sha256),
        )
        return bytes(row["data"]) if row else None

    async def move_character(self, character_id: int, account: str, handle: str) -> None:
        # One statement: the character moves, and its old copy waits to be deleted there.
        await self._query(
            "WITH was AS (SELECT account, handle FROM characters WHERE id = %s FOR UPDATE), "
            "moved AS (UPDATE characters SET account = %s, handle = %s WHERE id = %s) "
            "INSERT INTO pending (kind, key, value) "
            "SELECT %s, handle, account FROM was WHERE handle <> '' AND handle <> %s",
            (character_id, account, handle, character_id, CHARACTER_DELETES, handle),
        )

    async def delete_character(self, owner: UserKey, character_id: int) -> bool:
        # One statement: the character goes, and its Flow copy waits to be deleted there.
        rows = await self._query(
            "WITH gone AS (DELETE FROM characters WHERE id = %s AND platform = %s "
            "AND user_id = %s RETURNING account, handle), "
            "parked AS (INSERT INTO pending (kind, key, value) "
            "SELECT %s, handle, account FROM gone WHERE handle <> '') "
            "SELECT 1 AS deleted FROM gone",
            (character_id, owner.platform, owner.user_id, CHARACTER_DELETES),
        )
        return bool(rows)

    async def character_deletions(self) -> list[tuple[str, str]]:
        rows = await self._query(
            "SELECT key, value FROM pending WHERE kind = %s ORDER BY id", (CHARACTER_DELETES,)
        )
        return [(str(row["key"]), str(row["value"])) for row in rows]

    async def character_deleted(self, handle: str) -> None:
        await self._query(
            "DELETE FROM pending WHERE kind = %s AND key = %s", (CHARACTER_DELETES, handle)
        )
