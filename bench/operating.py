"""What operating the bot costs: ``python -m bench.operating [--jobs N]``.

Retention: N answered jobs older than the retention period (each with a prompt and a result
image row) are pruned on a SQLite file and on PostgreSQL (``BOT_BENCH_DATABASE_URL``, else a
throwaway cluster), while another task keeps adding jobs: the table gives the whole prune, the
longest batch (how long the bot's own writes may wait) and the slowest concurrent ``add_job``.
Backup: ``python -m bot backup``'s copy of that SQLite store (before pruning), size and time.
Metrics: one ``/metrics`` exposition with 20 accounts, built in process and fetched over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.store import postgres
from bot import retention
from bot.backup import backup
from bot.core.domain import GenerationRequest
from bot.core.monitoring import AccountState, Health, Outcome, Snapshot, UpstreamCall
from bot.core.people import Owner
from bot.observability.metrics import Metrics
from bot.observability.server import serve
from bot.store import StoreUrl, open_store
from bot.store.sqlite import SqliteStore

OLD = 40 * 86_400.0
PROMPT = "a lighthouse in a storm, oil painting, dramatic light " * 4
REQUEST = json.dumps(
    {"kind": "generate", "prompt": PROMPT, "model": "nano-banana-2", "aspect_ratio": "1:1"}
    | {"count": 1, "seed": 1, "references": []}
)


async def fill(store: Any, jobs: int) -> None:
    """``jobs`` delivered jobs, 40 days old, each with one result image row."""
    if isinstance(store, SqliteStore):
        then = time.time() - OLD
        async with store._transaction() as db:
            await db.executemany(
                "INSERT INTO jobs (id, platform, user_id, chat_id, request, state, account, "
                "created_at, updated_at, delivered_at) "
                "VALUES (?, 'bench', 'u', 'c', ?, 'done', 'a', ?, ?, ?)",
                ((i, REQUEST, then, then, then) for i in range(1, jobs + 1)),
            )
            await db.executemany(
                "INSERT INTO images VALUES (?, 1, ?, 'a', 1, 'nano-banana-2', 'image/jpeg', NULL)",
                ((i, f"user:media-{i}") for i in range(1, jobs + 1)),
            )
        return
    async with store.pool.connection() as db, db.transaction():
        await db.execute(
            "INSERT INTO jobs (platform, user_id, chat_id, request, state, account, created_at, "
            "updated_at, delivered_at) SELECT 'bench', 'u', 'c', %s, 'done', 'a', "
            "now() - interval '40 days', now(), now() FROM generate_series(1, %s)",
            (REQUEST, jobs),
        )
        await db.execute(
            "INSERT INTO images SELECT id, 1, 'user:media-' || id, 'a', 1, 'nano-banana-2', "
            "'image/jpeg', NULL FROM jobs"
        )


async def prune_while_writing(url: str, jobs: int) -> tuple[float, float, float, int]:
    """Seconds: the whole prune, its longest batch, the slowest add_job meanwhile; rows."""
    async with open_store(url) as store:
        await fill(store, jobs)
        batches: list[float] = []
        real = store.prune

        async def timed(older_than: float, *, limit: int) -> int:
            started = time.perf_counter()
            try:
                return await real(older_than, limit=limit)
            finally:
                batches.append(time.perf_counter() - started)

        store.prune = timed  # type: ignore[method-assign]
        writes: list[float] = []
        done = asyncio.Event()

        async def writer() -> None:
            request = GenerationRequest("a fox", "nano-banana-2", "1:1", 1, 1)
            while not done.is_set():
                started = time.perf_counter()
                await store.add_job(Owner("bench", "w", "c"), request, {}, day="2026-01-01")
                writes.append(time.perf_counter() - started)
                await asyncio.sleep(0.005)

        task = asyncio.create_task(writer())
        started = time.perf_counter()
        pruned = await retention.prune(store, 30)
        total = time.perf_counter() - started
        done.set()
        await task
        return total, max(batches), max(writes), pruned


async def scrape(rounds: int) -> tuple[float, float, int]:
    """Milliseconds per exposition in process, and per GET /metrics; its size in bytes."""
    accounts = tuple(AccountState(f"account{i}@example.com", 10, 3, True) for i in range(20))

    class Source:
        def snapshot(self) -> Snapshot:
            return Snapshot(40, 12, accounts, {"telegram": True, "discord": True})

        async def health(self) -> Health:
            return Health(True, True)

    metrics = Metrics()
    metrics.watch(Source())
    for i in range(1000):
        metrics.job_ended(Outcome.DONE)
        metrics.upstream_answered(UpstreamCall.GENERATE, accounts[i % 20].name, i % 30, 200)
    started = time.perf_counter()
    for _ in range(rounds):
        body = metrics.render()
    in_process = (time.perf_counter() - started) / rounds * 1000
    async with (
        serve(("127.0.0.1", 0), Source(), metrics) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            (await http.get("/metrics")).raise_for_status()
            times.append(time.perf_counter() - started)
    return in_process, statistics.median(times) * 1000, len(body)


async def main(jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, postgres() as server:
        print(f"retention: {jobs} answered jobs past BOT_RETENTION_DAYS, a writer adding jobs")
        print(
            f"{'store':<9} {'prune s':>8} {'batch max ms':>13} {'add_job max ms':>15} {'rows':>8}"
        )
        path = Path(tmp) / "bot.sqlite3"
        async with open_store(f"sqlite:///{path}") as store:
            await fill(store, jobs)
        started = time.perf_counter()
        line = backup(StoreUrl.parse(f"sqlite:///{path}"), Path(tmp) / "copy.sqlite3")
        backup_seconds = time.perf_counter() - started
        path.unlink()
        for name, url in (("sqlite", f"sqlite:///{path}"), ("postgres", None)):
            database = None
            if url is None:
                database = server.create_database()
                url = server.url(database)
            try:
                total, batch, write, rows = await prune_while_writing(url, jobs)
            finally:
                if database is not None:
                    server.drop_database(database)
            print(f"{name:<9} {total:8.2f} {batch * 1000:13.1f} {write * 1000:15.1f} {rows:>8}")
        print(f"\nbackup of that SQLite store ({jobs} jobs): {backup_seconds:.2f} s — {line}")
        in_process, over_http, size = await scrape(200)
        print(
            f"\n/metrics with 20 accounts: {in_process:.2f} ms to build, {over_http:.2f} ms per "
            f"GET (median), {size} bytes"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().jobs))
