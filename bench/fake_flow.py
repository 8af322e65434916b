"""The fake Flow server in its own process, so it doesn't steal the measured service's core.

``python -m bench.fake_flow --accounts N --latency L --capacity C [--period P --seed S]``
prints its base URL and serves until standard input closes, then prints its counters as JSON.
With ``--period`` the capacity follows ``capacity_schedule(seed)``, one value per period, from
when the line ``start`` arrives on standard input: the benchmark sends it as the service starts,
so that the ideal it integrates from that moment is the capacity the service really had.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys

from tests.fakes.flow_server import FakeFlowServer


def capacity_schedule(seed: int, steps: int = 10_000) -> list[int]:
    """Capacity wandering between 3 and 20, as the real endpoint's does."""
    rng = random.Random(seed)
    return [rng.randint(3, 20) for _ in range(steps)]


async def follow(flow: FakeFlowServer, emails: list[str], period: float, seed: int) -> None:
    for capacity in capacity_schedule(seed):
        for email in emails:
            flow.set_capacity(email, capacity)
        await asyncio.sleep(period)


async def serve(args: argparse.Namespace) -> None:
    emails = [f"acct{i}@example.com" for i in range(args.accounts)]
    async with FakeFlowServer(
        accounts=emails, latency=args.latency, capacity=args.capacity, image_size=(16, 16)
    ) as flow:
        print(flow.base_url, flush=True)
        loop = asyncio.get_running_loop()
        schedule: asyncio.Task[None] | None = None
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "start" and args.period and schedule is None:
                schedule = asyncio.create_task(follow(flow, emails, args.period, args.seed))
        if schedule is not None:
            schedule.cancel()
        print(json.dumps({"peak": flow.peak_total, "throttled": flow.throttled}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--capacity", type=int, default=10)
    parser.add_argument("--period", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=42)
    asyncio.run(serve(parser.parse_args()))
