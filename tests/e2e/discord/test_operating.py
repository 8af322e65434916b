"""Running the bot for a Discord community, end to end (real discord.py, service, Flow client
and store, against the fake Discord and the fake Flow API): an upstream that serves no one,
said at once and told to the admin once; /admin for BOT_ADMINS and a refusal for others;
/server for members who may manage the server (threads follow their channel); /info."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.core import admin_texts as said
from bot.core import option_texts, rules_texts, texts
from bot.core.people import UserKey
from bot.frontends.discord import views
from tests.attacks.conftest import until
from tests.conftest import AnyStore
from tests.e2e.discord.harness import (
    ADMIN,
    OTHER,
    USER,
    Bot,
    buttons,
    ephemeral_reply,
    on_original,
    responded,
    start_bot,
)
from tests.fakes.discord_server import FakeDiscordServer, InjectedInteraction
from tests.fakes.flow_server import FakeFlowServer
from tests.outages import GRACE, OUTAGE_TUNING, every_outage

MANAGE_GUILD = 1 << 5
BOSS = 6666


@pytest.fixture
def dc(dc: FakeDiscordServer) -> FakeDiscordServer:
    dc.dm_channel_id(ADMIN)  # a Discord user the bot can look up, as every real one is
    return dc


def dms_to_admin(dc: FakeDiscordServer) -> list[str]:
    channel = dc.dm_channel_id(ADMIN)
    return [
        c.json["content"]
        for c in dc.calls
        if c.method == "POST" and c.path == f"/channels/{channel}/messages" and c.status == 200
    ]


async def told(dc: FakeDiscordServer, inter: InjectedInteraction) -> str:
    """What the user alone was told in answer to ``inter``."""
    return str((await ephemeral_reply(dc, inter))["content"])


@every_outage
async def test_an_upstream_that_serves_no_one_is_said_at_once_and_told_once(
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    store: AnyStore,
    break_it: Any,
    mend_it: Any,
    reason: str,
) -> None:
    break_it(flow)
    bot = await start_bot(dc, flow, store, tuning=OUTAGE_TUNING)
    try:
        await _until(lambda: len(dms_to_admin(dc)) == 1)
        assert dms_to_admin(dc) == [f"⚠️ Operator action needed: {reason}. {said.NOTHING_SERVES}"]
        asked = time.monotonic()
        inter = await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
        assert await told(dc, inter) == texts.failed(texts.OPERATOR)
        assert time.monotonic() - asked < 3
        await asyncio.sleep(3 * GRACE)
        assert len(dms_to_admin(dc)) == 1

        mend_it(flow)
        await _until(lambda: len(dms_to_admin(dc)) == 2)
        assert dms_to_admin(dc)[1] == f"✅ Working again. It was: {reason}"
        works = await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
        await dc.wait_for(on_original(works, files=True))
    finally:
        await bot.stop()


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def admin(dc: FakeDiscordServer, sub: str, user_id: int = ADMIN, **options: Any) -> str:
    inter = await dc.slash_command(f"admin {sub}", options, user_id=user_id)
    return await told(dc, inter)


async def test_admin_commands_for_the_operator_and_nothing_for_anyone_else(
    dc: FakeDiscordServer, store: AnyStore, bot: Bot
) -> None:
    for sub, options in [("stats", {}), ("ban", {"user": str(USER)}), ("pause", {})]:
        assert await admin(dc, sub, OTHER, **options) == texts.failed(said.ADMIN_ONLY)
    assert not await store.is_banned(UserKey("discord", str(USER)))

    assert await admin(dc, "pause") == said.PAUSED
    waiting = await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
    await dc.wait_for(responded(waiting, texts.queued(1, paused=True)))
    await until(lambda: bot.service.scheduler.entries())  # shown before it is stored
    stats = await admin(dc, "stats")
    assert "**Queue**\n- 1 waiting, 0 running — paused by an operator (/admin resume)" in stats
    assert "- alice@example.com: 0 of 3 in flight, serving" in stats
    user = UserKey("discord", str(USER))
    assert await admin(dc, "ban", user=f"<@{USER}>") == said.banned(user, 1, changed=True)
    await dc.wait_for(on_original(waiting, content=texts.failed(rules_texts.CANCELLED_BY_ADMIN)))
    refused = await dc.slash_command("imagine", {"prompt": "a fox"}, user_id=USER)
    assert await told(dc, refused) == texts.failed(rules_texts.BANNED)
    assert await admin(dc, "unban", user=f"discord:{USER}") == said.unbanned(user, changed=True)

    assert await admin(dc, "block", words="Red Fox") == said.blocked_now("red fox", changed=True)
    refused = await dc.slash_command("imagine", {"prompt": "a red fox"}, user_id=USER)
    assert await told(dc, refused) == texts.failed(rules_texts.blocked("red fox"))
    assert await admin(dc, "unblock", words="red fox") == said.unblocked("red fox", changed=True)

    assert await admin(dc, "quota", user=str(USER), images="1") == said.quota_set(user, 1, 0)
    refused = await dc.slash_command("imagine", {"prompt": "x", "count": 2}, user_id=USER)
    assert await told(dc, refused) == texts.failed(option_texts.daily_quota(1))
    assert await admin(dc, "quota", user="default", images="9") == said.quota_set(None, 9, 0)
    assert await admin(dc, "quota", user=str(USER)) == said.quota_shown(user, 0, 1, own=True)

    queued = await dc.slash_command("imagine", {"prompt": "a cat", "count": 1}, user_id=USER)
    await dc.wait_for(responded(queued, texts.queued(1, paused=True)))
    await until(lambda: bot.service.scheduler.entries())
    assert await admin(dc, "cancel", user=str(USER)) == said.cancelled_jobs(user, 1)
    assert await admin(dc, "resume") == said.RESUMED
    works = await dc.slash_command("imagine", {"prompt": "a cat", "count": 1}, user_id=USER)
    await dc.wait_for(on_original(works, files=True))
    audit = [(e.actor, e.action) for e in await store.audit_log(20)]
    assert audit[0] == ("discord:7777", "resume")
    assert ("discord:7777", "ban") in audit


async def test_server_admins_set_the_bot_up_for_their_server(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    refused = await dc.slash_command("server", {}, user_id=USER)
    assert await told(dc, refused) == texts.failed(views.SERVER_ADMINS_ONLY)
    dc.member_permissions[BOSS] = MANAGE_GUILD
    opened = await dc.slash_command("server", {}, user_id=BOSS)
    await dc.wait_for(f"/interactions/{opened.id}/")
    panel = dc.original_message(opened.id)
    assert panel is not None
    assert buttons(panel) == [["srv:on", "srv:share"], ["srv:ch"], ["srv:model"], ["srv:limit"]]
    assert views.INTEGRATIONS in panel["content"]

    async def change(press: Any) -> None:
        inter = await press
        (update,) = await dc.wait_for(f"/interactions/{inter.id}/")
        assert update.json["type"] == 7  # the panel itself shows the change

    stranger = await dc.press_button(int(panel["id"]), "srv:on", user_id=USER)
    assert await told(dc, stranger) == texts.failed(views.SERVER_ADMINS_ONLY)
    await change(dc.press_button(int(panel["id"]), "srv:on", user_id=BOSS))  # off
    off = await dc.slash_command("imagine", {"prompt": "a fox"}, user_id=USER)
    assert await told(dc, off) == texts.failed(rules_texts.switched_off("discord"))
    await change(dc.press_button(int(panel["id"]), "srv:on", user_id=BOSS))  # on again

    art = dc.add_channel("art")
    await change(dc.select(int(panel["id"]), "srv:ch", [str(art)], user_id=BOSS))
    elsewhere = await dc.slash_command("imagine", {"prompt": "a fox"}, user_id=USER)
    assert await told(dc, elsewhere) == texts.failed(rules_texts.CHANNEL_OFF)
    await change(dc.select(int(panel["id"]), "srv:model", ["nano-banana-pro"], user_id=BOSS))
    await change(dc.select(int(panel["id"]), "srv:limit", ["5"], user_id=BOSS))
    await change(dc.press_button(int(panel["id"]), "srv:share", user_id=BOSS))
    panel = dc.message(int(panel["id"]))
    assert f"It answers in: <#{art}>" in panel["content"]
    assert "default model: nano-banana-pro · images per member: 5 a day" in panel["content"]

    thread = dc.add_thread(art)  # a thread follows its channel
    asked = await dc.slash_command(
        "imagine", {"prompt": "a fox", "count": 4}, user_id=USER, channel_id=thread
    )
    await dc.wait_for(on_original(asked, files=True))
    sent = flow.images_requests()[-1].json
    assert isinstance(sent, dict)
    assert sent["model"] == "nano-banana-pro"
    more = await dc.slash_command(
        "imagine", {"prompt": "a fox", "count": 2}, user_id=USER, channel_id=art
    )
    assert await told(dc, more) == texts.failed(rules_texts.server_quota(5))
    result = dc.original_message(asked.id)
    assert result is not None
    reroll = buttons(result)[-1][-1]
    pressed = await dc.press_button(int(result["id"]), reroll, user_id=OTHER)
    assert await told(dc, pressed) == texts.failed(rules_texts.NOT_YOUR_BUTTONS)
    settings = await store.server_settings("discord", str(dc.guild_id))
    assert (settings.channels, settings.shared_buttons) == ((str(art),), False)


async def test_info_shows_the_day(dc: FakeDiscordServer, bot: Bot) -> None:
    asked = await dc.slash_command("imagine", {"prompt": "a fox", "count": 3}, user_id=USER)
    await dc.wait_for(on_original(asked, files=True))
    inter = await dc.slash_command("info", {}, user_id=USER)
    info = await told(dc, inter)
    assert info.startswith(rules_texts.usage(3, 0))
    assert texts.NOTHING_QUEUED in info
    assert "Your defaults: Model: nano-banana-2-lite" in info
    opened = await dc.slash_command("settings", {}, user_id=USER)
    (reply,) = await dc.wait_for(f"/interactions/{opened.id}/")
    assert reply.json["data"]["content"].endswith(rules_texts.usage(3, 0))
