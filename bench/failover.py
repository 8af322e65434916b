"""Failing over between roads: ``python -m bench.failover [--jobs N] [--latency L] [--characters]``.

The real service, the real clients of two roads and a SQLite store against the fake servers,
each road rendering in L seconds. N jobs of two images from six users are queued; once the first
is answered, the first road starts refusing every call with an operator error (Flow: 402 no
credits, 596 expired session, 401 refused token; Gemini: its key revoked). Per case the table
gives the jobs answered on each road, the jobs that failed, the images made but not delivered
(doubles or losses), the admin alerts, the failover gap (from the switch to the first answer
from the next road, less the L that render takes: what failing over costs a waiting user) and
the drain time of the whole queue. Targets: no job failed, nothing made twice, one alert, a gap
of a few tens of milliseconds. With ``--characters`` each user first makes a character on Flow
and every prompt draws it (``@hero``): the next road gets its picture inline.

It measures at the notifier (the answer handed to the front end), not at a fake platform: the
platforms' own rate limits are the same whichever road made the images.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.domain import JobResult
from bot.core.models_table import ModelTable
from bot.core.people import Owner
from bot.core.policy import Access, Limits, Tuning
from bot.core.ports import Posted
from bot.core.providers import ImageProvider, ProviderLimits
from bot.core.service import Service
from bot.providers.flow import FlowClient
from bot.providers.gemini import GeminiClient
from bot.providers.nbpro import NbproClient
from bot.store.sqlite import SqliteStore
from tests.conftest import image_bytes
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.nbpro_server import FakeNbproServer
from tests.fakes.notifier import RecordingNotifier

USERS = 6
COUNT = 2
# A project's limits well above the default 20 a minute, so the table shows failing over rather
# than the bucket (which tests/unit/test_scheduler_roads.py covers).
GEMINI_PAID = ProviderLimits(concurrency=8, requests_per_minute=600)


@dataclass
class Timed(RecordingNotifier):
    """Records when each answer came and which road made it."""

    answered_at: dict[int, tuple[float, str]] = field(default_factory=dict)
    alerted_at: list[float] = field(default_factory=list)

    async def job_finished(self, result: JobResult) -> Posted:
        road = result.images[0].ref.provider if result.images else "-"
        self.answered_at[result.job.id] = (time.monotonic(), road)
        return await super().job_finished(result)

    async def admin_alert(self, admin_id: str, text: str) -> None:
        self.alerted_at.append(time.monotonic())
        await super().admin_alert(admin_id, text)


@dataclass
class Roads:
    """Two roads on their fake servers: the first will break, the second takes over."""

    clients: tuple[ImageProvider, ImageProvider]
    names: tuple[str, str]
    made: Callable[[], tuple[int, int]]  # images each road made
    switch: Callable[[], None]  # the first road starts refusing


@dataclass
class Row:
    case: str
    jobs: int
    on_first: int
    on_next: int
    failed: int
    undelivered: int
    alerts: int
    gap: float
    drain: float


@contextlib.asynccontextmanager
async def flow_then(status: int, second: str, latency: float) -> AsyncIterator[Roads]:
    async with (
        FakeFlowServer(accounts=["alice@example.com"], latency=latency) as flow,
        FakeGeminiServer(latency=latency) as gemini,
        FakeNbproServer(latency=latency, plan="pro") as nbpro,
    ):
        other: ImageProvider
        if second == "gemini":
            other = GeminiClient(gemini.api_key, gemini.base_url, limits=GEMINI_PAID)
        else:
            other = NbproClient(nbpro.api_key, nbpro.base_url, plan="pro")
        yield Roads(
            (FlowClient(flow.token, flow.base_url), other),
            ("flow", second),
            lambda: (flow.generated, gemini.generated + nbpro.generated),
            lambda: flow.fail_next(status, count=100_000),
        )


@contextlib.asynccontextmanager
async def gemini_then_nbpro(latency: float) -> AsyncIterator[Roads]:
    async with (
        FakeGeminiServer(latency=latency) as gemini,
        FakeNbproServer(latency=latency, plan="pro") as nbpro,
    ):

        def revoke() -> None:
            gemini.api_key = "revoked"

        yield Roads(
            (
                GeminiClient(gemini.api_key, gemini.base_url),
                NbproClient(nbpro.api_key, nbpro.base_url, plan="pro"),
            ),
            ("gemini", "nbpro"),
            lambda: (gemini.generated, nbpro.generated),
            revoke,
        )


async def run_case(
    name: str,
    roads_cm: contextlib.AbstractAsyncContextManager[Roads],
    jobs: int,
    latency: float,
    characters: bool = False,
) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            roads_cm as roads,
            SqliteStore(Path(tmp) / "bench.sqlite3") as store,
            contextlib.AsyncExitStack() as stack,
        ):
            for client in roads.clients:
                await stack.enter_async_context(client)  # type: ignore[arg-type]
            service = Service(
                store,
                roads.clients,
                models=ModelTable.builtin(),
                limits=Limits(queued_per_user=jobs, daily_images_per_user=10_000),
                tuning=Tuning(job_deadline_seconds=60),
                access=Access(admins=frozenset({"console:99"})),
                rng=random.Random(7),
            )
            told = Timed()
            service.attach("console", told)
            async with service:
                ids = []
                owners = [Owner("console", str(u + 1), chat_id="chat") for u in range(USERS)]
                for owner in owners if characters else ():
                    await service.create_character(owner, "Hero", images=1, fetch=_hero)
                hero = "@hero " if characters else ""
                for i in range(jobs):
                    submitted = await service.submit(
                        owners[i % USERS], f"{hero}a lighthouse {i} --model 2 --count {COUNT}"
                    )
                    ids.append(submitted.job_id)
                started = time.monotonic()
                await told.wait_answered(ids[0], timeout=60)
                roads.switch()
                switched = time.monotonic()
                await told.wait_answered(*ids, timeout=300)
                drained = time.monotonic() - started
        made_first, made_next = roads.made()
        first, after = roads.names
        on = [told.answered_at[j][1] for j in ids if j in told.answered_at]
        delivered = sum(len(r.images) for r in told.finished)
        firsts_next = [t for t, road in told.answered_at.values() if road == after]
        # From the first refusal (the alert goes out as it is met) to the next road's answer.
        refused = min(told.alerted_at, default=switched)
        later = [t for t in firsts_next if t > refused]
        gap = (min(later) - refused - latency) if later else float("nan")
        return Row(
            case=name,
            jobs=jobs,
            on_first=on.count(first),
            on_next=on.count(after),
            failed=len(told.failed),
            undelivered=made_first + made_next - delivered,
            alerts=len(told.alerts),
            gap=gap,
            drain=drained,
        )


async def _hero() -> list[bytes]:
    return [image_bytes(size=(64, 64), color="orange")]


def print_table(rows: list[Row], latency: float, characters: bool) -> None:
    drawn = ", each drawing the user's character" if characters else ""
    print(
        f"\nfailover between roads: {COUNT} images a job{drawn}, {USERS} users, "
        f"render {latency:.2f} s"
    )
    header = (
        "case",
        "jobs",
        "first",
        "next",
        "failed",
        "undelivered",
        "alerts",
        "gap ms",
        "drain s",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        cells = (
            r.case,
            r.jobs,
            r.on_first,
            r.on_next,
            r.failed,
            r.undelivered,
            r.alerts,
            f"{r.gap * 1000:.0f}",
            f"{r.drain:.2f}",
        )
        print("| " + " | ".join(map(str, cells)) + " |")


async def main(jobs: int, latency: float, characters: bool) -> None:
    cases: list[tuple[str, contextlib.AbstractAsyncContextManager[Roads]]] = [
        ("flow 402 → gemini", flow_then(402, "gemini", latency)),
        ("flow 596 → gemini", flow_then(596, "gemini", latency)),
        ("flow 401 → nbpro", flow_then(401, "nbpro", latency)),
    ]
    if not characters:  # characters are made on Flow
        cases.append(("gemini key revoked → nbpro", gemini_then_nbpro(latency)))
    rows = [await run_case(name, cm, jobs, latency, characters) for name, cm in cases]
    print_table(rows, latency, characters)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=36)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--characters", action="store_true", help="every prompt draws @hero")
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.latency, args.characters))
