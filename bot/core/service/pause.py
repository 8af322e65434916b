"""The queue's pause switch: while the operator has paused it, jobs are accepted and queued but
none starts (the scheduler hands nothing out). It lives in the store, so that every process
sharing it obeys: a change made here holds at once, one made elsewhere within ``RECHECK``.
"""

from __future__ import annotations

import asyncio
import logging

from bot.core.ports import Store
from bot.core.scheduler import Scheduler

log = logging.getLogger(__name__)

RECHECK = 1.0  # seconds between readings of the switch


class Pause:
    def __init__(self, store: Store, scheduler: Scheduler, wake: asyncio.Event) -> None:
        self._store = store
        self._scheduler = scheduler
        self._wake = wake

    @property
    def on(self) -> bool:
        return self._scheduler.paused

    async def set(self, paused: bool) -> bool:
        """Pause or resume; False if it already was (or wasn't)."""
        changed = await self._store.set_paused(paused)
        self._apply(paused)
        return changed

    async def read(self) -> None:
        """Take the switch as stored (another process may have turned it)."""
        try:
            self._apply(await self._store.paused())
        except Exception:  # a store that can't be read must not stop the queue, or start it
            log.exception("could not read whether the queue is paused")

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(RECHECK)
            await self.read()

    def _apply(self, paused: bool) -> None:
        if paused != self._scheduler.paused:
            log.warning("the queue is %s", "paused" if paused else "resumed")
            self._scheduler.paused = paused
            self._wake.set()  # resumed: what waits may start now
