"""How well the service fills the upstream: ``python -m bench.scheduler [--quick]``.

The real service, Flow client and SQLite store against the fake Flow server (latency L, capacity
C per account, 429 beyond it), which runs in its own process. The queue is stored before the
service starts, as a restart finds it, and the clock runs from ``start()`` to the last answer.
For each case it prints the ideal makespan (the time C parallel slots need for the jobs:
jobs × L ÷ C, integrated over time when C varies), the actual one and their ratio; ``ramped``,
the ratio to an ideal scheduler that must also start every account at the floor (3) and at best
double per round, as the design asks; peak upstream concurrency, 429s, fairness across users
(Jain's index of per-user mean completion time; 1.0 is perfectly even), overhead from upstream
answer to notifier call, and peak RSS. Targets: ratio ≥ 0.95 at fixed capacity, ≥ 0.9 when it
varies, 2 accounts ≥ 1.9× one, overhead p99 < 50 ms, RSS flat as the queue grows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.fake_flow import capacity_schedule
from bot.core.domain import Job, JobResult, Owner
from bot.core.models_table import ModelTable
from bot.core.policy import Limits, Tuning
from bot.core.ports import DeliveryError, Posted
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
    fairness: float
    overhead_p50: float
    overhead_p99: float
    rss_mb: float
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

    async def upscale_image(self, handle: str, resolution: str, *, account: str | None) -> bytes:
        return await self.inner.upscale_image(handle, resolution, account=account)

    async def create_character(self, email: str, references: Sequence[str], name: str) -> str:
        return await self.inner.create_character(email, references, name)


@dataclass
class Collector:
    upstream: TimedUpstream
    total: int
    started_at: float = 0.0
    finished: dict[str, float] = field(default_factory=dict)
    overheads: list[float] = field(default_factory=list)
    per_user: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def job_started(self, job: Job) -> None:
        return None

    async def job_finished(self, result: JobResult) -> Posted:
        now = time.perf_counter()
        prompt = getattr(result.job.request, "prompt", "")
        self.overheads.append(now - self.upstream.answered[prompt])
        self.per_user[result.job.owner.user_id].append(now - self.started_at)
        self._count()
        return {}

    async def job_failed(self, job: Job, message: str) -> None:
        self.failures += 1
        self._count()

    async def fetch_image(self, ref: str) -> bytes:
        raise DeliveryError("this notifier keeps no images", permanent=True)

    async def admin_alert(self, admin_id: str, text: str) -> None:
        return None

    def _count(self) -> None:
        if sum(map(len, self.per_user.values())) + self.failures >= self.total:
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
    process = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite3"
        await _queue_jobs(case, path, base_url)
        async with (
            FlowClient("test-token", base_url) as client,
            SqliteStore(path) as store,
        ):
            timed = TimedUpstream(client)
            collector = Collector(timed, case.jobs)
            service = _service(case, store, timed)
            service.attach("bench", collector)
            peak_rss = process.memory_info().rss
            collector.started_at = time.perf_counter()
            async with service:
                while not collector.done.is_set():
                    peak_rss = max(peak_rss, process.memory_info().rss)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(collector.done.wait(), 0.1)
                actual = time.perf_counter() - collector.started_at
    server.stdin.close()
    stats = json.loads(await server.stdout.readline())
    await server.wait()

    if case.vary_every:
        ideal = _ideal_varying(case, capacity_schedule(42), period)
        ramped = None
    else:
        ideal = case.jobs * case.latency / (case.capacity * case.accounts)
        ramped = _ideal_from_floor(case, floor=Tuning().account_min_concurrency)
    means = [statistics.fmean(t) for t in collector.per_user.values()]
    fairness = sum(means) ** 2 / (len(means) * sum(m * m for m in means)) if means else 0.0
    overheads = sorted(collector.overheads)
    return Row(
        case=case,
        ideal=ideal,
        ramped=ramped,
        actual=actual,
        peak=stats["peak"],
        throttled=stats["throttled"],
        fairness=fairness,
        overhead_p50=_percentile(overheads, 0.50) * 1000,
        overhead_p99=_percentile(overheads, 0.99) * 1000,
        rss_mb=peak_rss / 2**20,
        failures=collector.failures,
    )


def _service(case: Case, store: SqliteStore, upstream: ImageProvider) -> Service:
    return Service(
        store,
        [upstream],
        models=ModelTable.builtin(),
        limits=Limits(queued_per_user=case.jobs, running_per_user=case.jobs),
        tuning=Tuning(retry_min_seconds=case.latency / 3, retry_max_seconds=case.latency * 4),
        rng=random.Random(1),
    )


async def _queue_jobs(case: Case, path: Path, base_url: str) -> None:
    """Store the whole queue first, as a restart finds it, so submission isn't what we time."""
    async with FlowClient("test-token", base_url) as client, SqliteStore(path) as store:
        service = _service(case, store, client)
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


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def cases(quick: bool) -> list[Case]:
    n = 4 if quick else 1
    return [
        Case("fixed C=10", jobs=400 // n, users=20, latency=0.5, capacity=10),
        Case("fixed C=20", jobs=800 // n, users=20, latency=0.5, capacity=20),
        Case("varying /4L", jobs=400 // n, users=20, latency=0.5, capacity=10, vary_every=4),
        Case("varying /10L", jobs=400 // n, users=20, latency=0.5, capacity=10, vary_every=10),
        Case("1 account C=8", jobs=240 // n, users=12, latency=0.5, capacity=8),
        Case("2 accounts C=8", jobs=480 // n, users=24, latency=0.5, capacity=8, accounts=2),
        Case("100 queued", jobs=100, users=10, latency=0.5, capacity=20),
        Case("1,000 queued", jobs=1000, users=100, latency=0.5, capacity=20),
    ]


async def main(quick: bool) -> None:
    rows = [await run_case(case) for case in cases(quick)]
    header = (
        f"{'case':<16}{'jobs':>6}{'ideal s':>9}{'actual s':>9}{'ratio':>7}{'ramped':>8}{'peak':>6}"
        f"{'429s':>6}{'fail':>6}{'fair':>6}{'ovh p50':>9}{'ovh p99':>9}{'RSS MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.case.name:<16}{r.case.jobs:>6}{r.ideal:>9.2f}{r.actual:>9.2f}{r.ratio:>7.3f}"
            f"{'' if r.ramped is None else format(r.ramped / r.actual, '.3f'):>8}"
            f"{r.peak:>6}{r.throttled:>6}{r.failures:>6}{r.fairness:>6.3f}{r.overhead_p50:>7.1f}ms"
            f"{r.overhead_p99:>7.1f}ms{r.rss_mb:>8.1f}"
        )
    by_name = {r.case.name: r for r in rows}
    one, two = by_name["1 account C=8"], by_name["2 accounts C=8"]
    speedup = (two.case.jobs / two.actual) / (one.case.jobs / one.actual)
    print(f"\n2 accounts vs 1: throughput ×{speedup:.2f} (target ≥ 1.9)")
    small, large = by_name["100 queued"], by_name["1,000 queued"]
    print(f"RSS at 1,000 queued vs 100: {large.rss_mb - small.rss_mb:+.1f} MB (target: flat)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the jobs")
    asyncio.run(main(parser.parse_args().quick))
