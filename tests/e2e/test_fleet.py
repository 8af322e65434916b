"""Three processes on one PostgreSQL, and the leader killed -9 twice mid-queue.

One process leads (``bot.store.postgres_lead``): it alone runs and delivers. Killed, its
session ends with it and another process leads within moments, far inside the lease; it runs
again what was running and delivers what was stored. Each account's limit holds across the
processes (the fake counts what runs on it at once). An answer is given twice only where a kill
fell between the platform taking it and the store recording it (see test_kill_restart).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.domain import GenerationRequest
from bot.store.postgres import PostgresStore
from bot.store.url import StoreUrl
from tests.fakes.flow_server import CLIENT_GONE, FakeFlowServer

WORKERS = ("a", "b", "c")
JOBS = 20  # per process: 60 jobs
USERS = 12
ACCOUNTS = ("one@example.com", "two@example.com")
LIMIT = 2  # per account, what the scheduler allows itself (its adaptive limit pinned)
LEASE = 3.0
KILLS_AT = (10, 30)  # answers given before each kill


class Worker:
    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.said: list[tuple[str, float]] = []

    async def listen(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.said.append((line.decode().strip(), time.monotonic()))

    def leads_since(self) -> float | None:
        return next((at for what, at in self.said if what == "leads"), None)

    def submitted(self) -> bool:
        return any(what == "submitted" for what, _ in self.said)


@pytest.fixture
async def fleet() -> AsyncIterator[list[Worker]]:
    """The workers a test starts: those a failed test leaves running (or stopped) are killed."""
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process.returncode is None:
            worker.process.kill()
            await worker.process.wait()


async def start(
    fleet: list[Worker], flow: FakeFlowServer, url: str, answers: Path, name: str, jobs: int = JOBS
) -> Worker:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.fleet_worker",
        flow.base_url,
        url,
        str(answers),
        name,
        str(jobs),
        str(USERS),
        str(LIMIT),
        str(LEASE),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    fleet.append(Worker(name, process))
    return fleet[-1]


async def prompts_of_jobs(url: str) -> dict[int, str]:
    async with PostgresStore(StoreUrl.parse(url)) as store:
        jobs = [await store.get_job(job_id) for job_id in range(1, len(WORKERS) * JOBS + 1)]
    return {
        job.id: job.request.prompt
        for job in jobs
        if job is not None and isinstance(job.request, GenerationRequest)
    }


def stopped(pid: int) -> bool:
    """The process is stopped by a signal (``T`` in /proc), so it writes nothing now."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "T"


def given(answers: Path) -> list[tuple[int, str]]:
    if not answers.exists():
        return []
    return [
        (int(job), by)
        for job, by in (line.split() for line in answers.read_text().split("\n") if line)
    ]


def live_leader(workers: list[Worker], killed: list[tuple[Worker, float]]) -> Worker | None:
    """The leader, once it has stored all its jobs: it leads (and answers) while it submits
    them, and a process stopped before that leaves the rest unasked."""
    dead = [k for k, _ in killed]
    return next((w for w in workers if w.leads_since() and w.submitted() and w not in dead), None)


