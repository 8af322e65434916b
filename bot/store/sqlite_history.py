"""``SqliteHistory``: reading jobs back on SQLite — by id, by public id, a user's history — and
what /show leaves behind: the chats a job was shown in, and where its images were posted."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.domain import Job
from bot.core.people import UserKey
from bot.store.codec import JOB_COLUMNS, job_from_row
from bot.store.sqlite_file import SqliteDatabase, one, rows

# The codec's literal columns (S608).
JOB_SELECT = (
    f"SELECT {JOB_COLUMNS}, created_at, updated_at, "  # noqa: S608
    "delivered_at IS NOT NULL AS delivered, "
    "pruned_at IS NOT NULL AS pruned FROM jobs"
)


class SqliteHistory(SqliteDatabase):
    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        # Posted as a burst's answers go out, one after another: they share transactions.
        self._posts = self.grouped(_save_posted)

    async def get_job(self, job_id: int) -> Job | None:
        row = await one(self.reader, f"{JOB_SELECT} WHERE id = ?", (job_id,))
        return job_from_row(row) if row else None

    async def job_by_public_id(self, public_id: str) -> Job | None:
        row = await one(self.reader, f"{JOB_SELECT} WHERE public_id = ?", (public_id,))
        return job_from_row(row) if row else None

    async def history(self, users: Sequence[UserKey], *, offset: int, limit: int) -> list[Job]:
        keys = json.dumps([[user.platform, user.user_id] for user in users])
        return await self._jobs(
            "(platform, user_id) IN "
            "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)) "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (keys, limit, offset),
        )

    async def _jobs(self, where: str, params: Sequence[Any] = ()) -> list[Job]:
        # ``where`` is always a literal of this package; values travel as parameters.
        return [
            job_from_row(row)
            for row in await rows(self.reader, f"{JOB_SELECT} WHERE {where}", params)
        ]

    async def add_shown(self, job_id: int, chat: str) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR IGNORE INTO job_chats (job_id, chat) VALUES (?, ?)", (job_id, chat)
            )

    async def shown_in(self, job_id: int, chat: str) -> bool:
        row = await one(
            self.reader, "SELECT 1 FROM job_chats WHERE job_id = ? AND chat = ?", (job_id, chat)
        )
        return row is not None

    async def save_posted(self, job_id: int, platform: str, refs: Mapping[int, str]) -> None:
        await self._posts((job_id, platform, refs))

    async def posted(self, job_id: int) -> dict[int, dict[str, str]]:
        found: dict[int, dict[str, str]] = {}
        for row in await rows(
            self.reader, "SELECT idx, platform, ref FROM posted_images WHERE job_id = ?", (job_id,)
        ):
            found.setdefault(int(row[0]), {})[str(row[1])] = str(row[2])
        return found


async def _save_posted(
    db: aiosqlite.Connection, posts: list[tuple[int, str, Mapping[int, str]]]
) -> list[None]:
    # Only images still held: a job pruned meanwhile keeps none.
    await db.executemany(
        "INSERT OR REPLACE INTO posted_images (job_id, idx, platform, ref) "
        "SELECT ?, ?, ?, ? WHERE EXISTS "
        "(SELECT 1 FROM images WHERE job_id = ? AND idx = ?)",
        [
            (job_id, idx, platform, ref, job_id, idx)
            for job_id, platform, refs in posts
            for idx, ref in refs.items()
        ],
    )
    return [None for _ in posts]
