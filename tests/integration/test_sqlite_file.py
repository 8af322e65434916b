"""Opening the SQLite file: a store that won't open says so and leaves nothing running."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import aiosqlite
import pytest

from bot.store.sqlite_file import SqliteDatabase, connect, rows


def store_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


async def test_a_store_that_wont_open_leaves_no_thread_behind(tmp_path: Path) -> None:
    # The process exits (status 2) right after this error: aiosqlite's thread, still closing,
    # would report to an event loop closed by then, and print a traceback after the error.
    (tmp_path / "bot.sqlite3").mkdir()
    before = store_threads()
    with pytest.raises(sqlite3.OperationalError):
        await connect(tmp_path / "bot.sqlite3")
    assert store_threads() == before


async def test_writes_that_come_while_the_writer_is_busy_share_its_next_transaction(
    tmp_path: Path,
) -> None:
    batches: list[list[int]] = []

    async def write(db: aiosqlite.Connection, items: list[int]) -> list[int]:
        batches.append(items)
        if 13 in items:
            await db.execute("INSERT INTO no_such_table VALUES (1)")
        await db.executemany(
            "INSERT INTO pending (kind, key, value, created_at) VALUES ('test', ?, '', 0)",
            [(str(i),) for i in items],
        )
        return [item * 2 for item in items]

    async with SqliteDatabase(tmp_path / "bot.sqlite3") as database:
        group = database.grouped(write)
        assert await asyncio.gather(*(group(item) for item in (1, 2, 3))) == [2, 4, 6]
        assert batches == [[1, 2, 3]]  # one transaction for the three
        # A failed transaction fails all it held, and those after it still go.
        failing = asyncio.gather(group(12), group(13))
        with pytest.raises(sqlite3.OperationalError):
            await failing
        assert await group(14) == 28
        kept = await rows(database.reader, "SELECT key FROM pending WHERE kind = 'test'")
    assert sorted(row[0] for row in kept) == ["1", "14", "2", "3"]


async def test_kinds_of_writes_share_a_transaction_and_one_failing_fails_only_its_own(
    tmp_path: Path,
) -> None:
    seen_meanwhile: list[list[str]] = []

    async with SqliteDatabase(tmp_path / "bot.sqlite3") as database:

        async def starts(db: aiosqlite.Connection, items: list[str]) -> list[str]:
            await db.executemany(
                "INSERT INTO pending (kind, key, value, created_at) VALUES ('test', ?, '', 0)",
                [(item,) for item in items],
            )
            return items

        async def broken(db: aiosqlite.Connection, items: list[str]) -> list[str]:
            # Not committed yet when the other kind's write is done: the same transaction.
            found = await rows(database.reader, "SELECT key FROM pending WHERE kind = 'test'")
            seen_meanwhile.append([row[0] for row in found])
            await db.execute(
                "INSERT INTO pending (kind, key, value, created_at) VALUES ('x', 'b', '', 0)"
            )
            await db.execute("INSERT INTO no_such_table VALUES (1)")
            return items

        first, second = database.grouped(starts), database.grouped(broken)
        outcomes = await asyncio.gather(first("a"), second("b"), return_exceptions=True)
        assert outcomes[0] == "a"
        assert isinstance(outcomes[1], sqlite3.OperationalError)
        assert seen_meanwhile == [[]]
        kept = await rows(database.reader, "SELECT kind, key FROM pending")
    assert [tuple(row) for row in kept] == [("test", "a")]  # the failed kind's write is undone
