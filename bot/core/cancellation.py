"""Stopping tasks for good: a cancelled task may swallow its cancellation and go on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

log = logging.getLogger(__name__)

# How long a cancelled task may take to end before it is cancelled again. Ending is unwinding,
# at most a round trip to the database (psycopg has the server cancel a running statement) or
# to a platform; a task still running after this has swallowed its cancellation and gone on.
CANCEL_AGAIN_AFTER = 1.0


async def cancel_until_done(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` until none runs, again every ``CANCEL_AGAIN_AFTER`` seconds; those
    added to ``tasks`` meanwhile (a set the caller keeps) are cancelled too.

    Once is not always enough: on Python 3.11, ``asyncio.wait_for`` returns normally when the
    cancellation comes just as what it waits for is done (CPython gh-86296, fixed in 3.12
    only), and psycopg_pool, discord.py and python-telegram-bot wait with it. Such a task goes
    on to its next wait, and without a second cancellation the process would never stop.

    A cancellation of the caller meanwhile (a signal while the service closes) is raised once
    ``tasks`` are done: given at once, it would leave them to asyncio.run's one cancellation."""
    interrupted: asyncio.CancelledError | None = None
    while going_on := [task for task in tasks if not task.done()]:
        for task in going_on:
            task.cancel()
        try:
            _, still = await asyncio.wait(going_on, timeout=CANCEL_AGAIN_AFTER)
        except asyncio.CancelledError as exc:
            interrupted = exc
            continue
        for task in still:
            log.warning("%s still runs after its cancellation: cancelling it again", task)
    if interrupted is not None:
        raise interrupted