async def test_three_processes_answer_every_job_across_two_kills(
    tmp_path: Path, postgres_url: str, fleet: list[Worker]
) -> None:
    answers = tmp_path / "answers.txt"
    capacity = 4 * LIMIT  # room to spare: a 429 would hide an account over its limit
    async with FakeFlowServer(accounts=ACCOUNTS, latency=0.3, capacity=capacity) as flow:
        workers = [await start(fleet, flow, postgres_url, answers, name) for name in WORKERS]
        listening = [asyncio.create_task(w.listen()) for w in workers]
        killed: list[tuple[Worker, float]] = []
        at_kills: list[tuple[set[str], set[int]]] = []  # prompts answered, jobs answered
        async with asyncio.timeout(90):
            for kill_at in KILLS_AT:
                while len(given(answers)) < kill_at:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                # The answers go on while a new leader is elected (followers work too), so the
                # next kill may come before one leads: wait for it (its delay is checked below).
                while not (leader := live_leader(workers, killed)):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                asked_before = {str(r.json["prompt"]) for r in flow.images_requests()}  # type: ignore[index]
                answered_before = {job for job, _ in given(answers)}
                leader.process.send_signal(signal.SIGKILL)
                killed.append((leader, time.monotonic()))
                await leader.process.wait()
                at_kills.append((asked_before, answered_before))
            codes = [await w.process.wait() for w in workers]
            await asyncio.gather(*listening)
        prompts = [(str(r.json["prompt"]), r.status) for r in flow.images_requests()]  # type: ignore[index]

    survivor = next(w for w in workers if w not in [k for k, _ in killed])
    assert codes[workers.index(survivor)] == 0
    # Every job answered; twice only where its first answer came from a process killed later.
    answered = given(answers)
    jobs = len(WORKERS) * JOBS
    times = Counter(job for job, _ in answered)
    assert set(times) == set(range(1, jobs + 1))
    first_by: dict[int, str] = {}
    for job, by in answered:
        first_by.setdefault(job, by)
    dead = {k.name for k, _ in killed}
    assert all(first_by[job] in dead for job, n in times.items() if n > 1)
    # Each kill was followed by a new leader within the lease (kill -9: at once, in fact).
    for dead_worker, at in killed:
        successors = [w.leads_since() for w in workers if w is not dead_worker]
        took_over = min(s for s in successors if s is not None and s > at)
        assert took_over - at < LEASE
    # No account ever ran more than its limit, though three processes share it.
    assert flow.throttled == 0
    assert all(flow.peak[account] <= LIMIT for account in ACCOUNTS), flow.peak
    # Every prompt was generated; again only if it was running at a kill.
    asked = Counter(prompt for prompt, _ in prompts)
    assert set(asked) == {prompt for prompt, status in prompts if status == 200}
    assert len(asked) == jobs
    prompt_of = await prompts_of_jobs(postgres_url)
    # The fake records a request when it ends: cut off by a kill (CLIENT_GONE), or answered
    # before a kill to a process that never stored it.
    cut = {prompt for prompt, status in prompts if status == CLIENT_GONE}
    unstored = {
        prompt
        for asked_before, answered_before in at_kills
        for prompt in asked_before - {prompt_of[job] for job in answered_before}
    }
    assert {prompt for prompt, n in asked.items() if n > 1} <= cut | unstored


async def test_a_frozen_leader_is_replaced_within_its_lease(
    tmp_path: Path, postgres_url: str, fleet: list[Worker]
) -> None:
    """SIGSTOP: the process lives, its connections too, but it renews nothing. The server ends
    its session after the lease; the other leads; the frozen one, thawed, stops (status 1)."""
    answers = tmp_path / "answers.txt"
    async with FakeFlowServer(accounts=ACCOUNTS, latency=0.3, capacity=4 * LIMIT) as flow:
        workers = [await start(fleet, flow, postgres_url, answers, n, jobs=8) for n in "ab"]
        listening = [asyncio.create_task(w.listen()) for w in workers]
        async with asyncio.timeout(60):
            while len(given(answers)) < 4:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            while not (frozen := live_leader(workers, [])):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            other = next(w for w in workers if w is not frozen)
            frozen.process.send_signal(signal.SIGSTOP)
            stopped_at = time.monotonic()
            while not stopped(frozen.process.pid):  # noqa: ASYNC110 — the kernel's word
                await asyncio.sleep(0.001)
            before_stop = len([by for _, by in given(answers) if by == frozen.name])
            while not other.leads_since():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            took_over = time.monotonic() - stopped_at
            frozen.process.send_signal(signal.SIGCONT)
            assert await frozen.process.wait() == 1  # it lost the lead: it stops
            assert await other.process.wait() == 0
            await asyncio.gather(*listening)
    assert took_over < LEASE + 0.5
    times = Counter(job for job, _ in given(answers))
    assert set(times) == set(range(1, 17))
    # Thawed, it saw its lease gone before it gave any answer; twice only those the platform
    # took just before the stop, before the store heard.
    assert len([by for _, by in given(answers) if by == frozen.name]) == before_stop
