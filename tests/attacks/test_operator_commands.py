"""Attacks on the operator's and the server admins' controls: a member trying /admin, forging a
/group or /server panel press, or pressing one where it means nothing.

/admin answers everyone who isn't in BOT_ADMINS with one sentence, whatever they typed; a panel
press is checked against the platform's own word on who administers the server, every time.
"""

from __future__ import annotations

from bot.core import admin_texts, texts
from bot.core.community import ServerSettings
from bot.core.people import UserKey
from bot.frontends.discord import views as discord_views
from bot.frontends.telegram import views
from tests.attacks.conftest import answer_of
from tests.conftest import AnyStore
from tests.e2e.discord import harness as discord_harness
from tests.e2e.telegram.harness import GROUP, OTHER, USER, BotUnderTest, text_of
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer


async def test_a_member_probing_admin_learns_nothing(telegram: BotUnderTest) -> None:
    await telegram.start()
    tg = telegram.tg
    lines = ["stats", "ban telegram:7", "pause", "quota default 999", "help", "", "x" * 300]
    for n, line in enumerate(lines, start=1):
        await tg.post_message(OTHER, OTHER, f"/admin {line}")
        await tg.wait_for("sendMessage", count=n)
    answers = {text_of(c) for c in tg.calls_of("sendMessage")}
    assert answers == {texts.failed(admin_texts.ADMIN_ONLY)}  # not even which subcommands exist
    assert not await telegram.store.is_banned(UserKey("telegram", "7"))
    assert not await telegram.store.paused()
    assert await telegram.store.quota(None) is None
    assert await telegram.store.audit_log(10) == []


async def test_a_forged_group_settings_press_from_a_member_changes_nothing(
    telegram: BotUnderTest,
) -> None:
    await telegram.start()
    tg = telegram.tg
    tg.chat_admins[GROUP] = [50]
    await tg.post_message(GROUP, USER, "/imagine a fox --count 1", chat_type="supergroup")
    await telegram.delivered(1)
    result = next(m for m in tg.sent_messages(GROUP) if "reply_markup" in m)
    # Any bot message will do: callback data is the client's to write.
    presses = [
        await tg.press_button(GROUP, USER, result["message_id"], data)
        for data in ("srv:on:0", "srv:lim:0", "srv:share:0", "srv:m:nano-banana-pro")
    ]
    await tg.wait_for("answerCallbackQuery", count=len(presses))
    assert {answer_of(tg, q)["text"] for q in presses} == {views.GROUP_ADMINS_ONLY}
    settings = await telegram.store.server_settings("telegram", str(GROUP))
    assert settings == ServerSettings()
    assert await telegram.store.audit_log(10) == []


async def test_group_settings_pressed_in_a_private_chat_mean_nothing(
    telegram: BotUnderTest,
) -> None:
    await telegram.start()
    tg = telegram.tg
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await telegram.delivered(1)
    result = next(m for m in tg.sent_messages(USER) if "reply_markup" in m)
    pressed = await tg.press_button(USER, USER, result["message_id"], "srv:on:0")
    await tg.wait_for("answerCallbackQuery")
    assert answer_of(tg, pressed)["text"] == views.INVALID_BUTTON
    assert tg.calls_of("getChatMember") == []  # nothing asked about a chat that has no admins


async def test_a_forged_server_panel_press_from_a_member_changes_nothing(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore
) -> None:
    bot = await discord_harness.start_bot(dc, flow, store)
    try:
        asked = await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=4444)
        await dc.wait_for(discord_harness.on_original(asked, files=True))
        result = dc.original_message(asked.id)
        assert result is not None
        for custom_id in ("srv:on", "srv:share"):
            forged = await dc.press_button(int(result["id"]), custom_id, user_id=5555, forged=True)
            reply = await discord_harness.ephemeral_reply(dc, forged)
            assert reply["content"] == texts.failed(discord_views.SERVER_ADMINS_ONLY)
        assert await store.server_settings("discord", str(dc.guild_id)) == ServerSettings()
        assert await store.audit_log(10) == []
    finally:
        await bot.stop()
