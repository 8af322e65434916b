"""The whole bot as ``python -m bot`` runs it (``app.run_bot``), on both platforms, in the test's
loop: Discord's fake needs discord.py patched in-process, so the wiring can't be a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import app
from bot.config import Settings
from tests.fakes.discord_server import FakeDiscordServer, RestCall
from tests.fakes.telegram_server import FakeTelegramServer
from tests.fakes.wireflow_server import DEFAULT_WORKFLOW, FakeWireflowServer

TG_TOKEN = "123:ABC-fake-token"
TG_USER = 42
DC_USER = 555


def answered_with_files(call: RestCall) -> bool:
    return call.method == "PATCH" and call.path.endswith("/messages/@original") and bool(call.files)


@contextlib.asynccontextmanager
async def running(
    road_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[tuple[FakeTelegramServer, FakeDiscordServer]]:
    """The bot on both platforms with ``road_env`` for its roads, until the block ends."""
    async with FakeTelegramServer(token=TG_TOKEN) as tg, FakeDiscordServer() as dc:
        settings = Settings.from_env(
            {
                **road_env,
                "TELEGRAM_TOKEN": TG_TOKEN,
                "TELEGRAM_API_URL": tg.root,
                "DISCORD_TOKEN": "discord-token",
                "DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3",
            },
            env_file=None,
        )
        with dc.patch_discord():
            bot = asyncio.create_task(app.run_bot(settings))
            try:
                await dc.wait_ready(timeout=10)
                await tg.wait_for("deleteWebhook")
                yield tg, dc
            finally:
                bot.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await bot


def wireflow_env(wireflow: FakeWireflowServer, port: int | None = None) -> dict[str, str]:
    """Only Wireflow's settings; with ``port``, the bot's public listener there is its public
    address (Wireflow fetches users' pictures from it)."""
    env = {
        "WIREFLOW_API_KEY": wireflow.api_key,
        "WIREFLOW_BASE_URL": wireflow.base_url,
        "WIREFLOW_WORKFLOW_ID": DEFAULT_WORKFLOW,
        "WIREFLOW_PLAN": "pro",
    }
    if port is not None:
        env["BOT_PUBLIC_LISTEN"] = f"127.0.0.1:{port}"
        env["BOT_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    return env
