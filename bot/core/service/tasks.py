"""The service's background work: started in one place, failures logged, cancelled together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.core.cancellation import cancel_until_done

log = logging.getLogger(__name__)


class Tasks:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._done)
        return task

    async def cancel_all(self) -> None:
        """Cancel every task, those started meanwhile too, until none runs."""
        await cancel_until_done(self._running)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        # A failed task's exception is otherwise reported only when it is garbage-collected.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task %s failed", task.get_coro(), exc_info=exc)
