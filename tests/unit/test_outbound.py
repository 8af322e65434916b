"""The fair share of a group's rate, and clipping as Telegram counts characters."""

from __future__ import annotations

import asyncio
import contextlib

from bot.frontends.telegram.outbound import FairBucket, clip


async def test_waiters_take_turns_by_key_and_a_cancelled_one_takes_no_place() -> None:
    bucket = FairBucket(rate=2, period=0.2)  # one place every 0.1 s once the burst is used
    order: list[str] = []

    async def send(key: str, label: str) -> None:
        await bucket.acquire(key)
        order.append(label)

    greedy = [asyncio.create_task(send("a", f"a{n}")) for n in range(5)]
    await asyncio.sleep(0.01)  # a0 and a1 went at once; a2-a4 wait
    gone = asyncio.create_task(send("b", "b-gone"))
    other = asyncio.create_task(send("b", "b"))
    await asyncio.sleep(0)
    gone.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await gone
    await asyncio.gather(*greedy, other)
    assert order == ["a0", "a1", "a2", "b", "a3", "a4"]


def test_clip_counts_utf16_units_and_never_splits_a_character() -> None:
    assert clip("short", 10) == "short"
    assert clip("x" * 11, 10) == "x" * 9 + "…"
    clipped = clip("🍌" * 10, 10)  # each banana is two UTF-16 units
    assert clipped == "🍌" * 4 + "…"
