"""A store that can't be opened stops ``python -m bot`` at once: status 2 and one line.

systemd and Docker restart or report a process that exits; one that prints a traceback and then
hangs (aiosqlite's worker thread keeps it alive) looks healthy to them while serving nobody.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest


async def start_bot(cwd: Path, store: str, *, wrapper: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run ``python -m bot`` on ``store``; its status and stderr, or fail if it hangs."""
    process = await asyncio.create_subprocess_exec(
        *wrapper,
        sys.executable,
        "-m",
        "bot",
        cwd=cwd,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(Path.cwd()),
            "USEAPI_TOKEN": "test-token",
            "USEAPI_BASE_URL": "http://127.0.0.1:9/v1/google-flow",  # never reached
            "TELEGRAM_TOKEN": "123:never-used",
            "TELEGRAM_API_URL": "http://127.0.0.1:9",
            "DATABASE_URL": f"sqlite:///{store}",
        },
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("the bot hung instead of exiting") from None
    assert process.returncode is not None
    return process.returncode, err.decode()


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-3000:]
    return lines[0]


async def test_a_corrupt_store_exits_2_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "bot.sqlite3").write_bytes(b"this was never a database " * 200)
    code, err = await start_bot(tmp_path, "bot.sqlite3")
    assert code == 2
    assert one_line(err) == (
        "error: can't open the store at bot.sqlite3: it is not a SQLite database, or it is "
        "damaged: restore it from a backup, or move it away to start an empty one"
    )


async def test_a_store_from_a_newer_bot_exits_2_naming_the_file(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    code, err = await start_bot(tmp_path, "bot.sqlite3")
    assert code == 2
    line = one_line(err)
    assert line.startswith("error: bot.sqlite3 has schema version 99, newer than this bot knows")
    assert line.endswith("upgrade the bot")


async def test_a_store_path_that_is_a_folder_exits_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "bot.sqlite3").mkdir()
    code, err = await start_bot(tmp_path, "bot.sqlite3")
    assert code == 2
    assert one_line(err) == (
        "error: can't open the store at bot.sqlite3: DATABASE_URL must name a file (not a "
        "folder) in a folder this user may write to"
    )


def read_only_wrapper() -> tuple[str, ...]:
    """What makes file permissions bind the bot: nothing, or a user namespace for root."""
    if os.geteuid() != 0:
        return ()
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("root ignores file permissions and `unshare` is missing")
    # In a new user namespace root's capabilities don't reach files of the outer one.
    return (unshare, "--user")


@pytest.mark.parametrize("existing", [True, False], ids=["existing store", "new store"])
async def test_a_read_only_store_exits_2_naming_it(tmp_path: Path, existing: bool) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    if existing:
        with sqlite3.connect(folder / "bot.sqlite3") as db:
            db.execute("CREATE TABLE t (x)")
        (folder / "bot.sqlite3").chmod(0o444)
    folder.chmod(0o555)
    try:
        code, err = await start_bot(tmp_path, "state/bot.sqlite3", wrapper=read_only_wrapper())
    finally:
        folder.chmod(0o755)
    assert code == 2
    line = one_line(err)
    assert line.startswith("error: can't open the store at state/bot.sqlite3: ")
    assert "may write to" in line or "writable for this user" in line
