"""Provider plumbing without a network: fan-out, Retry-After and the per-minute gate."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from bot.core.providers import RenderedImage
from bot.core.upstream import (
    ContentPolicyError,
    ModerationError,
    Throttled,
    Unavailable,
)
from bot.providers.http import retry_after
from bot.providers.plumbing import RateGate, fan_out


def image(index: int) -> RenderedImage:
    return RenderedImage(bytes([index]), "image/png", seed=index)


async def test_fan_out_keeps_order_and_withholds_only_the_refused() -> None:
    async def one(index: int) -> RenderedImage:
        await asyncio.sleep(0.01 * (3 - index))  # finish in reverse order
        if index == 1:
            raise ModerationError("filtered", status=200)
        return image(index)

    images, refused = await fan_out(3, one)
    assert [i.seed for i in images] == [0, 2]
    assert [r.detail for r in refused] == ["filtered"]


async def test_fan_out_cancels_siblings_on_another_failure() -> None:
    cancelled: list[int] = []

    async def one(index: int) -> RenderedImage:
        if index == 0:
            raise Throttled("busy", status=429, retry_after=2)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(index)
            raise
        return image(index)

    started = time.monotonic()
    with pytest.raises(Throttled) as caught:
        await fan_out(3, one)
    assert time.monotonic() - started < 1
    assert caught.value.retry_after == 2
    assert sorted(cancelled) == [1, 2]


async def test_fan_out_prefers_a_refused_prompt_over_other_failures() -> None:
    go = asyncio.Event()

    async def one(index: int) -> RenderedImage:
        await go.wait()  # both wake in the same loop turn, so both failures are collected
        if index == 0:
            raise Unavailable("flaky")
        raise ContentPolicyError("prompt refused", status=200)

    async def release() -> None:
        await asyncio.sleep(0.01)
        go.set()

    releaser = asyncio.create_task(release())
    with pytest.raises(ContentPolicyError) as caught:
        await fan_out(2, one)
    await releaser
    assert caught.value.detail == "prompt refused"


def test_retry_after_is_flows_rule() -> None:
    """Seconds from 0 to a day; a date, a negative or an absurd value is no hint."""
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    for value in ("-3", "soon", "inf", "86401", email.utils.formatdate(time.time() + 30)):
        assert retry_after({"Retry-After": value}) is None
    assert retry_after({}) is None


class FakeTime:
    """Time that passes only when the gate sleeps: a loaded machine's pauses neither shorten
    nor stretch it."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_rate_gate_lets_limit_pass_per_window() -> None:
    fake = FakeTime()
    gate = RateGate(3, window=0.2, clock=fake.clock, sleep=fake.sleep)
    stamps = []
    for _ in range(7):
        await gate.wait()
        stamps.append(fake.now)
    for first, fourth in zip(stamps, stamps[3:], strict=False):
        assert fourth - first >= 0.2
    assert stamps[2] - stamps[0] < 0.05
    # Three at once, then three more a window (with its margin) later, and so on.
    assert stamps == pytest.approx([0.0] * 3 + [gate.window] * 3 + [2 * gate.window])
