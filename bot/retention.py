"""``BOT_RETENTION_DAYS``: prompts, results and user images older than that are pruned, at start
and then daily. Pruned jobs keep their row, marked, so a button on one can say it expired.

The store prunes in small batches, each its own short transaction: the bot's own writes get the
store between any two, so pruning a large backlog never holds up a job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from bot.core.cancellation import cancel_until_done

DAY = 86_400.0
BATCH = 500  # jobs (or cached assets, or parked values) per transaction

log = logging.getLogger(__name__)


class Prunable(Protocol):
    async def prune(self, older_than: float, *, limit: int) -> int: ...


async def prune(store: Prunable, days: int) -> int:
    """Prune everything older than ``days``, batch by batch; the rows pruned."""
    total = 0
    while pruned := await store.prune(days * DAY, limit=BATCH):
        total += pruned
        await asyncio.sleep(0)  # writers waiting for the store go first
    return total


@asynccontextmanager
async def pruning(store: Prunable, days: int, *, every: float = DAY) -> AsyncIterator[None]:
    """Prune now and every ``every`` seconds while the block runs."""
    task = asyncio.create_task(_prune_forever(store, days, every), name="retention")
    try:
        yield
    finally:
        # psycopg_pool waits for a connection with wait_for, which may swallow a cancellation.
        await cancel_until_done([task])


async def _prune_forever(store: Prunable, days: int, every: float) -> None:
    while True:
        try:
            pruned = await prune(store, days)
        except Exception:  # the bot serves on; the next round tries again
            log.exception("pruning data older than %d days failed", days)
        else:
            log.info("pruned %d rows older than %d days (BOT_RETENTION_DAYS)", pruned, days)
        await asyncio.sleep(every)
