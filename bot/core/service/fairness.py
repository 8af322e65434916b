"""What keeps one user from crowding out the others: a rate for their presses, a double tap
counted once, and a share of the bot's downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Hashable, Iterator

from bot.core import texts
from bot.core.errors import InvalidInput

# Buckets that have filled up again are forgotten once this many are kept.
_KEEP = 4096


class Throttle:
    """A token bucket per key: ``burst`` actions at once, then one every ``interval`` seconds."""

    def __init__(self, burst: int, interval: float, clock: Callable[[], float]) -> None:
        self._burst = burst
        self._interval = interval
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key → (tokens, when)

    def allow(self, key: Hashable) -> bool:
        """Take a token for ``key``; False if it has none left."""
        now = self._clock()
        if len(self._buckets) > _KEEP:
            self._buckets = {
                k: b for k, b in self._buckets.items() if self._level(b, now) < self._burst
            }
        tokens = self._level(self._buckets.get(key, (self._burst, now)), now)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1, now)
        return True

    def _level(self, bucket: tuple[float, float], now: float) -> float:
        tokens, when = bucket
        return min(float(self._burst), tokens + (now - when) / self._interval)


class Once:
    """A press that counts once: while one with the same key is being admitted, and for
    ``window`` seconds after it was, another is refused ("already on its way"). In memory: a
    double tap reaches one process."""

    def __init__(self, window: float, clock: Callable[[], float]) -> None:
        self._window = window
        self._clock = clock
        self._busy: set[Hashable] = set()
        self._done: dict[Hashable, float] = {}  # key → when it was admitted

    @contextlib.contextmanager
    def hold(self, key: Hashable, *, linger: bool = True) -> Iterator[None]:
        """Admit ``key`` once; if the admission fails, the key is free again at once.
        ``linger=False``: refused only while being admitted (the store knows it after)."""
        now = self._clock()
        self._done = {k: t for k, t in self._done.items() if now - t < self._window}
        if key in self._busy or key in self._done:
            raise InvalidInput(texts.ON_ITS_WAY)
        self._busy.add(key)
        try:
            yield
            if linger:
                self._done[key] = self._clock()
        finally:
            self._busy.discard(key)


class Slots:
    """At most ``per_key`` holders per key and ``overall`` holders in all (None: any number);
    the rest wait."""

    def __init__(self, *, per_key: int, overall: int | None = None) -> None:
        self._per_key = per_key
        self._overall = (
            asyncio.Semaphore(overall) if overall is not None else contextlib.nullcontext()
        )
        self._keys: dict[Hashable, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        # The key's own turn first: a user waiting behind themselves holds no overall slot.
        semaphore, users = self._keys.get(key, (asyncio.Semaphore(self._per_key), 0))
        self._keys[key] = (semaphore, users + 1)
        try:
            async with semaphore, self._overall:
                yield
        finally:
            semaphore, users = self._keys[key]
            if users == 1:
                del self._keys[key]
            else:
                self._keys[key] = (semaphore, users - 1)
