"""Renders on an asynchronous road (Wireflow), done so that a crash never pays twice.

A job's render is submitted under an idempotency key derived from the job (the same key within
the road's window gives back the same executions instead of new ones); the execution ids are
stored before anyone waits for them, and a job that finds its ids stored (after a restart)
waits for those instead of submitting again. An execution that ended without a result (failed,
forgotten, refused by the filter) is over: the next try gets the next key, or the road would
replay that ending.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from bot.core.domain import Execution, GenerationRequest, Job
from bot.core.ports import Store
from bot.core.providers import ImageRequest, Rendering, Resumable, Submission
from bot.core.upstream import ExecutionFailed, ExecutionLost, ModerationError

# Endings after which the executions are spent.
_SPENT = (ExecutionFailed, ExecutionLost, ModerationError)


def first_key(job: Job) -> str:
    """The job's first key: the same for the same job across restarts, never the same for two
    jobs (the id alone would repeat in a fresh database within the road's 24 hours)."""
    request = job.request
    assert isinstance(request, GenerationRequest)
    parts = (job.id, job.created_at, request.prompt, request.model, request.seed, request.size)
    return _key("\n".join(map(str, parts)))


def next_key(key: str) -> str:
    return _key(key)


def _key(text: str) -> str:
    return "nbb-" + hashlib.sha256(text.encode()).hexdigest()[:40]


class Executions:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def render(
        self, job: Job, road: str, resumable: Resumable, request: ImageRequest
    ) -> Rendering:
        """Submit ``request`` for ``job`` on ``road`` (or find it submitted there) and wait for
        its images."""
        known = job.execution if job.execution and job.execution.provider == road else None
        key = known.key if known else first_key(job)
        if known and known.ids:
            submission = Submission(road, known.ids)
        else:
            submission = await resumable.submit(replace(request, job_key=key))
            await self._store.save_execution(job.id, Execution(road, key, submission.execution_ids))
        try:
            return await resumable.resume(submission)
        except _SPENT:
            await self._store.save_execution(job.id, Execution(road, next_key(key)))
            raise
