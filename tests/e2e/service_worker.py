"""A process running the real service, for the kill -9 test.

``python -m tests.e2e.service_worker BASE_URL DATABASE_URL ANSWERS JOBS``: on a fresh store (SQLite
or PostgreSQL) it submits JOBS
prompts from several users; on a store with jobs it only resumes. Each final answer is appended to
ANSWERS (``job_id kind``) and flushed to disk before the notifier returns. It exits when every
job has been delivered.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.core.domain import Job, JobResult, Owner
from bot.core.models_table import ModelTable
from bot.core.policy import Tuning
from bot.core.service import Service
from bot.providers.flow import FlowClient
from bot.store import open_store


class FileNotifier:
    def __init__(self, path: Path):
        self._file = path.open("a", encoding="utf-8")

    def _write(self, line: str) -> None:
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    async def job_started(self, job: Job) -> None:
        return None

    async def job_finished(self, result: JobResult) -> None:
        self._write(f"{result.job.id} done")

    async def job_failed(self, job: Job, message: str) -> None:
        self._write(f"{job.id} failed")

    async def admin_alert(self, admin_id: str, text: str) -> None:
        return None


async def main(base_url: str, database_url: str, answers: Path, jobs: int) -> None:
    async with FlowClient("test-token", base_url) as client, open_store(database_url) as store:
        service = Service(
            store,
            client,
            models=ModelTable.builtin(),
            tuning=Tuning(retry_min_seconds=0.01, retry_max_seconds=0.05),
        )
        service.attach("console", FileNotifier(answers))
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
    asyncio.run(main(url, database_url, Path(answers_path), int(count)))
