"""A person's caps (their linked accounts together) checked where their job is stored, inside
``add_job``'s transaction, on both stores: processes sharing a store can't pass a cap together
(``bot.core.ports.Caps``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiosqlite

from bot.core.people import UserKey
from bot.core.ports import CapReached, Caps

if TYPE_CHECKING:
    from bot.store.postgres_server import Connection

# pg_advisory_xact_lock key: a link or unlink (which changes whose person an account is) takes it
# alone, each cap check on PostgreSQL shares it, so that the person's key a check locks can't
# change under it.
LINKS_LOCK = 0x6E62_6C6B
# The person's waiting jobs, and the images they asked for on the day, on any of their accounts
# (the user's, and every account linked to theirs by ``/link``): the service's caps are the
# person's (``quotas``).
_COUNTS = (
    "WITH person (platform, user_id) AS (SELECT {p}, {u} UNION SELECT platform, user_id "
    "FROM identities WHERE identity = "
    "(SELECT identity FROM identities WHERE platform = {p} AND user_id = {u})) "
    "SELECT (SELECT count(*) FROM jobs JOIN person USING (platform, user_id) "
    "WHERE state = 'queued') AS queued, (SELECT coalesce(sum(images), 0) FROM usage "
    "JOIN person USING (platform, user_id) WHERE day = {d}) AS images"
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
    # One person's submissions, on any of their accounts, from any process, take turns here
    # (until the commit); then the counts, read after the turn, see what the others stored.
    # Linked accounts share the identity's key; an account alone is its own.
    place = {"p": user.platform, "u": user.user_id, "d": day, "alone": str(user)}
    # First a turn beside every other check: no link or unlink is under way until the commit,
    # so the key below stays the person's (two checks under two keys would not see each other).
    await db.execute("SELECT pg_advisory_xact_lock_shared(%s)", (LINKS_LOCK,))
    await db.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('caps:' || coalesce((SELECT identity "
        "FROM identities WHERE platform = %(p)s AND user_id = %(u)s), %(alone)s), 0))",
        place,
    )
    cur = await db.execute(_COUNTS.format(p="%(p)s", u="%(u)s", d="%(d)s"), place)
    row = await cur.fetchone()
    assert row is not None
    _judge(int(row["queued"]), int(row["images"]), count, caps)


def _judge(queued: int, images: int, count: int, caps: Caps) -> None:
    if queued >= caps.queued:
        raise CapReached(queued=True)
    if caps.images is not None and images + count > caps.images:
        raise CapReached(queued=False)
