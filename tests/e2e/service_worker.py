"""A process running the real service, for the kill -9 test.

``python -m tests.e2e.service_worker BASE_URL DATABASE_URL ANSWERS JOBS [STALL_AT]``: on a fresh
store (SQLite or PostgreSQL) it submits JOBS prompts from several users; on a store with jobs
it only resumes. Each final answer is appended to ANSWERS (``job_id kind``) and flushed to disk
before the notifier returns. It exits when every job has been delivered.

With ``STALL_AT`` (n > 0) the "platform" takes the n-th answer and then never answers again:
the n-th call writes its line and never returns (so the store never records that answer as
given), and every later call hangs before writing. Once the answers written before it are
recorded, it prints ``stalled JOB``; each later call prints ``blocked JOB``. The test kills the
process in that state, which holds still: the windows a kill can fall in, on purpose.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.core.domain import Job, JobResult
from bot.core.models_table import ModelTable
from bot.core.people import Owner
from bot.core.policy import Tuning
from bot.core.ports import DeliveryError, Posted, Store
from bot.core.presenters import JobStatus
from bot.core.service import Service
from bot.providers.flow import FlowClient
from bot.store import open_store


class FileNotifier:
    def __init__(self, path: Path, store: Store, stall_at: int) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._store = store
        self._stall_at = stall_at
        self._answered = 0
        self._written: set[int] = set()  # answers written whose calls returned
        self._stalled = False

    async def job_progress(self, job: Job, status: JobStatus) -> None:
        return None

    async def job_finished(self, result: JobResult) -> Posted:
        await self._answer(result.job.id, "done")
        return {}

    async def job_failed(self, job: Job, message: str) -> None:
        await self._answer(job.id, "failed")

    async def job_ended_elsewhere(self, job: Job) -> None:
        return None

    async def fetch_image(self, ref: str) -> bytes:
        raise DeliveryError("this notifier keeps no images", permanent=True)

    async def admin_alert(self, admin_id: str, text: str) -> None:
        return None

    async def _answer(self, job_id: int, kind: str) -> None:
        if self._stalled:
            print(f"blocked {job_id}", flush=True)
            await asyncio.Event().wait()  # the platform never takes it
        self._file.write(f"{job_id} {kind}\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._answered += 1
        if self._answered == self._stall_at:
            self._stalled = True
            await self._recorded(self._written)
            print(f"stalled {job_id}", flush=True)
            await asyncio.Event().wait()  # taken by the platform, never recorded as given
        self._written.add(job_id)

    async def _recorded(self, jobs: set[int]) -> None:
        """Until the store records every one of ``jobs`` as delivered."""
        while {j.id for j in await self._store.undelivered_jobs()} & jobs:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def main(base_url: str, database_url: str, answers: Path, jobs: int, stall_at: int) -> None:
    async with FlowClient("test-token", base_url) as client, open_store(database_url) as store:
        service = Service(
            store,
            [client],
            models=ModelTable.builtin(),
            tuning=Tuning(retry_min_seconds=0.01, retry_max_seconds=0.05),
        )
        service.attach("console", FileNotifier(answers, store, stall_at))
        async with service:
            fresh = not await store.unfinished_jobs() and not await store.get_job(1)
            if fresh:
                for i in range(jobs):
                    owner = Owner("console", str(i % 5), "chat")
                    await service.submit(owner, f"prompt {i} --count 1")
                print("submitted", flush=True)
            # Another process (after a kill) may have left work: poll the store until all is done.
            while await store.unfinished_jobs() or await store.undelivered_jobs():  # noqa: ASYNC110
                await asyncio.sleep(0.05)


if __name__ == "__main__":
    url, database_url, answers_path, count = sys.argv[1:5]
    stall_at = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    asyncio.run(main(url, database_url, Path(answers_path), int(count), stall_at))
