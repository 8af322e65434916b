"""Kill -9 a process running the service mid-queue; every accepted job still gets its answer.

What "exactly once" can mean here: a result stored is never generated again (only the
generations running at the kill are), and an answer is given again only if the kill fell
between the platform accepting it and the store recording it (one commit). No sink without
idempotency keys allows better. The test holds the service to exactly that by killing it in a
state that holds still, with a job in each window: one answer taken by the "platform" and not
recorded (the worker's notifier stalls there), results stored but not delivered (later answers
hang before the platform takes them), generations running (the fake Flow server holds every
answer), and jobs still queued. It runs on both stores: a SQLite file, and a PostgreSQL
database whose connections die with the process.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.core.domain import GenerationRequest
from bot.store import open_store
from tests.fakes.flow_server import CLIENT_GONE, FakeFlowServer, Recorded

JOBS = 30
CAPACITY = 3
STALL_AT = 5  # the answer the platform takes without the store hearing of it


async def start_worker(
    flow: FakeFlowServer, store_url: str, tmp: Path, stall_at: int = 0
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.service_worker",
        flow.base_url,
        store_url,
        str(tmp / "answers.txt"),
        str(JOBS),
        str(stall_at),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


def answers(tmp: Path) -> list[str]:
    path = tmp / "answers.txt"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def prompt(job_id: int) -> str:
    return f"prompt {job_id - 1}"  # the worker submits "prompt i" as job i + 1


def sent(request: Recorded) -> str:
    """The prompt a POST /images asked for."""
    assert isinstance(request.json, dict)
    return str(request.json["prompt"])


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll: another process writes what we watch, so there is no event to wait on."""
    async with asyncio.timeout(30):
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_every_job_is_answered_across_kill_9(tmp_path: Path, store_url: str) -> None:
    async with FakeFlowServer(latency=0.15, capacity=CAPACITY) as flow:
        worker = await start_worker(flow, store_url, tmp_path, stall_at=STALL_AT)
        assert worker.stdout is not None
        said: dict[str, list[int]] = {"submitted": [], "stalled": [], "blocked": []}
        while not all(said.values()):  # in any order: answers come while jobs are submitted
            what, _, job = (await worker.stdout.readline()).decode().strip().partition(" ")
            said[what].append(int(job or 0))
        [stalled] = said["stalled"]  # an answer given, never recorded as given

        flow.hold()  # no generation answers from now on: those running stay running
        async with open_store(store_url) as store:

            async def still() -> bool:
                """Every generation answered so far is stored: nothing is in transit."""
                running = {
                    job.request.prompt
                    for job in await store.unfinished_jobs()
                    if isinstance(job.request, GenerationRequest)
                }
                answered = {sent(r) for r in flow.images_requests() if r.status == 200}
                return bool(flow.held) and not running & answered

            await until(still)
            stored = {j.id for j in await store.undelivered_jobs()} - {stalled}
        running = {sent(r) for r in flow.held}
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
        flow.release()

        worker = await start_worker(flow, store_url, tmp_path)
        async with asyncio.timeout(60):
            assert await worker.wait() == 0
        generations = Counter(sent(r) for r in flow.images_requests() if r.status == 200)
        cut = {sent(r) for r in flow.images_requests() if r.status == CLIENT_GONE}

    # The kill fell in every window that matters.
    assert said["blocked"]
    assert set(said["blocked"]) <= stored
    assert running
    given = Counter(answers(tmp_path))
    # Every job answered once, but the one whose answer the platform took just before the kill.
    assert given == Counter({str(i): 1 for i in range(1, JOBS + 1)}) + Counter({str(stalled): 1})
    # A stored result is never generated again: each prompt was generated exactly once. The
    # generations the kill cut (all held, so unanswered) were of jobs running then, never of
    # one whose result was stored.
    assert generations == Counter({prompt(i): 1 for i in range(1, JOBS + 1)})
    assert running <= cut
    assert not {prompt(j) for j in stored | {stalled}} & cut
