"""Running it for a community, as an operator meets it: ``check``, ``backup``, ``/healthz``,
stopping, and tokens a platform refuses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import __main__ as cli
from bot import app
from bot.config import ConfigError, Secret, Settings
from bot.core import admin_texts, texts
from bot.store import StoreUrl, open_store
from bot.store.migrations import LATEST
from tests.e2e.bot_process import SECRET, free_port, run_bot, start_bot
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import FakeTelegramServer
from tests.outages import OUTAGE_TUNING

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
            "BOT_DEFAULT_LANGUAGE": "pt-BR",
        }
        code, out, err = await run_bot("check", env=env, cwd=tmp_path)
        assert (code, err) == (0, ""), err
        assert [line[0] for line in out.splitlines()] == ["✓", "✓", "✓", "✓"]
        assert "; BOT_DEFAULT_LANGUAGE pt_BR" in out.splitlines()[1]
        flow.accounts = []
        code, out, _ = await run_bot("check", env=env, cwd=tmp_path)
        assert code == 1
        assert "✗ useapi.net: no Google account is linked at useapi.net" in out
        code, out, _ = await run_bot(
            "check", env={**env, "TELEGRAM_TOKEN": "1:refused"}, cwd=tmp_path
        )
        assert code == 1
        assert "✗ telegram: TELEGRAM_TOKEN was refused by Telegram" in out
        assert "nope" not in out
    code, out, err = await run_bot("check", env={}, cwd=tmp_path)
    assert code == 2
    assert "USEAPI_TOKEN is not set" in err
    assert SECRET not in out + err


async def test_check_refuses_a_public_address_wireflow_could_not_be_given(tmp_path: Path) -> None:
    env = {"USEAPI_TOKEN": SECRET}
    for url, says in (
        ("http://bot.example.org", "BOT_PUBLIC_URL must be an https:// address"),
        ("https://bot.example.org?k=1", "BOT_PUBLIC_URL must be the bot's public web address"),
    ):
        code, out, err = await run_bot("check", env={**env, "BOT_PUBLIC_URL": url}, cwd=tmp_path)
        assert (code, out) == (2, "")
        assert says in err


async def test_check_refuses_a_public_address_without_its_listener(tmp_path: Path) -> None:
    """An operator upgrading, whose proxy sent /references/ to BOT_HTTP_LISTEN, is told at
    once which setting to add."""
    env = {
        "WIREFLOW_API_KEY": SECRET,
        "WIREFLOW_WORKFLOW_ID": "wf-1",
        "BOT_HTTP_LISTEN": "127.0.0.1:8080",
        "BOT_PUBLIC_URL": "https://bot.example.org",
    }
    for command in ("check", "run"):
        code, out, err = await run_bot(command, env=env, cwd=tmp_path)
        assert (code, out) == (2, "")
        assert err.splitlines() == [
            "error: BOT_PUBLIC_URL is set but BOT_PUBLIC_LISTEN is not: set BOT_PUBLIC_LISTEN "
            "to the host:port your proxy forwards https://bot.example.org to (the "
            "pictures are served there alone; BOT_HTTP_LISTEN keeps /healthz and /metrics and "
            "serves no picture)"
        ]
        assert SECRET not in err


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from bot.core.domain import GenerationRequest
    from bot.core.people import Owner
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


async def test_the_console_stops_on_sigterm_while_it_waits_for_input(tmp_path: Path) -> None:
    port = free_port()
    async with FakeFlowServer(token=SECRET) as flow:
        process = await start_bot(  # its input held open: the console waits for a line
            "console",
            env={
                "USEAPI_TOKEN": SECRET,
                "USEAPI_BASE_URL": flow.base_url,
                "BOT_HTTP_LISTEN": f"127.0.0.1:{port}",
            },
            cwd=tmp_path,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                health = await _get_when_up(http, "/healthz")
                while health.json()["reasons"] == [admin_texts.STARTING]:  # before GET /accounts
                    await asyncio.sleep(0.05)
                    health = await http.get("/healthz")
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


async def test_the_console_says_at_once_that_the_token_is_refused(tmp_path: Path) -> None:
    refused = admin_texts.ADMIN_REASONS["auth"]
    alert = f"⚠️ Operator action needed: {refused}. {admin_texts.NOTHING_SERVES}"
    async with FakeFlowServer(token="the-right-one") as flow:
        started = time.monotonic()
        process = await start_bot(
            "console", env={"USEAPI_TOKEN": SECRET, "USEAPI_BASE_URL": flow.base_url}, cwd=tmp_path
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(b"a fox in the snow --count 1\n")
        # The person at the console is the operator: told what is wrong and what to do, and
        # refused at once. Stdin stays open until both are said, as for a person typing (an
        # alert still held when the console ends is kept for its next start, not lost).
        lines: list[str] = []
        async with asyncio.timeout(20):  # it used to wait for ever, "queued"
            while not {alert, texts.failed(texts.OPERATOR)} <= set(lines):
                lines.append((await process.stdout.readline()).decode().rstrip("\n"))
        assert time.monotonic() - started < 20
        process.stdin.close()
        out, err = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, err.decode()[-2000:]
    assert SECRET not in "\n".join(lines) + out.decode() + err.decode()


@pytest.mark.parametrize("platform", ["telegram", "discord"])
async def test_healthz_turns_503_and_back_and_metrics_count_a_job(
    tmp_path: Path, platform: str
) -> None:
    port = free_port()
    async with (
        FakeFlowServer(token=SECRET) as flow,
        FakeTelegramServer(token=TELEGRAM) as tg,
        FakeDiscordServer(token="discord-token") as dc,
    ):
        flow.token = "rotated-at-useapi"  # the bot's USEAPI_TOKEN is refused from the start
        tokens: dict[str, Any] = (
            {"telegram_token": Secret(TELEGRAM), "telegram_api_url": tg.root}
            if platform == "telegram"
            else {"discord_token": Secret("discord-token")}
        )
        settings = Settings(
            useapi_token=Secret(SECRET),
            useapi_base_url=flow.base_url,
            database=StoreUrl.parse(f"sqlite:///{tmp_path}/bot.sqlite3"),
            http_listen=("127.0.0.1", port),
            tuning=OUTAGE_TUNING,
            **tokens,
        )
        with dc.patch_discord():
            running = asyncio.create_task(app.run_bot(settings))
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    down = await _get_when_up(http, "/healthz")
                    while down.json()["reasons"] == [admin_texts.STARTING]:  # before GET /accounts
                        await asyncio.sleep(0.05)
                        down = await http.get("/healthz")
                    assert down.status_code == 503
                    assert down.json() == {
                        "status": "unhealthy",
                        "store_writable": True,
                        "upstream_serving": False,
                        "reasons": [admin_texts.ADMIN_REASONS["auth"]],
                    }
                    flow.token = SECRET  # the operator put the new token in useapi.net's place
                    async with asyncio.timeout(10):
                        while (await http.get("/healthz")).status_code != 200:  # noqa: ASYNC110
                            await asyncio.sleep(0.1)
                    await _a_job_on(platform, tg, dc)
                    metrics = {
                        (s.name, tuple(sorted(s.labels.items()))): s.value
                        for family in text_string_to_metric_families(
                            (await http.get("/metrics")).text
                        )
                        for s in family.samples
                    }
            finally:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
    assert metrics[("nanobanana_jobs_total", (("outcome", "done"),))] == 1
    assert metrics[("nanobanana_upstream_seconds_count", (("call", "generate"),))] == 1
    assert metrics[("nanobanana_upstream_seconds_count", (("call", "accounts"),))] >= 2
    assert metrics[("nanobanana_queue_depth", ())] == 0
    assert metrics[("nanobanana_account_serving", (("account", "alice@example.com"),))] == 1
    assert metrics[("nanobanana_platform_connected", (("platform", platform),))] == 1


async def _a_job_on(platform: str, tg: FakeTelegramServer, dc: FakeDiscordServer) -> None:
    """Ask for an image on ``platform`` and wait for it to be posted."""
    if platform == "telegram":
        await tg.post_message(42, 42, "/imagine a fox --count 1")
        await tg.wait_for("editMessageMedia", timeout=10)  # the status message became it
        return
    await dc.wait_ready()
    asked = await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=4444)
    await dc.wait_for(
        lambda c: (
            c.method == "PATCH"
            and c.path.endswith(f"/{asked.token}/messages/@original")
            and bool(c.files)
        ),
        timeout=10,
    )
