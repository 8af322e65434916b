"""``PostgresHistory``: reading jobs back on PostgreSQL — by id, by public id, a user's
history — and what /show leaves behind: the chats a job was shown in, and where its images were
posted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, LiteralString

from bot.core.domain import Job
from bot.core.people import UserKey
from bot.store.codec import JOB_COLUMNS, job_from_row
from bot.store.postgres_server import PostgresDatabase

# The codec's literal columns (S608).
JOB_SELECT = (
    f"SELECT {JOB_COLUMNS}, extract(epoch FROM created_at)::float8 AS created_at, "  # noqa: S608
    "extract(epoch FROM updated_at)::float8 AS updated_at, "
    "delivered_at IS NOT NULL AS delivered, pruned_at IS NOT NULL AS pruned FROM jobs"
)


class PostgresHistory(PostgresDatabase):
    async def get_job(self, job_id: int) -> Job | None:
        row = await self._one(f"{JOB_SELECT} WHERE id = %s", (job_id,))
        return job_from_row(row) if row else None

    async def job_by_public_id(self, public_id: str) -> Job | None:
        row = await self._one(f"{JOB_SELECT} WHERE public_id = %s", (public_id,))
        return job_from_row(row) if row else None

    async def history(self, users: Sequence[UserKey], *, offset: int, limit: int) -> list[Job]:
        return await self._jobs(
            "(platform, user_id) IN (SELECT * FROM unnest(%s::text[], %s::text[])) "
            "ORDER BY id DESC LIMIT %s OFFSET %s",
            ([u.platform for u in users], [u.user_id for u in users], limit, offset),
        )

    async def _jobs(self, where: LiteralString, params: Sequence[Any] = ()) -> list[Job]:
        # ``where`` is always a literal of this package; values travel as parameters.
        return [
            job_from_row(row) for row in await self._query(f"{JOB_SELECT} WHERE {where}", params)
        ]

    async def add_shown(self, job_id: int, chat: str) -> None:
        await self._query(
            "INSERT INTO job_chats (job_id, chat) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (job_id, chat),
        )

    async def shown_in(self, job_id: int, chat: str) -> bool:
        row = await self._one(
            "SELECT 1 AS shown FROM job_chats WHERE job_id = %s AND chat = %s", (job_id, chat)
        )
        return row is not None

    async def save_posted(self, job_id: int, platform: str, refs: Mapping[int, str]) -> None:
        async with self._transaction() as db, db.cursor() as many:
            # Only images still held: a job pruned meanwhile keeps none.
            await many.executemany(
                "INSERT INTO posted_images (job_id, idx, platform, ref) "
                "SELECT %s, %s, %s, %s WHERE EXISTS "
                "(SELECT 1 FROM images WHERE job_id = %s AND idx = %s) "
                "ON CONFLICT (job_id, idx, platform) DO UPDATE SET ref = excluded.ref",
                [(job_id, idx, platform, ref, job_id, idx) for idx, ref in refs.items()],
            )

    async def posted(self, job_id: int) -> dict[int, dict[str, str]]:
        rows = await self._query(
            "SELECT idx, platform, ref FROM posted_images WHERE job_id = %s", (job_id,)
        )
        found: dict[int, dict[str, str]] = {}
        for row in rows:
            found.setdefault(int(row["idx"]), {})[str(row["platform"])] = str(row["ref"])
        return found
