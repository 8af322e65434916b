"""How well the core fills the upstream: ``python -m bench.scheduler [--quick]``.

The real service, Flow client and SQLite store against the fake Flow server (latency L, capacity
C per account, 429 beyond it), which runs in its own process; no chat platform, so this isolates
the core. What users wait for, through a real platform library and its rate limits, is measured
by ``python -m bench.e2e``: those are the figures that count.

The queue is stored before the service starts, as a restart finds it, and the clock runs from
``start()`` to the last answer. For each case it prints the ideal makespan (the time C parallel
slots need for the jobs: jobs × L ÷ C; when C varies, the time the capacity's integral from
``start()`` takes to cover the jobs, the fake following its schedule from that moment), the
actual one and their ratio; ``ramped``, the ratio to an ideal scheduler that must also start
every account at the floor (3) and at best double per round, as the design asks; peak upstream
concurrency, 429s, and the overhead from the upstream's answer to the notifier call. Retries and
per-user caps are the shipped defaults (each user queues at most what the cap allows). Targets:
ratio ≥ 0.95 at fixed capacity, ≥ 0.9 when it varies, 2 accounts ≥ 1.9× one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.fake_flow import capacity_schedule
from bench.stats import percentile
from bot.core.domain import Job, JobResult
from bot.core.models_table import ModelTable
from bot.core.people import Owner
from bot.core.policy import Limits, Tuning
from bot.core.ports import DeliveryError, Posted
from bot.core.presenters import JobStatus
from bot.core.providers import Account, ImageProvider, ImageRequest, ProviderProfile, Rendering
from bot.core.service import Service
from bot.providers.flow import FlowClient
from bot.store.sqlite import SqliteStore


@dataclass
class Case:
    name: str
    jobs: int
    users: int
    latency: float
    capacity: int
    accounts: int = 1
    vary_every: int = 0  # capacity changes every this many latencies (0: fixed)


@dataclass
class Row:
    case: Case
    ideal: float
    ramped: float | None
    actual: float
    peak: int
    throttled: int
    overhead_p50: float
    overhead_p99: float
    failures: int

    @property
    def ratio(self) -> float:
        return self.ideal / self.actual


class TimedUpstream:
    """Passes calls through and notes when each generation's answer arrived."""

    def __init__(self, inner: FlowClient):
        self.inner = inner
        self.answered: dict[str, float] = {}

    @property
    def profile(self) -> ProviderProfile:
        return self.inner.profile

    async def list_accounts(self) -> list[Account]:
        return await self.inner.list_accounts()

    async def upload(self, data: bytes, mime: str, *, account: str | None) -> str:
        return await self.inner.upload(data, mime, account=account)

    async def generate(self, request: ImageRequest) -> Rendering:
        rendering = await self.inner.generate(request)
        self.answered[request.prompt] = time.perf_counter()
        return rendering

    async def fetch(self, rendering: Rendering) -> Rendering:
        return await self.inner.fetch(rendering)

    async def upscale_image(self, handle: str, resolution: str, *, account: str | None) -> bytes:
        return await self.inner.upscale_image(handle, resolution, account=account)

    async def create_character(self, email: str, references: Sequence[str], name: str) -> str:
        return await self.inner.create_character(email, references, name)


@dataclass
class Collector:
    upstream: TimedUpstream
    total: int
    overheads: list[float] = field(default_factory=list)
    answered: int = 0
    failures: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def job_progress(self, job: Job, status: JobStatus) -> None:
        return None

    async def job_finished(self, result: JobResult) -> Posted:
        now = time.perf_counter()
        prompt = getattr(result.job.request, "prompt", "")
        self.overheads.append(now - self.upstream.answered[prompt])
        self.answered += 1
        self._count()
        return {}

    async def job_failed(self, job: Job, message: str) -> None:
        self.failures += 1
        self._count()

    async def job_ended_elsewhere(self, job: Job) -> None:
        return None

    async def fetch_image(self, ref: str) -> bytes:
        raise DeliveryError("this notifier keeps no images", permanent=True)

    async def admin_alert(self, admin_id: str, text: str) -> None:
        return None

    def _count(self) -> None:
        if self.answered + self.failures >= self.total:
            self.done.set()


