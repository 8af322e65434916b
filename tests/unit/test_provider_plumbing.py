"""Provider plumbing without a network: fan-out, Retry-After, the per-minute gate, media rules."""

from __future__ import annotations

import asyncio
import email.utils
import time
from io import BytesIO

import pytest
from PIL import Image

from bot.core.providers import RenderedImage
from bot.core.upstream import (
    ContentPolicyError,
    ModerationError,
    Throttled,
    Unavailable,
)
from bot.providers.media import MediaPolicy, policy_for, verify_image
from bot.providers.plumbing import RateGate, fan_out, retry_after


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


def test_retry_after_seconds_and_http_dates() -> None:
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    assert retry_after({"Retry-After": "-3"}) == 0.0
    assert retry_after({}) is None
    assert retry_after({"Retry-After": "soon"}) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after({"Retry-After": future}) or 0) <= 30


async def test_rate_gate_lets_limit_pass_per_window() -> None:
    gate = RateGate(3, window=0.2)
    stamps = []
    for _ in range(7):
        await gate.wait()
        stamps.append(time.monotonic())
    for first, fourth in zip(stamps, stamps[3:], strict=False):
        assert fourth - first >= 0.2
    assert stamps[2] - stamps[0] < 0.05


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.atomu.ai/a.png", True),
        ("https://CDN.ATOMU.AI/a.png", True),
        ("https://img.wireflow.ai/a.png", True),
        ("https://wireflow.ai/a.png", False),  # ".wireflow.ai" is the subdomains only
        ("https://evilwireflow.ai/a.png", False),
        ("https://cdn.atomu.ai.evil.com/a.png", False),
        ("http://cdn.atomu.ai/a.png", False),
        ("https://user:pw@cdn.atomu.ai/a.png", False),
        ("file:///etc/passwd", False),
        ("https:///a.png", False),
        ("https://127.0.0.1/a.png", False),
    ],
)
def test_media_policy_hosts_and_schemes(url: str, allowed: bool) -> None:
    policy = MediaPolicy(frozenset({"cdn.atomu.ai", ".wireflow.ai"}))
    assert policy.allows(url) is allowed


def test_the_policy_scheme_follows_the_api() -> None:
    local = policy_for("http://127.0.0.1:9", frozenset({"127.0.0.1"}), max_bytes=1, timeout=1)
    prod = policy_for(
        "https://nano-banana-pro.net", frozenset({"127.0.0.1"}), max_bytes=1, timeout=1
    )
    assert local.allows("http://127.0.0.1:9/x.png")
    assert not prod.allows("http://127.0.0.1:9/x.png")
    assert prod.allows("https://127.0.0.1/x.png")


def test_verify_image_by_content_and_pixels() -> None:
    out = BytesIO()
    Image.new("RGB", (40, 30)).save(out, "WEBP")
    assert verify_image(out.getvalue(), 40 * 30) == "image/webp"
    with pytest.raises(Unavailable, match="too many pixels"):
        verify_image(out.getvalue(), 40 * 30 - 1)
    gif = BytesIO()
    Image.new("RGB", (4, 4)).save(gif, "GIF")
    for junk in (b"", b"<html>", gif.getvalue(), out.getvalue()[:20]):
        with pytest.raises(Unavailable, match="not a PNG, JPEG or WebP"):
            verify_image(junk, 10**6)
