"""``PostgresStore``: the durable state on PostgreSQL (psycopg 3 and its connection pool).

The contract is ``SqliteStore``'s: every method is one transaction, committed before it returns.
SQLite runs one writer at a time; here transactions really run side by side (several in this
process today, several processes later), so a write that depends on what it reads either does
both in one statement (a conditional ``UPDATE … RETURNING``, ``DELETE … RETURNING``,
``INSERT … ON CONFLICT``) or locks what it read first (``_drop_uploads``). Times are the
server's (``now()``): the one clock that every process sharing the database agrees on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from bot.core.domain import Execution, Job, JobState, Lineage, Request, ResultImage, UserSettings
from bot.core.monitoring import Outcome
from bot.core.people import Owner, UserKey
from bot.core.ports import Caps
from bot.core.public_ids import new_public_id
from bot.store.caps import check_postgres as check_caps
from bot.store.codec import (
    IMAGE_COLUMNS,
    decode_settings,
    encode_execution,
    encode_request,
    encode_settings,
    encode_text,
    image_from_row,
    image_row,
    kept_uploads,
    lineage_of,
    tombstone,
)
from bot.store.errors import StoreError
from bot.store.postgres_accounts import PostgresAccounts
from bot.store.postgres_characters import PostgresCharacters
from bot.store.postgres_controls import PostgresControls
from bot.store.postgres_history import PostgresHistory
from bot.store.postgres_parking import PostgresParking
from bot.store.postgres_people import PostgresPeople
from bot.store.postgres_server import (
    ANSWERED_CHANNEL,
    ENDED_CHANNEL,
    HELD_CHANNEL,
    JOBS_CHANNEL,
    TOLD_CHANNEL,
    Connection,
)

# Draws of a public job id before giving up (each clashes with odds of jobs stored / 2.4e10).
PUBLIC_ID_TRIES = 8


class PostgresStore(
    PostgresCharacters,
    PostgresHistory,
    PostgresPeople,
    PostgresControls,
    PostgresParking,
    PostgresAccounts,
):
    """Implements ``Store`` and ``Parking`` (``bot.core.ports``); ``async with PostgresStore(url)
    as store``."""

    async def add_job(
        self,
        owner: Owner,
        request: Request,
        blobs: Mapping[str, bytes],
        *,
        day: str,
        caps: Caps | None = None,
        parent: Lineage | None = None,
        held: bool = False,
    ) -> Job:
        async with self._transaction() as db:
            await check_caps(db, owner.user, day, request.count, caps)
            for _ in range(PUBLIC_ID_TRIES):
                cur = await db.execute(
                    "INSERT INTO jobs (public_id, platform, user_id, owner_name, chat_id, "
                    "reply_to, route, server, request, state, source_job, source_action, "
                    "source_index, day, charged) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (public_id) DO NOTHING RETURNING id",
                    (
                        new_public_id(),
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
                    ),
                )
                row = await cur.fetchone()
                if row is not None:  # else that public id is taken: draw another
                    break
            else:
                raise StoreError("no free public job id after several draws")
            job_id = int(row["id"])
            if blobs:
                shas = sorted(blobs)
                # Blobs already stored stay stored: a job being delivered can't drop them
                # under us (see _drop_uploads).
                await db.execute(
                    "SELECT 1 FROM blobs WHERE sha256 = ANY(%s) ORDER BY sha256 FOR KEY SHARE",
                    (shas,),
                )
                async with db.cursor() as many:
                    await many.executemany(
                        "INSERT INTO blobs (sha256, data) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        [(sha, blobs[sha]) for sha in shas],
                    )
                    await many.executemany(
                        "INSERT INTO job_uploads (job_id, sha256) VALUES (%s, %s) "
                        "ON CONFLICT DO NOTHING",
                        [(job_id, sha) for sha in shas],
                    )
            await db.execute(
                "INSERT INTO usage (platform, user_id, day, jobs, images) "
                "VALUES (%s, %s, %s, 1, %s) ON CONFLICT (platform, user_id, day) "
                "DO UPDATE SET jobs = usage.jobs + 1, images = usage.images + excluded.images",
                (owner.platform, owner.user_id, day, request.count),
            )
            note = f"{self.origin}:{job_id}"
            if held:  # before the job's own note: the leader knows it is held when it reads it
                await db.execute("SELECT pg_notify(%s, %s)", (HELD_CHANNEL, note))
            await db.execute("SELECT pg_notify(%s, %s)", (JOBS_CHANNEL, note))
        added = await self.get_job(job_id)  # as any reader sees it: lineage and all
        assert added is not None
        return added

    async def told(self, job_id: int) -> None:
        await self._query("SELECT pg_notify(%s, %s)", (TOLD_CHANNEL, f"{self.origin}:{job_id}"))

    async def unfinished_jobs(self) -> list[Job]:
        return await self._jobs("state IN ('queued', 'running') ORDER BY id")

    async def undelivered_jobs(self) -> list[Job]:
        return await self._jobs(
            "delivered_at IS NULL AND state IN ('done', 'failed', 'cancelled') ORDER BY id"
        )

    async def user_jobs(self, user: UserKey) -> list[Job]:
        return await self._jobs(
            "platform = %s AND user_id = %s AND state IN ('queued', 'running') ORDER BY id",
            (user.platform, user.user_id),
        )

    async def upscales_of(self, source_job: int) -> list[Job]:
        return await self._jobs(
            "source_job = %s AND source_action = 'u' ORDER BY id", (source_job,)
        )

    async def mark_running(self, job_id: int, account: str) -> int:
        row = await self._one(
            "UPDATE jobs SET state = 'running', account = %s, attempts = attempts + 1, "
            "updated_at = now() WHERE id = %s AND state IN ('queued', 'running') "
            "RETURNING attempts",
            (account, job_id),
        )
        return int(row["attempts"]) if row else 0

    async def requeue(self, job_id: int) -> None:
        await self._query(
            "UPDATE jobs SET state = 'queued', updated_at = now() "
            "WHERE id = %s AND state = 'running'",
            (job_id,),
        )

    async def update_request(self, job_id: int, request: Request) -> None:
        await self._query(
            "UPDATE jobs SET request = %s, updated_at = now() WHERE id = %s",
            (encode_request(request), job_id),
        )

    async def save_execution(self, job_id: int, execution: Execution | None) -> None:
        await self._query(
            "UPDATE jobs SET execution = %s, updated_at = now() WHERE id = %s",
            (encode_execution(execution), job_id),
        )

    async def finish_job(self, job_id: int, images: Sequence[ResultImage]) -> bool:
        async with self._transaction() as db:
            # The row stays locked until the images are in: a cancel waits for the answer.
            cur = await db.execute(
                "UPDATE jobs SET state = 'done', error = NULL, outcome = 'done', "
                "updated_at = now() WHERE id = %s AND state IN ('queued', 'running')",
                (job_id,),
            )
            if cur.rowcount != 1:  # it ended meanwhile (cancelled while it ran)
                return False
            async with db.cursor() as many:
                await many.executemany(
                    "INSERT INTO images (job_id, idx, media_id, account, provider, seed, model, "
                    "mime, data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (job_id, idx) DO UPDATE "
                    "SET media_id = excluded.media_id, account = excluded.account, "
                    "provider = excluded.provider, seed = excluded.seed, model = excluded.model, "
                    "mime = excluded.mime, data = excluded.data",
                    [image_row(job_id, image) for image in images],
                )
            return True

    async def fail_job(self, job_id: int, message: str, outcome: Outcome = Outcome.FAILED) -> bool:
        async with self._transaction() as db:
            # Only an open job can fail: a cancelled or finished one keeps its one final answer.
            cur = await db.execute(
                "UPDATE jobs SET state = 'failed', error = %s, outcome = %s, updated_at = now() "
                "WHERE id = %s AND state IN ('queued', 'running')",
                (encode_text(message), outcome.value, job_id),
            )
            failed = cur.rowcount == 1
            if failed:
                await _give_back(db, job_id)
            return failed

    async def cancel_job(self, job_id: int, reason: str | None = None) -> bool:
        async with self._transaction() as db:
            cur = await db.execute("SELECT state FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
            was = await cur.fetchone()
            cur = await db.execute(
                "UPDATE jobs SET state = 'cancelled', outcome = 'cancelled', error = %s, "
                "updated_at = now(), delivered_at = CASE WHEN %s THEN NULL ELSE now() END "
                "WHERE id = %s AND state IN ('queued', 'running')",
                (None if reason is None else encode_text(reason), reason is not None, job_id),
            )
            changed = cur.rowcount == 1
            if changed:
                if was is not None and was["state"] == JobState.QUEUED.value:
                    await _give_back(db, job_id)  # a running one is made (and paid) all the same
                await _drop_uploads(db, job_id)
                await db.execute(
                    "SELECT pg_notify(%s, %s)", (ENDED_CHANNEL, f"{self.origin}:{job_id}")
                )
            return changed

    async def mark_delivered(self, job_id: int) -> None:
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE jobs SET delivered_at = now() WHERE id = %s AND delivered_at IS NULL",
                (job_id,),
            )
            if cur.rowcount == 1:  # sent at commit
                await db.execute(
                    "SELECT pg_notify(%s, %s)", (ANSWERED_CHANNEL, f"{self.origin}:{job_id}")
                )
            # Delivered images live on at the platform; we keep only what buttons need: the
            # bytes of images no handle stands for (R sends them), the pictures a done job's
            # request still names (🎲 sends them again, as pictures or as links).
            await db.execute(
                "UPDATE images SET data = NULL "
                "WHERE job_id = %s AND data IS NOT NULL AND media_id <> ''",
                (job_id,),
            )
            cur = await db.execute(
                "SELECT state, request, EXISTS (SELECT 1 FROM images WHERE job_id = jobs.id) "
                "AS made FROM jobs WHERE id = %s",
                (job_id,),
            )
            row = await cur.fetchone()
            keep = kept_uploads(row["state"], row["request"], row["made"]) if row else set()
            await _drop_uploads(db, job_id, keep)

    async def results(self, job_id: int) -> list[ResultImage]:
        sql = f"SELECT {IMAGE_COLUMNS} FROM images WHERE job_id = %s ORDER BY idx"  # noqa: S608
        return [image_from_row(row) for row in await self._query(sql, (job_id,))]

    async def blob(self, sha256: str) -> bytes | None:
        row = await self._one("SELECT data FROM blobs WHERE sha256 = %s", (sha256,))
        return bytes(row["data"]) if row else None

    async def user_settings(self, user: UserKey) -> UserSettings:
        row = await self._one(
            "SELECT data FROM user_settings WHERE platform = %s AND user_id = %s",
            (user.platform, user.user_id),
        )
        return decode_settings(row["data"]) if row else UserSettings()

    async def save_user_settings(self, user: UserKey, settings: UserSettings) -> None:
        await self._query(
            "INSERT INTO user_settings (platform, user_id, data) VALUES (%s, %s, %s) "
            "ON CONFLICT (platform, user_id) DO UPDATE SET data = excluded.data",
            (user.platform, user.user_id, encode_settings(settings)),
        )

    async def images_on(self, user: UserKey, day: str) -> int:
        row = await self._one(
            "SELECT images FROM usage WHERE platform = %s AND user_id = %s AND day = %s",
            (user.platform, user.user_id, day),
        )
        return int(row["images"]) if row else 0

    async def prune(self, older_than: float, *, limit: int) -> int:
        """Prune up to ``limit`` delivered jobs older than ``older_than`` seconds (prompt, images,
        uploads; the row stays, marked), and as many old cached assets and parked values.
        One short transaction: call again until it returns 0. Rows another process holds are
        skipped, not waited for."""
        async with self._transaction() as db:
            cur = await db.execute(
                "SELECT id, request FROM jobs WHERE pruned_at IS NULL "
                "AND created_at < now() - make_interval(secs => %s) "
                "AND delivered_at IS NOT NULL AND state IN ('done', 'failed', 'cancelled') "
                "ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
                (older_than, limit),
            )
            jobs = [(int(row["id"]), str(row["request"])) for row in await cur.fetchall()]
            async with db.cursor() as many:
                await many.executemany(
                    "UPDATE jobs SET request = %s, owner_name = '', pruned_at = now() "
                    "WHERE id = %s",
                    [(tombstone(request), job_id) for job_id, request in jobs],
                )
            ids = [job_id for job_id, _ in jobs]
            await db.execute("DELETE FROM images WHERE job_id = ANY(%s)", (ids,))
            # Uploads normally went when the job was answered; any still held go now.
            cur = await db.execute(
                "SELECT DISTINCT job_id FROM job_uploads WHERE job_id = ANY(%s)", (ids,)
            )
            for row in await cur.fetchall():
                await _drop_uploads(db, int(row["job_id"]))
            pruned = len(jobs)
            for delete in (
                "DELETE FROM assets WHERE (sha256, account) IN (SELECT sha256, account FROM assets "
                "WHERE created_at < now() - make_interval(secs => %s) LIMIT %s "
                "FOR UPDATE SKIP LOCKED)",
                "DELETE FROM pending WHERE id IN (SELECT id FROM pending "
                "WHERE created_at < now() - make_interval(secs => %s) LIMIT %s "
                "FOR UPDATE SKIP LOCKED)",
            ):
                deleted = await db.execute(delete, (older_than, limit))
                pruned += deleted.rowcount
        return pruned


async def _give_back(db: Connection, job_id: int) -> None:
    """A job that made nothing (failed or cancelled) no longer counts in its owner's day. The
    job's row is locked by the caller's update, so it is given back once."""
    await db.execute(
        "UPDATE usage SET images = greatest(usage.images - jobs.charged, 0) FROM jobs "
        "WHERE jobs.id = %s AND usage.platform = jobs.platform "
        "AND usage.user_id = jobs.user_id AND usage.day = jobs.day",
        (job_id,),
    )
    await db.execute("UPDATE jobs SET charged = 0 WHERE id = %s", (job_id,))


async def _drop_uploads(
    db: Connection, job_id: int, keep: frozenset[str] | set[str] = frozenset()
) -> None:
    """User images are kept only while a job that still has to send them is open, or while its
    buttons need them (``keep``).

    Another transaction may be adding a job that uses the same image: ``add_job`` share-locks
    the blob rows it relies on, so the rows are locked here before the delete, and the delete
    (a new statement, so a fresh snapshot in READ COMMITTED) sees that job's upload row.
    """
    cur = await db.execute(
        "DELETE FROM job_uploads WHERE job_id = %s AND NOT sha256 = ANY(%s) RETURNING sha256",
        (job_id, sorted(keep)),
    )
    shas = sorted(str(row["sha256"]) for row in await cur.fetchall())
    if not shas:
        return
    await db.execute(
        "SELECT 1 FROM blobs WHERE sha256 = ANY(%s) ORDER BY sha256 FOR UPDATE", (shas,)
    )
    await db.execute(
        "DELETE FROM blobs WHERE sha256 = ANY(%s) "
        "AND NOT EXISTS (SELECT 1 FROM job_uploads WHERE sha256 = blobs.sha256)",
        (shas,),
    )