async def run_case(case: Case) -> Row:
    period = case.latency * case.vary_every
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.fake_flow",
        f"--accounts={case.accounts}",
        f"--latency={case.latency}",
        f"--capacity={case.capacity}",
        f"--period={period}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    base_url = (await server.stdout.readline()).decode().strip()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        await _queue_jobs(case, path, base_url)
        async with (
            FlowClient("test-token", base_url) as client,
            SqliteStore(path) as store,
        ):
            timed = TimedUpstream(client)
            collector = Collector(timed, case.jobs)
            service = _service(store, timed)
            service.attach("bench", collector)
            server.stdin.write(b"start\n")  # the capacity schedule's clock starts now
            await server.stdin.drain()
            started_at = time.perf_counter()
            async with service:
                await collector.done.wait()
                actual = time.perf_counter() - started_at
    server.stdin.close()
    stats = json.loads(await server.stdout.readline())
    await server.wait()

    if case.vary_every:
        ideal = _ideal_varying(case, capacity_schedule(42), period)
        ramped = None
    else:
        ideal = case.jobs * case.latency / (case.capacity * case.accounts)
        ramped = _ideal_from_floor(case, floor=Tuning().account_min_concurrency)
    return Row(
        case=case,
        ideal=ideal,
        ramped=ramped,
        actual=actual,
        peak=stats["peak"],
        throttled=stats["throttled"],
        overhead_p50=percentile(collector.overheads, 0.50) * 1000,
        overhead_p99=percentile(collector.overheads, 0.99) * 1000,
        failures=collector.failures,
    )


def _service(store: SqliteStore, upstream: ImageProvider) -> Service:
    """The service with the shipped limits and tuning: what an operator runs."""
    return Service(store, [upstream], models=ModelTable.builtin(), rng=random.Random(1))


async def _queue_jobs(case: Case, path: Path, base_url: str) -> None:
    """Store the whole queue first, as a restart finds it, so submission isn't what we time."""
    async with FlowClient("test-token", base_url) as client, SqliteStore(path) as store:
        service = _service(store, client)
        for i in range(case.jobs):
            await service.submit(Owner("bench", f"u{i % case.users}", "c"), f"job {i} --count 1")


def _ideal_from_floor(case: Case, floor: int) -> float:
    """The makespan of an ideal scheduler that must also start at the floor and double per round."""
    remaining, elapsed, slots = case.jobs, 0.0, floor
    while remaining > 0:
        remaining -= min(slots, case.capacity) * case.accounts
        elapsed += case.latency
        slots *= 2
    return elapsed


def _ideal_varying(case: Case, capacities: list[int], period: float) -> float:
    """Time for C(t) slots of length L to do the jobs, with C(t) as the server followed it."""
    remaining = case.jobs * case.latency
    elapsed = 0.0
    for capacity in capacities:
        work = capacity * case.accounts * period
        if work >= remaining:
            return elapsed + remaining / (capacity * case.accounts)
        remaining -= work
        elapsed += period
    raise ValueError("the capacity schedule is too short for this case")


def cases(quick: bool) -> list[Case]:
    n = 4 if quick else 1
    # Each user queues as many jobs as the shipped per-user cap allows, no more.
    per_user = Limits().queued_per_user
    return [
        Case(name, jobs, -(-jobs // per_user), latency=0.5, capacity=capacity, **more)
        for name, jobs, capacity, more in (
            ("fixed C=10", 400 // n, 10, {}),
            ("fixed C=20", 800 // n, 20, {}),
            ("varying /4L", 400 // n, 10, {"vary_every": 4}),
            ("varying /10L", 400 // n, 10, {"vary_every": 10}),
            ("1 account C=8", 240 // n, 8, {}),
            ("2 accounts C=8", 480 // n, 8, {"accounts": 2}),
            ("100 queued", 100, 20, {}),
            ("1,000 queued", 1000, 20, {}),
        )
    ]


async def main(quick: bool) -> None:
    limits, tuning = Limits(), Tuning()
    print(
        f"shipped defaults: queued/user {limits.queued_per_user}, "
        f"running/user {limits.running_per_user}, account limit "
        f"{tuning.account_min_concurrency}–{tuning.account_max_concurrency}, "
        f"retry {tuning.retry_min_seconds:g}–{tuning.retry_max_seconds:g} s\n"
    )
    rows = [await run_case(case) for case in cases(quick)]
    header = (
        f"{'case':<16}{'jobs':>6}{'users':>6}{'ideal s':>9}{'actual s':>9}{'ratio':>7}"
        f"{'ramped':>8}{'peak':>6}{'429s':>6}{'fail':>6}{'ovh p50':>9}{'ovh p99':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.case.name:<16}{r.case.jobs:>6}{r.case.users:>6}{r.ideal:>9.2f}{r.actual:>9.2f}"
            f"{r.ratio:>7.3f}{'' if r.ramped is None else format(r.ramped / r.actual, '.3f'):>8}"
            f"{r.peak:>6}{r.throttled:>6}{r.failures:>6}{r.overhead_p50:>7.1f}ms"
            f"{r.overhead_p99:>7.1f}ms"
        )
    by_name = {r.case.name: r for r in rows}
    one, two = by_name["1 account C=8"], by_name["2 accounts C=8"]
    speedup = (two.case.jobs / two.actual) / (one.case.jobs / one.actual)
    print(f"\n2 accounts vs 1: throughput ×{speedup:.2f} (target ≥ 1.9)")
    print("Memory: python -m bench.e2e samples the bot process's RSS, a fresh process per run.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the jobs")
    asyncio.run(main(parser.parse_args().quick))
