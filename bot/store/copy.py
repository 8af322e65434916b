"""``python -m bot migrate-store``: copy a SQLite store, whole, into an empty PostgreSQL one.

Rows keep their ids and states: buttons already posted carry job ids, and queued jobs resume
where they were. Each PostgreSQL id sequence starts past the highest id SQLite ever gave
(AUTOINCREMENT remembers the ids of deleted rows too), so no new job takes an old button's
number. Both stores are first brought to the same schema version, and the tables and columns
are read from the schema itself, so a migration step written for both dialects needs no change
here. The copy is one PostgreSQL transaction, so it lands whole or not at all and can simply be
run again; SQLite is read in one read transaction, a consistent snapshot even while a bot runs
(but stop the bot first: what it accepts after the snapshot is not copied).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from bot.store.errors import StoreError
from bot.store.postgres import PostgresStore
from bot.store.postgres_server import Connection, reason
from bot.store.sqlite import SqliteStore
from bot.store.url import StoreUrl

# Rows per INSERT batch: images and user uploads may hold a few MB each.
BATCH = 200
# Copied first: most other tables refer to it.
FIRST = "jobs"


async def copy_store(source: StoreUrl, target: StoreUrl, say: Callable[[str], None]) -> None:
    """Copy every row of the SQLite store ``source`` into the empty PostgreSQL ``target``."""
    if source.kind != "sqlite" or target.kind != "postgresql":
        raise StoreError("migrate-store copies a sqlite:/// store into a postgresql:// one")
    if not source.path.is_file():
        raise StoreError(f"there is no SQLite store at {source.path}")
    try:
        await _copy(source, target, say)
    except (psycopg.Error, sqlite3.Error) as exc:
        why = reason(exc, target)
        raise StoreError(f"the copy failed and left {target} as it was: {why}") from None
    say(f"copied {source.path} into {target}")


async def _copy(source: StoreUrl, target: StoreUrl, say: Callable[[str], None]) -> None:
    async with SqliteStore(source.path) as sqlite, PostgresStore(target) as postgres:
        tables = await _tables(sqlite)
        async with postgres.pool.connection() as db, db.transaction():
            times = await _check_target(db, tables, target)
            await sqlite.reader.execute("BEGIN")
            try:
                for table, columns in tables.items():
                    copied = await _copy_table(sqlite, db, table, columns, times[table])
                    say(f"{table}: {copied} rows")
                for table in (t for t, columns in tables.items() if "id" in columns):
                    if (next_id := await _continue_ids(sqlite, db, table)) is not None:
                        say(f"{table}: new ids start at {next_id}")
            finally:
                await sqlite.reader.execute("COMMIT")


async def _tables(sqlite: SqliteStore) -> dict[str, list[str]]:
    """The store's tables (``jobs`` first, and each after those it refers to: PostgreSQL checks
    a foreign key row by row) and their columns, as SQLite has them."""
    async with sqlite.reader.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name <> ?, name",
        (FIRST,),
    ) as cur:
        names = [str(row[0]) async for row in cur]
    refers: dict[str, set[str]] = {}
    for name in names:
        sql = 'SELECT "table" FROM pragma_foreign_key_list(?)'
        async with sqlite.reader.execute(sql, (name,)) as cur:
            refers[name] = {str(row[0]) async for row in cur} - {name}
    ordered: list[str] = []
    while names:
        ready = next(n for n in names if refers[n] <= set(ordered))
        ordered.append(ready)
        names.remove(ready)
    tables = {}
    for name in ordered:
        async with sqlite.reader.execute("SELECT name FROM pragma_table_info(?)", (name,)) as cur:
            tables[name] = [str(row[0]) async for row in cur]
    return tables


async def _check_target(
    db: Connection, tables: dict[str, list[str]], target: StoreUrl
) -> dict[str, set[str]]:
    """Refuse a target that differs in shape or holds rows; its ``timestamptz`` columns."""
    cur = await db.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
        (list(tables),),
    )
    shape: dict[str, dict[str, str]] = {}
    for row in await cur.fetchall():
        shape.setdefault(row["table_name"], {})[row["column_name"]] = row["data_type"]
    for table, columns in tables.items():
        if sorted(shape.get(table, {})) != sorted(columns):
            raise StoreError(f"{target} has no table {table} shaped as in SQLite: not a bot store")
        used = await db.execute(f"SELECT EXISTS (SELECT 1 FROM {table}) AS used")  # noqa: S608
        if (await used.fetchone() or {}).get("used"):
            raise StoreError(f"{target} already holds {table}: copy into an empty database only")
    return {
        table: {c for c, kind in shape[table].items() if kind.startswith("timestamp")}
        for table in tables
    }


async def _copy_table(
    sqlite: SqliteStore, db: Connection, table: str, columns: Sequence[str], times: set[str]
) -> int:
    # Names come from the schema itself, not from any user; SQLite keeps epoch seconds.
    values = ", ".join("to_timestamp(%s)" if c in times else "%s" for c in columns)
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"  # noqa: S608
    select = f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid"  # noqa: S608
    copied = 0
    async with sqlite.reader.execute(select) as cur, db.cursor() as many:
        while batch := [[_value(v) for v in row] for row in await cur.fetchmany(BATCH)]:
            await many.executemany(insert, batch)
            copied += len(batch)
    return copied


def _value(value: Any) -> Any:
    # PostgreSQL text can't hold NUL; SQLite's can (an upstream's error text, say).
    return value.replace("\x00", "\N{REPLACEMENT CHARACTER}") if isinstance(value, str) else value


async def _continue_ids(sqlite: SqliteStore, db: Connection, table: str) -> int | None:
    """Start the table's id sequence past every id SQLite gave; None if it has none."""
    cur = await db.execute("SELECT pg_get_serial_sequence(%s, 'id') AS seq", (table,))
    row = await cur.fetchone()
    if row is None or row["seq"] is None:
        return None
    async with sqlite.reader.execute(
        f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "  # noqa: S608
        f"coalesce((SELECT max(id) FROM {table}), 0))",
        (table,),
    ) as found:
        highest = int((await found.fetchone() or (0,))[0])
    await db.execute("SELECT setval(%s, %s, false)", (row["seq"], highest + 1))
    return highest + 1
