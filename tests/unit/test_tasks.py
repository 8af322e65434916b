"""Closing the service stops every background task, also one that swallowed its cancellation
(a process that lost the lead must stop, not hang)."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import pytest

from bot.core import cancellation
from bot.core.service.tasks import Tasks


@pytest.fixture(autouse=True)
def _cancel_again_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cancellation, "CANCEL_AGAIN_AFTER", 0.01)


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped = asyncio.Event()

    async def waits() -> None:
        try:
            with contextlib.suppress(asyncio.CancelledError):  # as a library may, by mistake
                await asyncio.Event().wait()
            await asyncio.Event().wait()  # goes on, as if it had never been cancelled
        finally:
            stopped.set()

    tasks = Tasks()
    tasks.spawn(waits())
    await asyncio.sleep(0)
    async with asyncio.timeout(1):
        await tasks.cancel_all()
    assert stopped.is_set()
    assert "still runs after its cancellation: cancelling it again" in caplog.text


async def test_a_task_whose_wait_for_swallowed_its_cancellation_is_cancelled_again() -> None:
    """The real thing on Python 3.11 (gh-86296): the cancellation comes after what wait_for
    waits for has ended but before wait_for resumed, and wait_for returns its result."""
    woken = asyncio.Event()
    stopped = asyncio.Event()
    waits = 0

    async def waits_for_wake_ups() -> None:  # as psycopg_pool waits for a free connection
        nonlocal waits
        try:
            while True:
                waits += 1
                await asyncio.wait_for(woken.wait(), 10)
                woken.clear()
        finally:
            stopped.set()

    tasks = Tasks()
    tasks.spawn(waits_for_wake_ups())
    await asyncio.sleep(0)
    woken.set()
    await asyncio.sleep(0)  # the wait has ended; wait_for has not resumed yet
    async with asyncio.timeout(1):
        await tasks.cancel_all()
    assert stopped.is_set()
    # On 3.11 the first cancellation was swallowed: the task waited once more.
    assert waits == (2 if sys.version_info < (3, 12) else 1)


async def test_a_stop_cancelled_itself_still_stops_every_task_then_is_cancelled() -> None:
    """A signal while the service closes (the supervisor's SIGTERM after a lost lead) cancels
    the stop itself: it still stops what it was stopping, or asyncio.run's one last
    cancellation is all that task gets, and a task that swallows it hangs the process."""
    stopped = asyncio.Event()
    released = asyncio.Event()  # lets a task left running end, so that a failure doesn't hang

    async def swallows_twice() -> None:
        try:
            for _ in range(2):
                with contextlib.suppress(asyncio.CancelledError):
                    await released.wait()
            await released.wait()
        finally:
            stopped.set()

    tasks = Tasks()
    tasks.spawn(swallows_twice())
    await asyncio.sleep(0)
    closing = asyncio.create_task(tasks.cancel_all())
    await asyncio.sleep(0)  # the first cancellation is given (and swallowed)
    closing.cancel()
    try:
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(1):
                await closing
        assert stopped.is_set()
    finally:
        released.set()
