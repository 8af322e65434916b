"""The SQLite database file: two connections (the writer, and a reader beside it on WAL) with
their pragmas, the write transaction, migrations when it opens, and the one line an operator
reads when the file won't open. ``SqliteStore`` puts its queries on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from bot.store.errors import StoreError
from bot.store.group_commit import GroupCommit, Item, Outcome, Write, Writer
from bot.store.migrations import MIGRATIONS, check_version

log = logging.getLogger(__name__)


class SqliteDatabase:
    """One file, opened and migrated: ``async with SqliteDatabase(path)``."""

    def __init__(self, path: Path | str):
        self._path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._writer = Writer(self._transaction)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open and migrate the store; any failure is one ``StoreError`` line, nothing left open."""
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit, so BEGIN IMMEDIATE means it.
            self._db = await connect(
                self._path, "PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON"
            )
            await self._migrate()
            # Reads get their own connection (and thread): WAL lets them run beside a write, so
            # a job about to call the upstream never waits behind another job's result.
            self._reader = await connect(self._path, "PRAGMA query_only=ON")
        except BaseException as exc:
            # An open connection's worker thread would keep the process alive after the error.
            await self.close()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StoreError(f"can't open the store at {self._path}: {advice(exc)}") from exc
            raise

    def grouped(self, write: Write[Item, Outcome]) -> GroupCommit[Item, Outcome]:
        """Writes by ``write`` that come while the writer is busy, in its next transaction
        (with the other grouped kinds' that came meanwhile)."""
        return self._writer.grouped(write)

    async def close(self) -> None:
        await self._writer.wait_closed()
        for connection in (self._reader, self._db):
            if connection is not None:
                await connection.close()
        self._db = self._reader = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the SQLite store is not open")
        return self._db

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("the SQLite store is not open")
        return self._reader

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        # Coroutines share the one connection: without the lock, one's BEGIN lands inside
        # another's open transaction.
        async with self._write_lock:
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await asyncio.shield(db.execute("COMMIT"))
            except BaseException:
                # aiosqlite finishes a statement on its thread even when the awaiting task is
                # cancelled, so a BEGIN may have run after all (or a COMMIT failed): close
                # whatever is open. It runs after any such statement: the thread keeps order.
                await asyncio.shield(rollback(db))
                raise

    async def _migrate(self) -> None:
        async with self._transaction() as db:
            version = await scalar(db, "PRAGMA user_version")
            check_version(version, str(self._path))
            for target, step in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, step.sqlite.split(";")):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version={target}")
                log.info("store migrated to schema version %d", target)

    async def schema_version(self) -> int:
        return await scalar(self.reader, "PRAGMA user_version")

    async def probe_write(self) -> None:
        """Write a row and roll it back: a ``StoreError`` saying what to do if it can't."""
        async with self._write_lock:
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE")
                await db.execute(
                    "INSERT INTO pending (kind, key, value, created_at) VALUES ('probe', '', '', 0)"
                )
            except sqlite3.Error as exc:
                raise StoreError(
                    f"the store at {self._path} can't be written: {advice(exc)}"
                ) from exc
            finally:
                await asyncio.shield(rollback(db))


async def rollback(db: aiosqlite.Connection) -> None:
    with contextlib.suppress(sqlite3.OperationalError):  # "no transaction is active"
        await db.execute("ROLLBACK")


async def connect(path: Path, *pragmas: str) -> aiosqlite.Connection:
    # A file that can't be opened is found by sqlite3 itself first: aiosqlite's connect, failing,
    # leaves its thread to report its closing to the event loop later (aiosqlite 0.22
    # ``Connection._connect`` → ``stop()``, unawaited), and the process that exits at once on
    # this error would meet that report with its loop closed: a traceback after the error line.
    await asyncio.to_thread(_opens, path)
    connection = await aiosqlite.connect(path, isolation_level=None)
    connection.row_factory = aiosqlite.Row
    try:
        # The first statement is where a file that isn't a database (or can't be written) says so.
        for pragma in ("PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=5000", *pragmas):
            await connection.execute(pragma)
    except BaseException:
        await connection.close()
        raise
    return connection


def _opens(path: Path) -> None:
    sqlite3.connect(path).close()


_DAMAGED = (
    "it is not a SQLite database, or it is damaged: restore it from a backup, or move it away "
    "to start an empty one"
)
_READ_ONLY = (
    "it is read-only: make the file and its folder writable for this user, or set DATABASE_URL "
    "to a place that is"
)
# What the operator can do about a store that won't open, by SQLite's primary result code.
_ADVICE = {
    sqlite3.SQLITE_NOTADB: _DAMAGED,
    sqlite3.SQLITE_CORRUPT: _DAMAGED,
    sqlite3.SQLITE_READONLY: _READ_ONLY,
    sqlite3.SQLITE_PERM: _READ_ONLY,
    sqlite3.SQLITE_CANTOPEN: (
        "DATABASE_URL must name a file (not a folder) in a folder this user may write to"
    ),
    sqlite3.SQLITE_BUSY: (
        "another process holds it locked: stop that one, or give this one its own DATABASE_URL"
    ),
    sqlite3.SQLITE_FULL: "the disk is full",
}


def advice(exc: sqlite3.Error | OSError) -> str:
    """Why the store didn't open, and what to do."""
    if isinstance(exc, OSError):  # creating its folder
        return f"its folder can't be made ({exc.strerror}: {exc.filename}): set DATABASE_URL"
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # an extended code holds the primary one
    return _ADVICE.get(code, f"{exc}: check the file, its folder and the disk")


async def one(
    db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
) -> aiosqlite.Row | None:
    found = await rows(db, sql, params)
    return found[0] if found else None


async def rows(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Every row, read in one go. On the reader, a statement stepped across awaits keeps its
    snapshot open for every other read on that connection meanwhile: they would miss what the
    writer committed since (a job just stored, read back as missing)."""
    return list(await db.execute_fetchall(sql, params))


async def scalar(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> int:
    row = await one(db, sql, params)
    if row is None:
        raise LookupError(sql)
    return int(row[0])
