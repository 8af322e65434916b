"""Opening the SQLite file: a store that won't open says so and leaves nothing running."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bot.store.sqlite_file import connect


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
