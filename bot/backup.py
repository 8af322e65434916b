"""``python -m bot backup PATH``: a consistent copy of the SQLite store, while the bot runs.

Copying the file with ``cp`` is not safe: in WAL mode recent commits live in ``-wal`` beside it,
and a copy taken mid-write is torn. SQLite's online backup API copies one read snapshot whole
(in WAL mode readers never block the bot's writes). The copy is written to ``PATH.tmp``, checked
(``PRAGMA integrity_check``, a schema version), made one self-contained file (rollback
journal, no ``-wal``), and only then renamed to PATH: a PATH that exists is always a whole backup.

PostgreSQL has its own tool for this (pg_dump, a consistent snapshot too): the command says so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from bot.store import StoreError, StoreUrl


def backup(url: StoreUrl, target: Path, *, force: bool = False) -> str:
    """Copy the store at ``url`` to ``target``; one line saying what was copied."""
    if url.kind != "sqlite":
        raise StoreError(
            f"{url} is PostgreSQL: back it up with pg_dump, e.g. "
            f"pg_dump --format=custom --file={target} 'postgresql://…' (a consistent snapshot "
            "while the bot runs; pg_restore puts it back)"
        )
    source = url.path
    if not source.is_file():
        raise StoreError(f"there is no SQLite store at {source}: check DATABASE_URL")
    if target.exists() and not force:
        raise StoreError(f"{target} exists: choose another PATH, or add --force to replace it")
    if target.exists() and target.resolve() == source.resolve():
        raise StoreError(f"{target} is the store itself: choose another PATH")
    if not target.parent.is_dir():
        raise StoreError(f"{target.parent} is not a folder: create it, or choose another PATH")
    partial = target.with_name(target.name + ".tmp")
    started = time.monotonic()
    try:
        version = _copy(source, partial)
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise StoreError(f"the backup failed, {target} is unchanged: {exc}") from None
    except OSError as exc:
        raise StoreError(
            f"the backup failed, {target} is unchanged: {exc.strerror}: {exc.filename}"
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    size = target.stat().st_size / 2**20
    return (
        f"backed up {source} to {target}: {size:.1f} MiB, schema {version}, checked, in "
        f"{time.monotonic() - started:.1f} s"
    )


def _copy(source: Path, partial: Path) -> int:
    """Back up ``source`` into a fresh ``partial``, check it; its schema version."""
    partial.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(partial)) as copy,
    ):
        src.backup(copy)  # one step: one snapshot, however much the bot writes meanwhile
        copy.execute("PRAGMA journal_mode=DELETE")
        [(verdict,)] = copy.execute("PRAGMA integrity_check(1)").fetchall()
        if verdict != "ok":
            raise StoreError(f"the copy is damaged ({verdict}): the store itself may be")
        [(version,)] = copy.execute("PRAGMA user_version").fetchall()
    if not version:
        raise StoreError(f"{source} is not a bot store (no schema version): check DATABASE_URL")
    return int(version)
