"""Group commit for SQLite's one writer: the grouped writes that come while the writer is busy
wait together, whatever their kind, and go in its next transaction, so a burst of them (twenty
jobs answered at once, twenty more started in their slots, the answers before them delivered)
costs the writer a transaction or two, not one each, and the last of them doesn't queue behind
all the others' round trips to the database thread.

Each caller awaits its own outcome, told only once the transaction holding it is committed
(durability as before: nothing is announced before its commit). Kinds sharing a transaction
each write within a savepoint of their own: one kind's failed write fails that kind's callers
only, and the others' still commit. A transaction that fails fails all it held; each caller's
retry (``Delivery.stored``) then goes in a later one.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

import aiosqlite

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

Transaction = Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
# Writes the items in the open transaction: their outcomes, in their order.
Write = Callable[[aiosqlite.Connection, list[Item]], Awaitable[list[Outcome]]]
_Waiting = list[tuple[Any, "asyncio.Future[Any]"]]


class GroupCommit(Generic[Item, Outcome]):
    """One kind of grouped write: ``await group(item)``, ``item`` written with those waiting
    beside it; its outcome."""

    def __init__(self, writer: Writer, write: Write[Item, Outcome]) -> None:
        self._writer = writer
        self.write = write

    async def __call__(self, item: Item) -> Outcome:
        outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._writer.add(self, item, outcome)
        # Shielded: a caller that goes doesn't take the others' write (or its own) with it.
        return await asyncio.shield(outcome)


class Writer:
    """The grouped writes of one database, drained a transaction at a time."""

    def __init__(self, transaction: Transaction) -> None:
        self._transaction = transaction
        self._waiting: dict[GroupCommit[Any, Any], _Waiting] = {}
        self._task: asyncio.Task[None] | None = None

    def grouped(self, write: Write[Item, Outcome]) -> GroupCommit[Item, Outcome]:
        """A kind of write that shares this writer's transactions."""
        return GroupCommit(self, write)

    def add(self, group: GroupCommit[Any, Any], item: Any, outcome: asyncio.Future[Any]) -> None:
        self._waiting.setdefault(group, []).append((item, outcome))
        if self._task is None or self._task.done():
            # A context of its own: its log lines are about no one caller's job.
            self._task = asyncio.create_task(self._drain(), context=contextvars.Context())

    async def wait_closed(self) -> None:
        """Until the writes asked for are done (the store is closing)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _drain(self) -> None:
        while self._waiting:
            batch: dict[GroupCommit[Any, Any], _Waiting] = {}
            written: list[tuple[_Waiting, list[Any] | Exception]] = []
            try:
                async with self._transaction() as db:
                    # Taken once the writer is ours: those that came while it was busy go too.
                    batch, self._waiting = self._waiting, {}
                    alone = len(batch) == 1
                    for group, waiting in batch.items():
                        items = [item for item, _ in waiting]
                        written.append((waiting, await _write(db, group, items, alone)))
            except BaseException as exc:
                held = [f for waiting in batch.values() for _, f in waiting]
                if not isinstance(exc, Exception):
                    held += [f for waiting in self._waiting.values() for _, f in waiting]
                    self._waiting = {}
                for future in held:
                    _settle(future, exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for waiting, outcomes in written:
                if isinstance(outcomes, Exception):
                    for _, future in waiting:
                        _settle(future, outcomes)
                    continue
                for (_, future), result in zip(waiting, outcomes, strict=True):
                    if not future.done():
                        future.set_result(result)


async def _write(
    db: aiosqlite.Connection, group: GroupCommit[Any, Any], items: list[Any], alone: bool
) -> list[Any] | Exception:
    """``group``'s items written in the open transaction: their outcomes, or (beside other
    kinds) the exception that undid this kind's write alone."""
    if alone:
        return await group.write(db, items)
    await db.execute("SAVEPOINT grouped")
    try:
        outcomes = await group.write(db, items)
    except Exception as exc:
        # Should the transaction itself be gone (SQLite rolls back on a full disk), this
        # raises, and the whole transaction fails as one.
        await db.execute("ROLLBACK TO grouped")
        await db.execute("RELEASE grouped")
        return exc
    await db.execute("RELEASE grouped")
    return outcomes


def _settle(future: asyncio.Future[Any], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)
    # Its caller may be gone: the outcome is seen here at least.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
