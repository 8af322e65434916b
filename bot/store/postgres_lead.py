"""Which of the processes sharing one PostgreSQL leads (``bot.core.ports.Leadership``).

The lead is a session advisory lock held on a connection of its own, so it ends with the
session: at once when the process dies (kill -9 closes its socket), and after ``lease`` seconds
when it hangs, is cut off or paused, because that session runs with ``idle_session_timeout`` =
``lease`` and only the leader's heartbeat, every third of it, keeps it alive. The server, the one
judge every process trusts, ends the lease; no clock of ours decides. The others wait in
``pg_advisory_lock`` and get the lock the moment it is free. The leader also gives up on its own
as soon as a heartbeat has not come back within a third of the lease, before the server can have
ended its session, so it stops before another can start.

``holds`` is the leader's own check, before it stores or tells a result: two thirds of the lease
without a renewal (a pause, a starved loop) and it stops, though the server may not have ended
its session yet: a process thawed after a long pause finishes nothing the next leader runs.

The same session LISTENs for ``add_job``'s wake-ups (a job held until its place is told first
says so), ``told``'s and ``cancel_job``'s: each carries ``origin:job_id``. Meanwhile the others
LISTEN, on a session of their own, for ``cancel_job``'s and ``mark_delivered``'s: the end of a
job whose prompt one of them heard is told by another.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

import psycopg

from bot.core.ports import LeaseLost
from bot.store.postgres import PostgresStore
from bot.store.postgres_server import (
    ANSWERED_CHANNEL,
    ENDED_CHANNEL,
    HELD_CHANNEL,
    JOBS_CHANNEL,
    TOLD_CHANNEL,
    Connection,
    reason,
)

log = logging.getLogger(__name__)

# pg_advisory_lock key of the lead.
LEADER_LOCK = 0x6E62_6C64
LEASE_SECONDS = 10.0


class PostgresLeader:
    """Implements ``Leadership`` on ``store``'s database."""

    def __init__(self, store: PostgresStore, *, lease: float = LEASE_SECONDS) -> None:
        self._store = store
        self._lease = lease
        self._session: Connection | None = None
        self._renewed = -math.inf  # when the last renewal that the server took was sent

    async def try_lead(self) -> bool:
        session = await self._store.connect()
        try:
            cur = await session.execute("SELECT pg_try_advisory_lock(%s) AS ok", (LEADER_LOCK,))
            row = await cur.fetchone()
            if row is not None and row["ok"]:
                await self._begin(session)
                return True
        except BaseException:
            await session.close()
            raise
        await session.close()
        return False

    async def lead(self) -> None:
        while True:
            try:
                session = await self._store.connect()
            except psycopg.Error as exc:
                log.warning("waiting for the lead: %s", reason(exc, self._store.url))
                await asyncio.sleep(self._lease / 3)
                continue
            try:
                # Waits in the server until the leader's session ends.
                await session.execute("SELECT pg_advisory_lock(%s)", (LEADER_LOCK,))
                await self._begin(session)
                return
            except psycopg.Error as exc:
                log.warning("waiting for the lead: %s", reason(exc, self._store.url))
                await session.close()
            except BaseException:
                await session.close()
                raise

    async def _begin(self, session: Connection) -> None:
        self._renewed = time.monotonic()
        await session.execute(
            "SELECT set_config('idle_session_timeout', %s, false)",
            (f"{round(self._lease * 1000)}ms",),
        )
        for channel in (JOBS_CHANNEL, ENDED_CHANNEL, HELD_CHANNEL, TOLD_CHANNEL):
            await session.execute(f"LISTEN {channel}")
        self._session = session

    async def hold(
        self,
        added: Callable[[int, bool], None],
        ended: Callable[[int], None],
        told: Callable[[int], None],
    ) -> None:
        session = self._session
        assert session is not None, "hold() comes after try_lead() or lead()"
        held: set[int] = set()  # noted held: their JOBS_CHANNEL note is next (same commit)
        heard = {ENDED_CHANNEL: ended, TOLD_CHANNEL: told}
        beat = self._lease / 3
        try:
            while True:
                async for note in session.notifies(timeout=beat):
                    if (job_id := self._elsewhere(note.payload)) is None:
                        continue  # this process did its part already
                    if note.channel == HELD_CHANNEL:
                        held.add(job_id)
                    elif note.channel == JOBS_CHANNEL:
                        added(job_id, job_id in held)
                        held.discard(job_id)
                    else:
                        heard[note.channel](job_id)
                sent = time.monotonic()
                async with asyncio.timeout(beat):
                    await session.execute("SELECT 1")  # the heartbeat that renews the lease
                self._renewed = sent
        except (psycopg.Error, TimeoutError) as exc:
            why = reason(exc, self._store.url) if str(exc) else "the heartbeat took too long"
            raise LeaseLost(why) from None
        finally:
            self._session, self._renewed = None, -math.inf
            await session.close()

    async def follow(self, ended: Callable[[int], None]) -> None:
        while True:
            try:
                session = await self._store.connect()
            except psycopg.Error as exc:
                log.warning("not hearing of jobs ended elsewhere: %s", reason(exc, self._store.url))
                await asyncio.sleep(self._lease / 3)
                continue
            try:
                await session.execute(f"LISTEN {ENDED_CHANNEL}")
                await session.execute(f"LISTEN {ANSWERED_CHANNEL}")
                async for note in session.notifies():
                    if (job_id := self._elsewhere(note.payload)) is not None:
                        ended(job_id)
            except psycopg.Error as exc:
                log.warning("not hearing of jobs ended elsewhere: %s", reason(exc, self._store.url))
            finally:
                await session.close()
            await asyncio.sleep(self._lease / 3)

    def _elsewhere(self, payload: str) -> int | None:
        """The job a note (``origin:job_id``) is about, unless this process sent it (it did its
        part already)."""
        origin, _, job_id = payload.partition(":")
        return int(job_id) if origin != self._store.origin else None

    def holds(self) -> bool:
        # Renewals go every third of the lease; two thirds without one: it may be running out.
        return time.monotonic() - self._renewed < self._lease * 2 / 3
