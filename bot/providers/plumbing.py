"""What every provider client shares: one httpx client shape, deadlines, transport errors, the
parallel fan-out of one-image-per-call providers, and a per-minute gate.

Nothing here knows a wire format; each provider module does.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bot.core.providers import RenderedImage
from bot.core.upstream import (
    ContentPolicyError,
    ModerationError,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from bot.flow.client import USER_AGENT


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``total`` bounds a whole operation end to end: every call, poll and download."""

    connect: float = 10.0
    request: float = 180.0  # one HTTP exchange (a synchronous render takes 10-60 s, 4K longer)
    download: float = 60.0
    total: float = 300.0


def new_http(timeouts: Timeouts, *, max_connections: int = 100) -> httpx.AsyncClient:
    """The client every provider uses: named, bounded, and never following redirects on its own
    (API calls do not redirect; downloads check every hop against the media hosts)."""
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(timeouts.request, connect=timeouts.connect),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
    )


@asynccontextmanager
async def deadline(seconds: float, what: str, *, account: str | None = None) -> AsyncIterator[None]:
    """End-to-end bound: past ``seconds`` the work is cancelled and ``UpstreamTimeout`` raised."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{what} took longer than {seconds:g} s", account=account) from exc


@asynccontextmanager
async def transport(what: str, *, account: str | None = None) -> AsyncIterator[None]:
    """httpx's own failures as the error tree: a timeout, or the service out of reach."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"{what} got no answer in time", account=account) from exc
    except httpx.HTTPError as exc:
        raise Unavailable(f"{what} failed: {type(exc).__name__}", account=account) from exc


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole within a size bound: status, headers and parsed body."""

    status: int
    headers: httpx.Headers
    body: Any


async def exchange(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    max_bytes: int,
    account: str | None = None,
    **kwargs: Any,
) -> Answer:
    """Send one request and read its answer, never more than ``max_bytes`` of it."""
    async with transport(what, account=account), http.stream(method, url, **kwargs) as response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise Unavailable(f"{what} answered more than {max_bytes} bytes", account=account)
            chunks.append(chunk)
    raw = b"".join(chunks)
    # Images arrive base64 inside the JSON: parsing tens of megabytes belongs off the loop.
    body = await asyncio.to_thread(_parse, raw) if size > 1_000_000 else _parse(raw)
    return Answer(response.status_code, response.headers, body)


def _parse(raw: bytes) -> Any:
    """The JSON body, else the first 200 characters of text (or None)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace") or None


async def fan_out(
    count: int, one: Callable[[int], Awaitable[RenderedImage]]
) -> tuple[list[RenderedImage], list[ModerationError]]:
    """Run ``one(0)`` … ``one(count - 1)`` at once: the images in index order, and the refusals.

    A ``ModerationError`` withholds only its own image. Any other failure cancels the siblings
    and is raised as itself: the job as a whole is retried, moved or refused.
    """
    slots: list[RenderedImage | ModerationError | None] = [None] * count

    async def run(index: int) -> None:
        try:
            slots[index] = await one(index)
        except ModerationError as exc:
            slots[index] = exc

    try:
        async with asyncio.TaskGroup() as group:
            for index in range(count):
                group.create_task(run(index))
    except BaseExceptionGroup as group_error:
        leaf = _most_telling(group_error)
        raise leaf from leaf.__cause__  # itself, with its own cause (httpx's, say)
    images = [s for s in slots if isinstance(s, RenderedImage)]
    refused = [s for s in slots if isinstance(s, ModerationError)]
    return images, refused


def _most_telling(group_error: BaseExceptionGroup[BaseException]) -> BaseException:
    """The failure the caller should see: a refused prompt first, then the first upstream error."""
    leaves = _leaves(group_error)
    for kind in (ContentPolicyError, UpstreamError):
        found = next((e for e in leaves if isinstance(e, kind)), None)
        if found is not None:
            return found
    return leaves[0]


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


class RateGate:
    """At most ``limit`` passes in any ``window`` seconds; ``wait`` blocks until one is free.

    A sliding window like the providers' own: asking before sending costs a little latency,
    asking after a 429 costs a refused request and the provider's patience.
    """

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        # The provider starts its window when a request arrives, a little after we stamp it
        # here; a 5 % margin (at most 1 s) keeps the two windows from disagreeing.
        self.window = window + min(1.0, window * 0.05)
        self._stamps: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:  # first come, first served
            while True:
                now = time.monotonic()
                while self._stamps and now - self._stamps[0] >= self.window:
                    self._stamps.popleft()
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return
                await asyncio.sleep(self._stamps[0] + self.window - now)
