"""Running it for a community, as an operator meets it: ``check``, ``backup``, ``/healthz``,
stopping, and tokens a platform refuses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from bot import __main__ as cli
from bot import app
from bot.config import ConfigError, Secret, Settings
from bot.store import StoreUrl, open_store
from bot.store.migrations import LATEST
from tests.e2e.test_cli import SECRET, run_bot
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import FakeTelegramServer

TELEGRAM = "123456:telegram-secret-token"


async def test_help_describes_check_and_backup(tmp_path: Path) -> None:
    code, out, _ = await run_bot("--help", env={}, cwd=tmp_path)
    assert code == 0
    assert "check          check every configured token and provider and the store" in out
    assert "backup PATH    copy the SQLite store (DATABASE_URL) to PATH" in out
    assert "--force" in out


async def test_check_exits_0_when_all_pass_and_1_naming_what_failed(tmp_path: Path) -> None:
    async with FakeFlowServer(token=SECRET) as flow, FakeTelegramServer(token=TELEGRAM) as tg:
        env = {
            "USEAPI_TOKEN": SECRET,
            "USEAPI_BASE_URL": flow.base_url,
            "TELEGRAM_TOKEN": TELEGRAM,
            "TELEGRAM_API_URL": tg.root,
        }
        code, out, err = await run_bot("check", env=env, cwd=tmp_path)
        assert (code, err) == (0, ""), err
        assert [line[0] for line in out.splitlines()] == ["✓", "✓", "✓"]
        flow.accounts = []
        code, out, _ = await run_bot("check", env=env, cwd=tmp_path)
        assert code == 1
        assert "✗ useapi.net: no Google account is linked at useapi.net" in out
        code, out, _ = await run_bot("check", env={**env, "TELEGRAM_TOKEN": "1:nope"}, cwd=tmp_path)
        assert code == 1
        assert "✗ telegram: TELEGRAM_TOKEN was refused by Telegram" in out
        assert "nope" not in out
    code, out, err = await run_bot("check", env={}, cwd=tmp_path)
    assert code == 2
    assert "USEAPI_TOKEN is not set" in err
    assert SECRET not in out + err


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from bot.core.domain import GenerationRequest, Owner
    from bot.store import open_store

    async def main():
        async with open_store(sys.argv[1]) as store:
            print("ready", flush=True)
            n = 0
            while True:
                n += 1
                prompt = f"prompt {n} " + "x" * 2000
                request = GenerationRequest(prompt, "nano-banana-2", "1:1", 1, n)
                await store.add_job(Owner("console", str(n % 7), "chat"), request, {}, day="d")

    asyncio.run(main())
    """
)


async def test_a_backup_taken_while_another_process_writes_jobs_is_consistent(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/data/bot.sqlite3"
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        url,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(Path.cwd())},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert writer.stdout is not None
        assert await asyncio.wait_for(writer.stdout.readline(), 30) == b"ready\n"
        await asyncio.sleep(0.5)
        counts = []
        for n in range(3):
            target = tmp_path / f"copy{n}.sqlite3"
            code, out, err = await run_bot(
                "backup", str(target), env={"DATABASE_URL": url}, cwd=tmp_path
            )
            assert code == 0, err
            assert out.startswith(f"backed up {tmp_path}/data/bot.sqlite3 to {target}: ")
            names = await asyncio.to_thread(os.listdir, tmp_path)
            left = sorted(name for name in names if name.startswith(f"copy{n}"))
            assert left == [target.name]  # one self-contained file: no .tmp, no -wal
            with sqlite3.connect(target) as db:
                assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                jobs = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
                # A job and its count in usage are one transaction: a torn copy would differ.
                assert db.execute("SELECT sum(jobs) FROM usage").fetchone()[0] == jobs
            counts.append(jobs)
            await asyncio.sleep(0.2)
        assert counts == sorted(counts)
        assert counts[-1] > counts[0] > 0  # the writer wrote all along
        async with open_store(f"sqlite:///{target}") as copy:  # the bot opens it as it is
            job = await copy.get_job(counts[-1])
            assert job is not None
            assert job.request.seed == counts[-1]  # type: ignore[union-attr]
    finally:
        writer.kill()
        await writer.wait()


