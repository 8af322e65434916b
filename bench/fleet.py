"""Jobs/s with 1, 2 and 4 processes on one PostgreSQL: ``python -m bench.fleet [--jobs N]``.

Each process is ``tests.e2e.fleet_worker`` (the real service and Flow client, a leadership on
the shared database), submitting its share of the jobs from the same users; the fake Flow server
has two accounts, each limit pinned at ``LIMIT``, every generation taking ``LATENCY`` seconds.
Timed from the first process having submitted its share to the last answer written. The ideal
makespan is what the accounts allow: rounds of ``2 × LIMIT`` generations. Throughput should follow
the accounts, not the number of processes (one leads and runs everything).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import tempfile
import time
from pathlib import Path

from bench.store import postgres
from tests.fakes.flow_server import FakeFlowServer

ACCOUNTS = ("one@example.com", "two@example.com")
LIMIT = 4
LATENCY = 0.5
USERS = 12


def answered(answers: Path) -> int:
    return len(answers.read_text().splitlines())


async def run(url: str, processes: int, jobs: int, answers: Path) -> float:
    async with FakeFlowServer(accounts=ACCOUNTS, latency=LATENCY, capacity=4 * LIMIT) as flow:
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.e2e.fleet_worker",
                flow.base_url,
                url,
                str(answers),
                f"w{i}",
                str(jobs // processes),
                str(USERS),
                str(LIMIT),
                "10",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            for i in range(processes)
        ]
        started = None
        while started is None:
            for worker in workers:
                assert worker.stdout is not None
                with contextlib.suppress(TimeoutError):
                    line = await asyncio.wait_for(worker.stdout.readline(), 0.01)
                    if line.strip() == b"submitted":
                        started = time.monotonic()
        while answered(answers) < jobs:  # noqa: ASYNC110 — other processes write it
            await asyncio.sleep(0.01)
        seconds = time.monotonic() - started
        for worker in workers:
            await worker.wait()
        return seconds


async def main(jobs: int) -> None:
    ideal = math.ceil(jobs / (len(ACCOUNTS) * LIMIT)) * LATENCY
    print(f"{jobs} jobs, {USERS} users, {len(ACCOUNTS)} accounts × {LIMIT}, {LATENCY}s each")
    print(f"{'processes':>9} {'jobs/s':>7} {'makespan s':>10} {'ideal s':>8} {'actual/ideal':>12}")
    with tempfile.TemporaryDirectory() as tmp, postgres() as server:
        for processes in (1, 2, 4):
            name = server.create_database()
            try:
                answers = Path(tmp) / f"answers-{processes}.txt"
                answers.touch()
                seconds = await run(server.url(name), processes, jobs, answers)
            finally:
                server.drop_database(name)
            print(
                f"{processes:>9} {jobs / seconds:7.1f} {seconds:10.2f} {ideal:8.2f} "
                f"{seconds / ideal:12.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=96)
    asyncio.run(main(parser.parse_args().jobs))
