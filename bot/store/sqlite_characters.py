"""Characters in SQLite: a user's named characters and their pictures (``SqliteStore`` has these
queries through ``SqliteCharacters``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from bot.core.character_records import Character, CharacterImage, name_key
from bot.core.people import UserKey
from bot.store.codec import CHARACTER_COLUMNS, CHARACTER_DELETES, characters_from_rows
from bot.store.sqlite_file import SqliteDatabase, one, rows


class SqliteCharacters(SqliteDatabase):
    async def add_character(
        self,
        owner: UserKey,
        name: str,
        account: str,
        handle: str,
        images: Sequence[CharacterImage],
    ) -> Character | None:
        try:
            async with self._transaction() as db:
                cursor = await db.execute(
                    "INSERT INTO characters (platform, user_id, name, name_key, account, handle, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        owner.platform,
                        owner.user_id,
                        name,
                        name_key(name),
                        account,
                        handle,
                        time.time(),
                    ),
                )
                character_id = cursor.lastrowid
                assert character_id is not None
                await db.executemany(
                    "INSERT INTO character_images (character_id, idx, sha256, mime, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (character_id, idx, image.sha256, image.mime, image.data)
                        for idx, image in enumerate(images, 1)
                    ],
                )
        except sqlite3.IntegrityError:  # the name is taken (UNIQUE per user)
            return None
        kept = tuple(CharacterImage(i.sha256, i.mime) for i in images)
        return Character(character_id, owner, name, account, handle, kept)

    async def characters(self, owner: UserKey) -> list[Character]:
        return await self._characters(
            "c.platform = ? AND c.user_id = ?", (owner.platform, owner.user_id)
        )

    async def shared_characters(self, place: str) -> list[Character]:
        return await self._characters(
            "c.id IN (SELECT character_id FROM character_shares WHERE place = ?)", (place,)
        )

    async def share_character(self, place: str, character_id: int, name: str) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute(
                "INSERT INTO character_shares (place, name_key, character_id) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (place, name_key(name), character_id),
            )
            return cursor.rowcount == 1

    async def unshare_character(self, place: str, character_id: int) -> bool:
        async with self._transaction() as db:
            cursor = await db.execute(
                "DELETE FROM character_shares WHERE place = ? AND character_id = ?",
                (place, character_id),
            )
            return cursor.rowcount == 1

    async def character(self, character_id: int) -> Character | None:
        found = await self._characters("c.id = ?", (character_id,))
        return found[0] if found else None

    async def _characters(self, where: str, params: Sequence[object]) -> list[Character]:
        # ``where`` is always a literal of this module; values travel as parameters.
        sql = (
            f"SELECT {CHARACTER_COLUMNS} FROM characters c "  # noqa: S608
            "JOIN character_images i ON i.character_id = c.id "
            f"WHERE {where} ORDER BY c.name_key, c.id, i.idx"
        )
        return characters_from_rows(await rows(self.reader, sql, params))

    async def character_images(self, character_id: int) -> list[CharacterImage]:
        found = await rows(
            self.reader,
            "SELECT sha256, mime, data FROM character_images WHERE character_id = ? ORDER BY idx",
            (character_id,),
        )
        return [CharacterImage(str(s), str(m), bytes(d)) for s, m, d in found]

    async def picture(self, sha256: str) -> bytes | None:
        row = await one(
            self.reader,
            "SELECT data FROM blobs WHERE sha256 = ? "
            "UNION ALL SELECT data FROM character_images WHERE sha256 = ? LIMIT 1",
            (sha256, sha256),
        )
        return bytes(row[0]) if row else None

    async def move_character(self, character_id: int, account: str, handle: str) -> None:
        async with self._transaction() as db:
            async with db.execute(
                "SELECT account, handle FROM characters WHERE id = ?", (character_id,)
            ) as cur:
                was = await cur.fetchone()
            await db.execute(
                "UPDATE characters SET account = ?, handle = ? WHERE id = ?",
                (account, handle, character_id),
            )
            if was is not None and was[1] and was[1] != handle:
                await db.execute(
                    "INSERT INTO pending (kind, key, value, created_at) VALUES (?, ?, ?, ?)",
                    (CHARACTER_DELETES, str(was[1]), str(was[0]), time.time()),
                )

    async def delete_character(self, owner: UserKey, character_id: int) -> bool:
        async with self._transaction() as db:
            async with db.execute(
                "DELETE FROM characters WHERE id = ? AND platform = ? AND user_id = ? "
                "RETURNING account, handle",
                (character_id, owner.platform, owner.user_id),
            ) as cur:
                gone = [(str(a), str(h)) async for a, h in cur]
            for account, handle in gone:
                if handle:
                    await db.execute(
                        "INSERT INTO pending (kind, key, value, created_at) VALUES (?, ?, ?, ?)",
                        (CHARACTER_DELETES, handle, account, time.time()),
                    )
        return bool(gone)

    async def character_deletions(self) -> list[tuple[str, str]]:
        found = await rows(
            self.reader,
            "SELECT key, value FROM pending WHERE kind = ? ORDER BY id",
            (CHARACTER_DELETES,),
        )
        return [(str(handle), str(account)) for handle, account in found]

    async def character_deleted(self, handle: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM pending WHERE kind = ? AND key = ?", (CHARACTER_DELETES, handle)
            )