async def test_backup_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "sqlite:///data/bot.sqlite3"}
    async with open_store(f"sqlite:///{tmp_path}/data/bot.sqlite3"):
        pass
    target = tmp_path / "backup.sqlite3"
    target.write_text("last week's backup")
    code, _, err = await run_bot("backup", str(target), env=env, cwd=tmp_path)
    assert code == 2
    assert (
        err.strip() == f"error: {target} exists: choose another PATH, or add --force to replace it"
    )
    assert target.read_text() == "last week's backup"
    code, out, err = await run_bot("backup", str(target), "--force", env=env, cwd=tmp_path)
    assert code == 0, err
    assert f"schema {LATEST}, checked" in out
    with sqlite3.connect(target) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (LATEST,)


async def test_backup_says_what_to_do_for_postgresql_and_a_missing_store(tmp_path: Path) -> None:
    url = "postgresql://bot:s3cr3t-x@db.internal/bot"
    code, out, err = await run_bot("backup", "b.dump", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err.startswith(
        "error: postgresql://bot:***@db.internal/bot is PostgreSQL: back it up with pg_dump"
    )
    assert "s3cr3t-x" not in err
    code, _, err = await run_bot("backup", "b.sqlite3", env={}, cwd=tmp_path)
    assert code == 2
    assert err.strip() == "error: there is no SQLite store at data/bot.sqlite3: check DATABASE_URL"
    code, _, err = await run_bot("console", "b.sqlite3", env={}, cwd=tmp_path)
    assert code == 2
    assert "backup takes a PATH" in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_console_stops_on_sigterm_while_it_waits_for_input(tmp_path: Path) -> None:
    port = free_port()
    async with FakeFlowServer(token=SECRET) as flow:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "console",
            cwd=tmp_path,
            env={
                "PATH": os.environ["PATH"],
                "PYTHONPATH": str(Path.cwd()),
                "USEAPI_TOKEN": SECRET,
                "USEAPI_BASE_URL": flow.base_url,
                "BOT_HTTP_LISTEN": f"127.0.0.1:{port}",
            },
            stdin=asyncio.subprocess.PIPE,  # held open: the console waits for a line
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                health = await _get_when_up(http, "/healthz")
                assert health.status_code == 200
                assert health.json()["status"] == "ok"
                metrics = await http.get("/metrics")
                assert "nanobanana_jobs_total" in metrics.text
        finally:
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, err.decode()[-2000:]
    assert time.monotonic() - started < 10
    assert "stopped" in err.decode()


async def _get_when_up(http: httpx.AsyncClient, path: str) -> httpx.Response:
    async with asyncio.timeout(20):
        while True:
            try:
                return await http.get(path)
            except httpx.ConnectError:
                await asyncio.sleep(0.1)


async def test_a_refused_discord_token_ends_the_bot_with_one_line(tmp_path: Path) -> None:
    async with FakeFlowServer(token=SECRET) as flow, FakeDiscordServer(token="right") as dc:
        settings = Settings(
            useapi_token=Secret(SECRET),
            useapi_base_url=flow.base_url,
            discord_token=Secret("wrong.discord.token"),
            database=StoreUrl.parse(f"sqlite:///{tmp_path}/bot.sqlite3"),
        )
        with dc.patch_discord(), pytest.raises(BaseException) as ended:  # noqa: PT011
            await asyncio.wait_for(app.run_bot(settings), 30)
    fatal = cli._fatal(ended.value)
    assert isinstance(fatal, ConfigError)
    assert str(fatal).startswith("DISCORD_TOKEN was refused by Discord: reset it")
    assert fatal.__cause__ is None
    assert "wrong.discord.token" not in str(fatal)
