"""The writes of a job's life that a burst makes many of at once (twenty jobs started, twenty
answered, twenty delivered), each written for a whole group of jobs: ``SqliteStore`` gives them
to its writer's group commit (``group_commit``)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import aiosqlite

from bot.core.domain import ResultImage
from bot.store.codec import image_row, kept_uploads
from bot.store.sqlite_file import rows

# What ``kept_uploads`` needs to know of the jobs being answered that hold uploads.
_KEPT = (
    "SELECT id, state, request, EXISTS (SELECT 1 FROM images WHERE job_id = jobs.id) "
    "FROM jobs WHERE id IN (SELECT value FROM json_each(?)) "
    "AND id IN (SELECT job_id FROM job_uploads)"
)


async def mark_running(db: aiosqlite.Connection, starts: list[tuple[int, str]]) -> list[int]:
    """Each job's attempts so far, this one counted (0: it ended meanwhile, a cancel)."""
    await db.executemany(
        "UPDATE jobs SET state = 'running', account = ?, attempts = attempts + 1, "
        "updated_at = ? WHERE id = ? AND state IN ('queued', 'running')",
        [(account, time.time(), job_id) for job_id, account in starts],
    )
    ids = [job_id for job_id, _ in starts]
    # Running now means it was open: an ended job keeps its state.
    found = await rows(
        db,
        "SELECT id, attempts FROM jobs WHERE state = 'running' AND id IN "
        "(SELECT value FROM json_each(?))",
        (json.dumps(ids),),
    )
    attempts = {row[0]: int(row[1]) for row in found}
    return [attempts.get(job_id, 0) for job_id in ids]


async def finish_jobs(
    db: aiosqlite.Connection, finishes: list[tuple[int, Sequence[ResultImage]]]
) -> list[bool]:
    """Each job done with its images; False for one that ended meanwhile (cancelled while it
    ran): its images are not kept."""
    ids = [job_id for job_id, _ in finishes]
    done = await rows(
        db,
        "UPDATE jobs SET state = 'done', error = NULL, outcome = 'done', updated_at = ? "
        "WHERE id IN (SELECT value FROM json_each(?)) AND state IN ('queued', 'running') "
        "RETURNING id",
        (time.time(), json.dumps(ids)),
    )
    finished = {row[0] for row in done}
    await db.executemany(
        "INSERT OR REPLACE INTO images (job_id, idx, media_id, account, provider, seed, "
        "model, mime, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            image_row(job_id, image)
            for job_id, images in finishes
            if job_id in finished
            for image in images
        ],
    )
    return [job_id in finished for job_id in ids]


async def mark_delivered(db: aiosqlite.Connection, job_ids: list[int]) -> list[None]:
    """Each job's answer given: what only the delivery needed goes (its images' bytes that a
    handle stands for, the uploads no button needs)."""
    ids = json.dumps(job_ids)
    await db.execute(
        "UPDATE jobs SET delivered_at = ? "
        "WHERE id IN (SELECT value FROM json_each(?)) AND delivered_at IS NULL",
        (time.time(), ids),
    )
    # Delivered images live on at the platform; we keep only what buttons need: the bytes of
    # images no handle stands for (R sends them), the pictures a done job's request still
    # names (🎲 sends them again, as pictures or as links).
    await db.execute(
        "UPDATE images SET data = NULL "
        "WHERE job_id IN (SELECT value FROM json_each(?)) AND media_id <> ''",
        (ids,),
    )
    for row in await rows(db, _KEPT, (ids,)):
        await drop_uploads(db, int(row[0]), kept_uploads(row[1], row[2], bool(row[3])))
    return [None for _ in job_ids]


async def drop_uploads(
    db: aiosqlite.Connection, job_id: int, keep: frozenset[str] | set[str] = frozenset()
) -> None:
    """User images are kept only while a job that still has to send them is open, or while its
    buttons need them (``keep``).

    Per job, so the cost doesn't grow with history while the write lock is held.
    """
    async with db.execute("SELECT sha256 FROM job_uploads WHERE job_id = ?", (job_id,)) as cur:
        shas = [sha async for row in cur if (sha := str(row[0])) not in keep]
    await db.executemany(
        "DELETE FROM job_uploads WHERE job_id = ? AND sha256 = ?", [(job_id, sha) for sha in shas]
    )
    await db.executemany(
        "DELETE FROM blobs WHERE sha256 = ? "
        "AND NOT EXISTS (SELECT 1 FROM job_uploads WHERE sha256 = blobs.sha256)",
        [(sha,) for sha in shas],
    )
