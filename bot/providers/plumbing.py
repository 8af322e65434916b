"""What the provider clients share besides HTTP (``http``): their timeouts, the parallel
fan-out of one-image-per-call providers (and of a rendering's downloads), and a per-minute gate.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from bot.core.providers import Pending, RenderedImage, Rendering
from bot.core.upstream import ContentPolicyError, ModerationError, UpstreamError


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``total`` bounds a whole operation end to end: every call, poll and download;
    ``request`` one HTTP exchange (a synchronous render takes 10-60 s, 4K longer)."""

    connect: float = 10.0
    request: float = 180.0
    download: float = 60.0
    total: float = 300.0


T = TypeVar("T")


async def fan_out(
    count: int, one: Callable[[int], Awaitable[T]]
) -> tuple[list[T], list[ModerationError]]:
    """Run ``one(0)`` … ``one(count - 1)`` at once: the images in index order, and the refusals.

    A ``ModerationError`` withholds only its own image. Any other failure cancels the siblings
    and is raised as itself: the job as a whole is retried, moved or refused.
    """
    made: dict[int, T] = {}
    refused: dict[int, ModerationError] = {}

    async def run(index: int) -> None:
        try:
            made[index] = await one(index)
        except ModerationError as exc:
            refused[index] = exc

    try:
        async with asyncio.TaskGroup() as group:
            for index in range(count):
                group.create_task(run(index))
    except BaseExceptionGroup as group_error:
        leaf = _most_telling(group_error)
        raise leaf from leaf.__cause__  # itself, with its own cause (httpx's, say)
    return [made[i] for i in sorted(made)], [refused[i] for i in sorted(refused)]


async def fetched(
    rendering: Rendering, one: Callable[[Pending], Awaitable[RenderedImage]]
) -> Rendering:
    """``rendering`` with each ``Pending`` picture brought in by ``one``, all at once; the
    first failure cancels the other downloads and is raised as itself."""

    async def each(index: int) -> RenderedImage:
        image = rendering.images[index]
        return image if isinstance(image, RenderedImage) else await one(image)

    images, refused = await fan_out(len(rendering.images), each)
    if refused:  # no download withholds a picture; never drop one silently
        raise refused[0]
    return replace(rendering, images=tuple(images))


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

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        # The provider starts its window when a request arrives, a little after we stamp it
        # here; a 5 % margin (at most 1 s) keeps the two windows from disagreeing.
        self.window = window + min(1.0, window * 0.05)
        self._stamps: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._clock, self._sleep = clock, sleep

    async def wait(self) -> None:
        async with self._lock:  # first come, first served
            while True:
                now = self._clock()
                while self._stamps and now - self._stamps[0] >= self.window:
                    self._stamps.popleft()
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return
                await self._sleep(self._stamps[0] + self.window - now)
