"""One process, both platforms, one queue: ``app.run_bot`` as ``python -m bot`` runs it.

Discord's fake needs discord.py patched in-process, so the real wiring runs in the test's loop
rather than in a subprocess; everything else is what an operator starts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot import app
from bot.config import Settings
from tests.fakes.discord_server import FakeDiscordServer, RestCall
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import Call, FakeTelegramServer

TG_TOKEN = "123:ABC"
TG_USER = 42
DC_USER = 555


def queued(call: Call) -> bool:
    return "Queued" in str(call.params.get("text", ""))


def answered_with_files(call: RestCall) -> bool:
    return call.method == "PATCH" and call.path.endswith("/messages/@original") and bool(call.files)


async def test_a_discord_job_overtakes_a_telegram_backlog(tmp_path: Path) -> None:
    async with (
        FakeFlowServer(latency=2.0) as flow,  # long enough that nothing finishes meanwhile
        FakeTelegramServer(token=TG_TOKEN) as tg,
        FakeDiscordServer() as dc,
    ):
        settings = Settings.from_env(
            {
                "USEAPI_TOKEN": "test-token",
                "USEAPI_BASE_URL": flow.base_url,
                "TELEGRAM_TOKEN": TG_TOKEN,
                "TELEGRAM_API_URL": tg.root,
                "DISCORD_TOKEN": "discord-token",
                "DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3",
                # Three slots, and one user may fill them all: fairness is the queue's job.
                "BOT_ACCOUNT_MIN_CONCURRENCY": "3",
                "BOT_ACCOUNT_MAX_CONCURRENCY": "3",
                "BOT_RUNNING_PER_USER": "3",
            },
            env_file=None,
        )
        with dc.patch_discord():
            bot = asyncio.create_task(app.run_bot(settings))
            try:
                await dc.wait_ready(timeout=10)
                await tg.wait_for("deleteWebhook")  # long polling starts right after

                for i in range(1, 7):
                    await tg.post_message(TG_USER, TG_USER, f"/imagine tg {i} --count 1")
                await tg.wait_for("editMessageText", count=6, predicate=queued)
                async with asyncio.timeout(5):  # three running, three waiting
                    while len(flow.images_requests()) < 3:  # noqa: ASYNC110 — no event to wait on
                        await asyncio.sleep(0.01)
                assert len(flow.images_requests()) == 3

                await dc.slash_command("imagine", {"prompt": "dc 1 --count 1"}, user_id=DC_USER)
                await dc.wait_for(answered_with_files, timeout=10)
                await tg.wait_for("sendPhoto", count=6, timeout=10)
            finally:
                bot.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await bot

    order = [str((r.json or {})["prompt"]) for r in flow.images_requests()]
    # Round-robin: the first slot to free up goes to the Discord user, not to Telegram's 4th.
    assert order[3] == "dc 1", order
    assert sorted(order) == ["dc 1", *(f"tg {i}" for i in range(1, 7))]
