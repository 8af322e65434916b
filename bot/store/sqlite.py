"""``SqliteStore``: the durable state on aiosqlite (WAL, busy timeout, versioned migrations).

One connection serves the process; SQLite serialises writers anyway, and WAL lets readers proceed.
Writes that read first run under ``BEGIN IMMEDIATE`` so two processes can't interleave them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.domain import Execution, Job, JobState, Lineage, Request, ResultImage, UserSettings
from bot.core.monitoring import Outcome
from bot.core.people import Owner, UserKey
from bot.core.ports import Caps
from bot.core.public_ids import new_public_id
from bot.store.caps import check_sqlite as check_caps
from bot.store.codec import (
    IMAGE_COLUMNS,
    decode_settings,
    encode_execution,
    encode_request,
    encode_settings,
    encode_text,
    image_from_row,
    job_from_row,
    lineage_of,
    tombstone,
)
from bot.store.errors import StoreError
from bot.store.sqlite_accounts import SqliteAccounts
from bot.store.sqlite_characters import SqliteCharacters
from bot.store.sqlite_controls import SqliteControls
from bot.store.sqlite_file import one, rows
from bot.store.sqlite_grouped import drop_uploads, finish_jobs, mark_delivered, mark_running
from bot.store.sqlite_history import JOB_SELECT, SqliteHistory
from bot.store.sqlite_parking import SqliteParking
from bot.store.sqlite_people import SqlitePeople

log = logging.getLogger(__name__)

# Draws of a public job id before giving up (each clashes with odds of jobs stored / 2.4e10).
PUBLIC_ID_TRIES = 8


class SqliteStore(
    SqliteCharacters, SqliteHistory, SqlitePeople, SqliteControls, SqliteParking, SqliteAccounts
):
    """Implements ``Store`` and ``Parking`` (``bot.core.ports``); ``async with SqliteStore(path)
    as store``."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        # A burst's starts, answers and deliveries come together: they share transactions.
        self._starts = self.grouped(mark_running)
        self._finishes = self.grouped(finish_jobs)
        self._deliveries = self.grouped(mark_delivered)

    async def add_job(
        self,
        owner: Owner,
        request: Request,
        blobs: Mapping[str, bytes],
        *,
        day: str,
        caps: Caps | None = None,
        parent: Lineage | None = None,
        held: bool = False,  # one process: its own scheduler holds the job (``Store.told``)
    ) -> Job:
        now = time.time()
        async with self._transaction() as db:
            await check_caps(db, owner.user, day, request.count, caps)
            for _ in range(PUBLIC_ID_TRIES):
                public_id = new_public_id()
                row = await one(
                    db,
                    "INSERT INTO jobs (public_id, platform, user_id, owner_name, chat_id, "
                    "reply_to, route, server, request, state, source_job, source_action, "
                    "source_index, day, charged, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (public_id) DO NOTHING RETURNING id",
                    (
                        public_id,
                        owner.platform,
                        owner.user_id,
                        owner.name,
                        owner.chat_id,
                        owner.reply_to,
                        json.dumps(dict(owner.route)),
                        owner.server,
                        encode_request(request),
                        JobState.QUEUED.value,
                        *lineage_of(request, parent),
                        day,
                        request.count,
                        now,
                        now,
                    ),
                )
                if row is not None:  # else that public id is taken: draw another
                    break
            else:
                raise StoreError("no free public job id after several draws")
            job_id = int(row[0])
            for sha, data in blobs.items():
                await db.execute(
                    "INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)", (sha, data)
                )
                await db.execute(
                    "INSERT OR IGNORE INTO job_uploads (job_id, sha256) VALUES (?, ?)",
                    (job_id, sha),
                )
            await db.execute(
                "INSERT INTO usage (platform, user_id, day, jobs, images) VALUES (?, ?, ?, 1, ?) "
                "ON CONFLICT DO UPDATE SET jobs = jobs + 1, images = images + excluded.images",
                (owner.platform, owner.user_id, day, request.count),
            )
            # Read back as any reader will see it (lineage and all), on this connection: what it
            # just wrote is there whatever the reader is in the middle of.
            added = await one(db, f"{JOB_SELECT} WHERE id = ?", (job_id,))
        assert added is not None
        return job_from_row(added)

    async def told(self, job_id: int) -> None:
        return None  # one process: its own scheduler was told

    async def unfinished_jobs(self) -> list[Job]:
        return await self._jobs("state IN ('queued', 'running') ORDER BY id")

    async def undelivered_jobs(self) -> list[Job]:
        return await self._jobs(
            "delivered_at IS NULL AND state IN ('done', 'failed', 'cancelled') ORDER BY id"
        )

    async def user_jobs(self, user: UserKey) -> list[Job]:
        return await self._jobs(
            "platform = ? AND user_id = ? AND state IN ('queued', 'running') ORDER BY id",
            (user.platform, user.user_id),
        )

    async def upscales_of(self, source_job: int) -> list[Job]:
        return await self._jobs("source_job = ? AND source_action = 'u' ORDER BY id", (source_job,))

    async def mark_running(self, job_id: int, account: str) -> int:
        return await self._starts((job_id, account))

    async def requeue(self, job_id: int) -> None:
        await self._set(job_id, "state = 'queued'", "state = 'running'")

    async def update_request(self, job_id: int, request: Request) -> None:
        await self._set(job_id, "request = ?", params=(encode_request(request),))

    async def save_execution(self, job_id: int, execution: Execution | None) -> None:
        await self._set(job_id, "execution = ?", params=(encode_execution(execution),))

    async def finish_job(self, job_id: int, images: Sequence[ResultImage]) -> bool:
        return await self._finishes((job_id, images))

    async def fail_job(self, job_id: int, message: str, outcome: Outcome = Outcome.FAILED) -> bool:
        async with self._transaction() as db:
            # Only an open job can fail: a cancelled or finished one keeps its one final answer.
            cursor = await db.execute(
                "UPDATE jobs SET state = 'failed', error = ?, outcome = ?, updated_at = ? "
                "WHERE id = ? AND state IN ('queued', 'running')",
                (encode_text(message), outcome.value, time.time(), job_id),
            )
            failed = cursor.rowcount == 1
            if failed:
                await _give_back(db, job_id)
            return failed

    async def cancel_job(self, job_id: int, reason: str | None = None) -> bool:
        now = time.time()
        async with self._transaction() as db:
            was = await one(db, "SELECT state FROM jobs WHERE id = ?", (job_id,))
            cursor = await db.execute(
                "UPDATE jobs SET state = 'cancelled', outcome = 'cancelled', error = ?, "
                "updated_at = ?, delivered_at = ? WHERE id = ? AND state IN ('queued', 'running')",
                (
                    None if reason is None else encode_text(reason),
                    now,
                    None if reason else now,
                    job_id,
                ),
            )
            changed = cursor.rowcount == 1
            if changed:
                if was is not None and was[0] == JobState.QUEUED.value:
                    await _give_back(db, job_id)  # a running one is made (and paid) all the same
                await drop_uploads(db, job_id)
            return changed

    async def mark_delivered(self, job_id: int) -> None:
        await self._deliveries(job_id)

    async def results(self, job_id: int) -> list[ResultImage]:
        sql = f"SELECT {IMAGE_COLUMNS} FROM images WHERE job_id = ? ORDER BY idx"  # noqa: S608
        return [image_from_row(row) for row in await rows(self.reader, sql, (job_id,))]

    async def blob(self, sha256: str) -> bytes | None:
        row = await one(self.reader, "SELECT data FROM blobs WHERE sha256 = ?", (sha256,))
        return bytes(row[0]) if row else None

    async def user_settings(self, user: UserKey) -> UserSettings:
        row = await one(
            self.reader,
            "SELECT data FROM user_settings WHERE platform = ? AND user_id = ?",
            (user.platform, user.user_id),
        )
        return decode_settings(row[0]) if row else UserSettings()

    async def save_user_settings(self, user: UserKey, settings: UserSettings) -> None:
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO user_settings (platform, user_id, data) VALUES (?, ?, ?)",
                (user.platform, user.user_id, encode_settings(settings)),
            )

    async def images_on(self, user: UserKey, day: str) -> int:
        row = await one(
            self.reader,
            "SELECT images FROM usage WHERE platform = ? AND user_id = ? AND day = ?",
            (user.platform, user.user_id, day),
        )
        return int(row[0]) if row else 0

    async def prune(self, older_than: float, *, limit: int) -> int:
        """Prune up to ``limit`` delivered jobs older than ``older_than`` seconds (prompt, images,
        uploads; the row stays, marked), and as many old cached assets and parked values.
        One short transaction: call again until it returns 0."""
        cutoff = time.time() - older_than
        async with self._transaction() as db:
            async with db.execute(
                "SELECT id, request FROM jobs WHERE pruned_at IS NULL AND created_at < ? "
                "AND delivered_at IS NOT NULL AND state IN ('done', 'failed', 'cancelled') "
                "ORDER BY created_at LIMIT ?",
                (cutoff, limit),
            ) as cur:
                jobs = [(int(row[0]), str(row[1])) async for row in cur]
            await db.executemany(
                "UPDATE jobs SET request = ?, owner_name = '', pruned_at = ? WHERE id = ?",
                [(tombstone(request), time.time(), job_id) for job_id, request in jobs],
            )
            await db.executemany(
                "DELETE FROM images WHERE job_id = ?", [(job_id,) for job_id, _ in jobs]
            )
            # Uploads normally went when the job was answered; any still held go now.
            async with db.execute(
                "SELECT DISTINCT job_id FROM job_uploads "
                "WHERE job_id IN (SELECT value FROM json_each(?))",
                (json.dumps([job_id for job_id, _ in jobs]),),
            ) as cur:
                holding = [int(row[0]) async for row in cur]
            for job_id in holding:
                await drop_uploads(db, job_id)
            pruned = len(jobs)
            for table in ("assets", "pending"):
                # Literal table names; both have created_at.
                cursor = await db.execute(
                    f"DELETE FROM {table} WHERE rowid IN "  # noqa: S608
                    f"(SELECT rowid FROM {table} WHERE created_at < ? LIMIT ?)",
                    (cutoff, limit),
                )
                pruned += cursor.rowcount
        return pruned

    async def _set(
        self, job_id: int, assignments: str, only_if: str = "1", params: Sequence[Any] = ()
    ) -> None:
        async with self._transaction() as db:
            # ``assignments`` and ``only_if`` are literals of this module, never user text.
            await db.execute(
                f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ? AND {only_if}",  # noqa: S608
                (*params, time.time(), job_id),
            )


async def _give_back(db: aiosqlite.Connection, job_id: int) -> None:
    """A job that made nothing (failed or cancelled) no longer counts in its owner's day."""
    await db.execute(
        "UPDATE usage SET images = max(images - (SELECT charged FROM jobs WHERE id = ?), 0) "
        "WHERE (platform, user_id, day) = (SELECT platform, user_id, day FROM jobs WHERE id = ?)",
        (job_id, job_id),
    )
    await db.execute("UPDATE jobs SET charged = 0 WHERE id = ?", (job_id,))
