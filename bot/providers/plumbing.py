"""What every provider client shares: one httpx client shape, deadlines, bounded answers, the
parallel fan-out of one-image-per-call providers, and a per-minute gate.

Nothing here knows a wire format; each provider module does. The bounded, bomb-safe body reader,
the Retry-After rule and the cookie jar that keeps nothing are the Flow client's own (imported,
not copied): they move here, beside ``media``, when Flow joins the providers.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
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
from bot.flow.client import (
    ERROR_BODY_BYTES,
    PARSE_IN_THREAD,
    USER_AGENT,
    _json,
    _no_cookies,
    _read_body,
)
from bot.flow.client import _retry_after as retry_after

__all__ = [
    "Answer",
    "RateGate",
    "Timeouts",
    "deadline",
    "exchange",
    "fan_out",
    "new_http",
    "retry_after",
    "transport",
]


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``total`` bounds a whole operation end to end: every call, poll and download;
    ``request`` one HTTP exchange (a synchronous render takes 10-60 s, 4K longer)."""

    connect: float = 10.0
    request: float = 180.0
    download: float = 60.0
    total: float = 300.0


def new_http(timeouts: Timeouts, *, max_connections: int = 100) -> httpx.AsyncClient:
    """The API client every provider uses, shaped like Flow's: named, keeping no cookies, never
    following a redirect (it would replay the prompt elsewhere), and asking only for encodings
    the bounded reader inflates itself."""
    return httpx.AsyncClient(
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        },
        timeout=httpx.Timeout(timeouts.request, connect=timeouts.connect),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
        cookies=_no_cookies(),
    )


@asynccontextmanager
async def deadline(seconds: float, what: str, *, account: str | None = None) -> AsyncIterator[None]:
    """End-to-end bound: past ``seconds`` the work is cancelled and ``UpstreamTimeout`` raised
    (httpx's read timeout is only the silence between two chunks)."""
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
    except (httpx.HTTPError, zlib.error) as exc:
        raise Unavailable(f"{what} failed: {type(exc).__name__}", account=account) from exc


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read within a size bound: status, headers and parsed body."""

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
    """Send one request; read at most ``max_bytes`` of a 200 (``ERROR_BODY_BYTES`` of any other
    answer, whose text is clipped anyway), inflating gzip within the bound."""
    async with transport(what, account=account), http.stream(method, url, **kwargs) as response:
        limit = max_bytes if response.status_code == 200 else ERROR_BODY_BYTES
        raw, cut = await _read_body(response, limit)
    if cut and response.status_code == 200:
        raise Unavailable(f"{what} answered more than {max_bytes} bytes", account=account)
    if 300 <= response.status_code < 400:
        raise Unavailable(
            f"{what} answered a redirect, which the API never does (is the base URL right?)",
            status=response.status_code,
            account=account,
        )
    # Images arrive base64 inside the JSON: parsing megabytes belongs off the event loop.
    body = await asyncio.to_thread(_json, raw) if len(raw) > PARSE_IN_THREAD else _json(raw)
    return Answer(response.status_code, response.headers, body)


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
