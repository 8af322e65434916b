"""The PostgreSQL server: the connection info with our defaults, migrations (one process at a
time, under an advisory lock) before the pool opens, the pool and its transactions, and the one
line an operator reads when the server can't be reached — never with the password in it.
``PostgresStore`` puts its queries on it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, LiteralString, Self

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from bot.store.errors import StoreError
from bot.store.migrations import MIGRATIONS, check_version
from bot.store.url import StoreUrl

log = logging.getLogger(__name__)

# Connections this process may hold: jobs running at once each write a few times, briefly.
POOL_SIZE = 10
# Seconds to reach the server at start, unless the URL sets connect_timeout itself.
CONNECT_TIMEOUT = 10
# pg_advisory_xact_lock key: processes starting together migrate one after the other.
MIGRATION_LOCK = 0x6E62_6D67
# The channel ``add_job`` notifies with ``origin:job_id`` (sent at commit): the leader listens
# on it, and queues the job.
JOBS_CHANNEL = "nbb_jobs"
# The channel ``cancel_job`` notifies the same way: the leader drops the job from its queue, and
# tells its end where it was asked, at once rather than at its next sweep.
ENDED_CHANNEL = "nbb_ended"
# A job stored until its place is told (a Discord prompt's first response) says so here, in
# ``add_job``'s transaction before its ``JOBS_CHANNEL`` note, and ``told`` here once it went: the
# leader holds it meanwhile (a leader that knows neither just queues it).
HELD_CHANNEL = "nbb_held"
TOLD_CHANNEL = "nbb_told"
# The channel ``mark_delivered`` notifies the same way: the followers hear that a job was
# answered, and the one that heard its prompt stops showing it waiting.
ANSWERED_CHANNEL = "nbb_answered"

Connection = AsyncConnection[DictRow]


class PostgresDatabase:
    """One database, migrated, behind a pool: ``async with PostgresDatabase(url)``."""

    def __init__(self, url: StoreUrl):
        if url.kind != "postgresql":
            raise ValueError("the PostgreSQL store needs a postgresql:// URL")
        self._url = url
        self._pool: AsyncConnectionPool[Connection] | None = None
        # Names this process in the wake-ups it sends (``JOBS_CHANNEL``), so it can skip its own.
        self.origin = secrets.token_hex(6)

    @property
    def url(self) -> StoreUrl:
        return self._url

    async def connect(self) -> Connection:
        """A connection of its own, outside the pool (for a session that must last)."""
        return await Connection.connect(_conninfo(self._url), autocommit=True, row_factory=dict_row)

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
        """Connect, migrate, then keep a pool; any failure is one ``StoreError`` line."""
        self._pool = await open_pool(self._url)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        self._pool = None

    @property
    def pool(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL store is not open")
        return self._pool

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        # On any exception (cancellation included) psycopg cancels the statement on the server
        # and rolls back; the pool then checks the connection before anyone reuses it.
        async with self.pool.connection() as db, db.transaction():
            yield db

    async def _query(self, sql: LiteralString, params: Sequence[Any] = ()) -> list[DictRow]:
        """One statement on its own (autocommit: itself a transaction); the rows it returns."""
        async with self.pool.connection() as db:
            cur = await db.execute(sql, params)
            return await cur.fetchall() if cur.description else []

    async def _one(self, sql: LiteralString, params: Sequence[Any] = ()) -> DictRow | None:
        rows = await self._query(sql, params)
        return rows[0] if rows else None

    async def schema_version(self) -> int:
        row = await self._one("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
        return int(row["v"]) if row else 0

    async def probe_write(self) -> None:
        """Write a row and roll it back: a ``StoreError`` saying what to do if it can't."""
        try:
            async with self.pool.connection() as db, db.transaction(force_rollback=True):
                await db.execute("INSERT INTO pending (kind, key, value) VALUES ('probe', '', '')")
        except psycopg.Error as exc:
            raise StoreError(
                f"the store at {self._url} can't be written: {reason(exc, self._url)}"
            ) from None


async def open_pool(url: StoreUrl) -> AsyncConnectionPool[Connection]:
    """Migrate, then open a pool of connections; any failure is one ``StoreError`` line."""
    pool: AsyncConnectionPool[Connection] | None = None
    try:
        conninfo = _conninfo(url)
        conn = await Connection.connect(conninfo, autocommit=True, row_factory=dict_row)
        async with conn:
            await _migrate(conn, url.redacted)
        pool = AsyncConnectionPool(
            conninfo,
            connection_class=Connection,
            kwargs={"autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            # A server restart must cost a reconnect, not a failed write.
            check=AsyncConnectionPool.check_connection,
            name="store",
        )
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    except psycopg.Error as exc:
        if pool is not None:
            await pool.close()
        # Dropping the chained original: no traceback may carry libpq's words unredacted.
        raise StoreError(f"can't open the store at {url}: {reason(exc, url)}") from None
    return pool


def reason(exc: BaseException, url: StoreUrl) -> str:
    """A driver's error as one line for people: libpq may quote the URL, password included."""
    lines = (line.strip() for line in url.redact(str(exc)).splitlines())
    return "; ".join(line for line in lines if line)


def _conninfo(url: StoreUrl) -> str:
    """The URL as libpq takes it, with our defaults where the URL sets none."""
    given = conninfo_to_dict(url.reveal())
    defaults: dict[str, str | int] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": "nano-banana-bot",
    }
    return make_conninfo(url.reveal(), **{k: v for k, v in defaults.items() if k not in given})


async def _migrate(db: Connection, where: str) -> None:
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await db.execute("SELECT coalesce(max(version), 0) AS version FROM schema_migrations")
        row = await cur.fetchone()
        assert row is not None
        version = int(row["version"])
        check_version(version, where)
        for target, step in enumerate(MIGRATIONS[version:], start=version + 1):
            await db.execute(step.postgres)
            await db.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (target,))
            log.info("store migrated to schema version %d", target)
