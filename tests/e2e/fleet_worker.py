"""One of several processes on one PostgreSQL, for the multi-process test.

``python -m tests.e2e.fleet_worker BASE_URL DATABASE_URL ANSWERS NAME JOBS USERS LIMIT LEASE``:
submits JOBS prompts ("NAME i") from USERS users (the same users in every process), takes the
lead when it is free, and appends each final answer it gives to ANSWERS (``job_id NAME``, flushed
to disk before the notifier returns). It prints ``submitted`` and, when it leads, ``leads``; it
exits when every job in the store has been answered (status 0), or when it lost the lead (1).
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
from bot.core.ports import DeliveryError, LeaseLost, Posted
from bot.core.presenters import JobStatus
from bot.core.service import Service
from bot.providers.flow import FlowClient
from bot.store.postgres import PostgresStore
from bot.store.postgres_lead import PostgresLeader
from bot.store.url import StoreUrl


class FileNotifier:
    def __init__(self, path: Path, name: str) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._name = name

    async def job_progress(self, job: Job, status: JobStatus) -> None:
        return None

    async def job_finished(self, result: JobResult) -> Posted:
        self._answer(result.job.id)
        return {}

    async def job_failed(self, job: Job, message: str) -> None:
        self._answer(job.id)

    async def job_ended_elsewhere(self, job: Job) -> None:
        return None

    async def fetch_image(self, ref: str) -> bytes:
        raise DeliveryError("this notifier keeps no images", permanent=True)

    async def admin_alert(self, admin_id: str, text: str) -> None:
        return None

    def _answer(self, job_id: int) -> None:
        self._file.write(f"{job_id} {self._name}\n")
        self._file.flush()
        os.fsync(self._file.fileno())


async def main(argv: list[str]) -> int:
    base_url, database_url, answers, name = argv[:4]
    jobs, users, limit = (int(a) for a in argv[4:7])
    lease = float(argv[7])
    tuning = Tuning(
        retry_min_seconds=0.01,
        retry_max_seconds=0.05,
        account_min_concurrency=limit,
        account_max_concurrency=limit,
    )
    async with (
        FlowClient("test-token", base_url) as client,
        PostgresStore(StoreUrl.parse(database_url)) as store,
    ):
        service = Service(
            store,
            [client],
            models=ModelTable.builtin(),
            tuning=tuning,
            leadership=PostgresLeader(store, lease=lease),
        )
        service.attach("console", FileNotifier(Path(answers), name))
        async with service:
            # Said from the start: a leader answers while it is still submitting.
            announce = asyncio.ensure_future(_announce(service))
            for i in range(jobs):
                await service.submit(Owner("console", f"u{i % users}", "chat"), f"{name} {i}")
            print("submitted", flush=True)
            done = asyncio.ensure_future(_answered(store))
            deposed = asyncio.ensure_future(service.deposed())
            try:
                await asyncio.wait([done, deposed], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (done, deposed, announce):
                    task.cancel()
            return 1 if deposed.done() and isinstance(deposed.exception(), LeaseLost) else 0


async def _announce(service: Service) -> None:
    while not service.leading:  # noqa: ASYNC110 — the test reads it from our output
        await asyncio.sleep(0.01)
    print("leads", flush=True)


async def _answered(store: PostgresStore) -> None:
    """Until no job in the store waits for a generation or an answer."""
    while await store.unfinished_jobs() or await store.undelivered_jobs():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
