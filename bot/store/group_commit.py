"""Group commit for SQLite's one writer: writes of one kind that come while the writer is busy
wait together and go in its next transaction, so a burst of them (twenty jobs answered at once,
twenty more started in their slots) costs the writer a few transactions, not one each, and the
last of them doesn't queue behind all the others' round trips to the database thread.

Each caller awaits its own outcome, told only once the transaction holding it is committed
(durability as before: nothing is announced before its commit). A transaction that fails fails
all it held; each caller's retry (``Delivery.stored``) then goes in a later one.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

import aiosqlite

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

Transaction = Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
# Writes the items in the open transaction: their outcomes, in their order.
Write = Callable[[aiosqlite.Connection, list[Item]], Awaitable[list[Outcome]]]


class GroupCommit(Generic[Item, Outcome]):
    """``await group(item)``: ``item`` written with those waiting beside it; its outcome."""

    def __init__(self, transaction: Transaction, write: Write[Item, Outcome]) -> None:
        self._transaction = transaction
        self._write = write
        self._waiting: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Outcome:
        outcome = asyncio.get_running_loop().create_future()
        self._waiting.append((item, outcome))
        if self._writer is None or self._writer.done():
            # A context of its own: its log lines are about no one caller's job.
            self._writer = asyncio.create_task(self._drain(), context=contextvars.Context())
        # Shielded: a caller that goes doesn't take the others' write (or its own) with it.
        return await asyncio.shield(outcome)

    async def wait_closed(self) -> None:
        """Until the writes asked for are done (the store is closing)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _drain(self) -> None:
        while self._waiting:
            batch: list[tuple[Item, asyncio.Future[Outcome]]] = []
            try:
                async with self._transaction() as db:
                    # Taken once the writer is ours: those that came while it was busy go too.
                    batch, self._waiting = self._waiting, []
                    outcomes = await self._write(db, [item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch if isinstance(exc, Exception) else batch + self._waiting:
                    _settle(future, exc)
                if not isinstance(exc, Exception):
                    self._waiting = []
                    raise
                continue
            for (_, future), result in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(result)


def _settle(future: asyncio.Future[Outcome], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)
    # Its caller may be gone: the outcome is seen here at least.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
