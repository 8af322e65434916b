"""A user's caps checked where their job is stored, inside ``add_job``'s transaction, on both
stores: processes sharing a store can't pass a cap together (``bot.core.ports.Caps``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiosqlite

from bot.core.people import UserKey
from bot.core.ports import CapReached, Caps

if TYPE_CHECKING:
    from bot.store.postgres_server import Connection

# The user's waiting jobs, and the images they asked for on the day.
_COUNTS = (
    "SELECT (SELECT count(*) FROM jobs WHERE platform = {p} AND user_id = {u} "
    "AND state = 'queued') AS queued, (SELECT coalesce(sum(images), 0) FROM usage "
    "WHERE platform = {p} AND user_id = {u} AND day = {d}) AS images"
)


async def check_sqlite(
    db: aiosqlite.Connection, user: UserKey, day: str, count: int, caps: Caps | None
) -> None:
    """Under ``BEGIN IMMEDIATE``: writers, in any process, take turns already."""
    if caps is None:
        return
    sql = _COUNTS.format(p=":p", u=":u", d=":d")
    async with db.execute(sql, {"p": user.platform, "u": user.user_id, "d": day}) as cur:
        row = await cur.fetchone()
    assert row is not None
    _judge(int(row[0]), int(row[1]), count, caps)


async def check_postgres(
    db: Connection, user: UserKey, day: str, count: int, caps: Caps | None
) -> None:
    if caps is None:
        return
    # One user's submissions, from any process, take turns here (until the commit).
    await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"caps:{user}",))
    sql = _COUNTS.format(p="%(p)s", u="%(u)s", d="%(d)s")
    cur = await db.execute(sql, {"p": user.platform, "u": user.user_id, "d": day})
    row = await cur.fetchone()
    assert row is not None
    _judge(int(row["queued"]), int(row["images"]), count, caps)


def _judge(queued: int, images: int, count: int, caps: Caps) -> None:
    if queued >= caps.queued:
        raise CapReached(queued=True)
    if caps.images is not None and images + count > caps.images:
        raise CapReached(queued=False)
