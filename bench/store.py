"""Store calls per job, and what each costs, on each store: ``python -m bench.store [--jobs N]``.

The real service and Flow client against the fake Flow server (no latency, room for every job at
once), on a SQLite file and on PostgreSQL (``BOT_BENCH_DATABASE_URL``, else a throwaway cluster
as the tests start one). Every call the service makes to the store is counted and timed by a
pass-through wrapper, from the first ``submit`` to the last answer recorded as delivered. Two
workloads: plain prompts, and prompts with a reference image (upload, asset cache, blob drop).
Per store and workload it prints jobs/s end to end, store calls per job (by method), and the
mean and p99 milliseconds of one call (with everything else the process does waiting on the same
event loop). A second table times one job's writes alone, one after another, with nothing else
running: what a call costs the store itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from bot.core.domain import GenerationRequest, ImageRef, Job, JobResult, ResultImage
from bot.core.models_table import ModelTable
from bot.core.people import Owner
from bot.core.policy import Limits, Tuning
from bot.core.ports import DeliveryError, Posted, Store
from bot.core.presenters import JobStatus
from bot.core.service import Service
from bot.providers.flow import FlowClient
from bot.store import open_store
from tests.conftest import image_bytes
from tests.fakes.flow_server import FakeFlowServer
from tests.postgres_server import PostgresServer, postgres_server

USERS = 10


class CountedStore:
    """Passes every store method through, noting how long each call took."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.calls: dict[str, list[float]] = defaultdict(list)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if not callable(method):
            return method

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await cast(Callable[..., Awaitable[Any]], method)(*args, **kwargs)
            finally:
                self.calls[name].append(time.perf_counter() - started)

        return timed


class Answers:
    """A notifier that only counts final answers."""

    def __init__(self) -> None:
        self.given = 0

    async def job_progress(self, job: Job, status: JobStatus) -> None:
        return None

    async def job_finished(self, result: JobResult) -> Posted:
        self.given += 1
        return {}

    async def job_failed(self, job: Job, message: str) -> None:
        self.given += 1

    async def job_ended_elsewhere(self, job: Job) -> None:
        return None

    async def fetch_image(self, ref: str) -> bytes:
        raise DeliveryError("this notifier keeps no images", permanent=True)

    async def admin_alert(self, admin_id: str, text: str) -> None:
        return None


@dataclass
class Row:
    store: str
    workload: str
    jobs: int
    seconds: float
    calls: dict[str, list[float]]

    def print(self) -> None:
        durations = sorted(d for ds in self.calls.values() for d in ds)
        per_job = Counter({name: len(ds) / self.jobs for name, ds in self.calls.items()})
        print(
            f"{self.store:<9} {self.workload:<11} {self.jobs / self.seconds:7.1f} "
            f"{len(durations) / self.jobs:7.1f} {statistics.fmean(durations) * 1000:7.2f} "
            f"{durations[int(len(durations) * 0.99)] * 1000:7.2f}  "
            + ", ".join(f"{name} {n:.1f}" for name, n in per_job.most_common() if n >= 0.05)
        )


async def run(url: str, store_name: str, workload: str, jobs: int) -> Row:
    photos = [image_bytes("PNG", color=c) for c in ("red", "green", "blue", "white")]
    async with (
        FakeFlowServer(accounts=["a@example.com", "b@example.com"], capacity=jobs) as flow,
        FlowClient("test-token", flow.base_url) as client,
        open_store(url) as raw,
    ):
        counted = CountedStore(raw)
        service = Service(
            cast(Store, counted),
            [client],
            models=ModelTable.builtin(),
            limits=Limits(queued_per_user=jobs, running_per_user=jobs),
            tuning=Tuning(account_min_concurrency=20, account_max_concurrency=20),
            rng=random.Random(1),
        )
        answers = Answers()
        service.attach("bench", answers)
        started = time.perf_counter()
        async with service:
            for i in range(jobs):
                images = [photos[i % len(photos)]] if workload == "reference" else []
                owner = Owner("bench", f"u{i % USERS}", "c")
                await service.submit(owner, f"job {i} --count 1", images=images)
            while await raw.unfinished_jobs() or await raw.undelivered_jobs():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            seconds = time.perf_counter() - started
    assert answers.given == jobs
    return Row(store_name, workload, jobs, seconds, counted.calls)


@contextlib.contextmanager
def postgres() -> Iterator[PostgresServer]:
    given = os.environ.get("BOT_BENCH_DATABASE_URL")
    if given:
        yield PostgresServer(given)
        return
    with postgres_server(durable=True) as server:
        yield server


async def alone(url: str, jobs: int) -> dict[str, float]:
    """Milliseconds per call of a job's life cycle, calls made one at a time."""
    image = ResultImage(1, ImageRef("m", "a@example.com"), 1, "nano-banana-2", "image/jpeg", b"x")
    request = GenerationRequest("a fox", "nano-banana-2", "1:1", 1, 1)
    owner = Owner("bench", "u", "c")
    async with open_store(url) as raw:
        store = CountedStore(raw)
        for _ in range(jobs):
            job = await store.add_job(owner, request, {}, day="2026-01-01")
            await store.get_job(job.id)
            await store.mark_running(job.id, "a@example.com")
            await store.finish_job(job.id, [image])
            await store.mark_delivered(job.id)
    return {name: statistics.fmean(ds) * 1000 for name, ds in store.calls.items()}


async def main(jobs: int) -> None:
    print(f"{jobs} jobs from {USERS} users; store calls counted from submit to delivered")
    print(
        f"{'store':<9} {'workload':<11} {'jobs/s':>7} {'calls/j':>7} {'ms mean':>7} {'ms p99':>7}"
    )
    with tempfile.TemporaryDirectory() as tmp, postgres() as server:
        for workload in ("prompt", "reference"):
            sqlite_url = f"sqlite:///{tmp}/{workload}.sqlite3"
            (await run(sqlite_url, "sqlite", workload, jobs)).print()
            name = server.create_database()
            try:
                (await run(server.url(name), "postgres", workload, jobs)).print()
            finally:
                server.drop_database(name)
        print(f"\n{jobs} jobs' writes one at a time, ms per call")
        name = server.create_database()
        try:
            costs = {
                "sqlite": await alone(f"sqlite:///{tmp}/alone.sqlite3", jobs),
                "postgres": await alone(server.url(name), jobs),
            }
        finally:
            server.drop_database(name)
        calls = list(costs["sqlite"])
        print(f"{'store':<9} " + " ".join(f"{c:>13}" for c in calls))
        for store_name, cost in costs.items():
            print(f"{store_name:<9} " + " ".join(f"{cost[c]:13.2f}" for c in calls))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    asyncio.run(main(parser.parse_args().jobs))
