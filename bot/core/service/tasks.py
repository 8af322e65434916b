"""The service's background work: started in one place, failures logged, cancelled together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

# How long a cancelled task may take to end before it is cancelled again. Ending is unwinding,
# at most a round trip to the database (psycopg has the server cancel a running statement);
# a task still running after this has swallowed its cancellation and gone on.
CANCEL_AGAIN_AFTER = 1.0


class Tasks:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._done)

    async def cancel_all(self) -> None:
        """Cancel every task, those started meanwhile too, until none runs.

        Once is not always enough: on Python 3.11, ``asyncio.wait_for`` returns normally when
        the cancellation comes just as what it waits for is done (CPython gh-86296, fixed in
        3.12 only), and psycopg_pool waits for a free connection with it. Such a task goes on
        to its next wait (a polling loop's sleep), and without a second cancellation the
        process would never stop."""
        while self._running:
            tasks = list(self._running)
            for task in tasks:
                task.cancel()
            _, going_on = await asyncio.wait(tasks, timeout=CANCEL_AGAIN_AFTER)
            for task in going_on:
                log.warning("%s still runs after its cancellation: cancelling it again", task)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        # A failed task's exception is otherwise reported only when it is garbage-collected.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task %s failed", task.get_coro(), exc_info=exc)
