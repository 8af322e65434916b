"""Attacks on result buttons: pressing other chats' results, prying at prompts, flooding presses.

Buttons carry only ``action:job:index``: anyone can forge a press for any job whose id they
know (a public id seen once, or the sequential number an old button carries). A press counts
only in the chat the job was answered in or shown in by /show (or from an admin); anything else
looks exactly like an unknown button. Refused presses are told privately, and a user who
keeps pressing is slowed down, so that one member can't fill a group with refusals.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.core import option_texts, texts
from bot.core.buttons import Action, Button
from bot.core.errors import AlreadyMade, InvalidInput
from bot.core.people import Owner, UserKey
from bot.core.policy import Limits
from bot.frontends.telegram import views as tg_views
from bot.frontends.telegram.status import RESULT_HERE
from bot.providers.gemini import GeminiClient
from bot.store.sqlite import SqliteStore
from tests.attacks.conftest import answer_of, to_chat, until
from tests.conftest import AnyStore, owner, serving, wait_delivered
from tests.e2e.discord import harness as discord_harness
from tests.e2e.telegram.harness import GROUP, OTHER, USER, BotUnderTest, generations
from tests.fakes.discord_server import FLAG_EPHEMERAL, FakeDiscordServer, InjectedInteraction
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer


def stranger(n: int) -> Owner:
    """Someone in another chat (a new one each time: presses are also slowed per user)."""
    return Owner("console", f"stranger{n}", chat_id="elsewhere")


def upscales(flow: FakeFlowServer) -> list[Any]:
    return [r for r in flow.requests if r.path.endswith("/images/upscale")]


# The rule, in the core (every platform gets it).


async def test_a_press_from_another_chat_is_an_unknown_button(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    first = await service.submit(owner(), "a private fox --model 2 --count 2")
    await told.wait_answered(first.job_id)
    await wait_delivered(service.store, first.job_id)

    actions = ((Action.UPSCALE, 1), (Action.REROLL, 0), (Action.REUSE, 1))
    for n, (action, index) in enumerate(actions):
        button = Button(action, first.public_id, index)
        with pytest.raises(InvalidInput) as forged:
            await service.press(stranger(n), button, "steal it" if index else None)
        with pytest.raises(InvalidInput) as unknown:
            await service.press(stranger(n), Button(action, "999", index), "x" if index else None)
        assert forged.value.message == unknown.value.message == texts.JOB_NOT_FOUND
        # Before a form is opened (Discord's prefilled prompt, Telegram's ForceReply).
        with pytest.raises(InvalidInput, match="no longer available"):
            await service.pressed_job(stranger(n), button)
    with pytest.raises(InvalidInput, match="no longer available"):
        await service.press(stranger(9), Button(Action.CANCEL, first.public_id))
    assert await service.store.get_job(first.job_id + 1) is None
    assert len(flow.images_requests()) == 1
    assert upscales(flow) == []

    # Anyone in the job's chat may press (the new job is theirs), and an admin anywhere.
    mine = await service.press(owner("2"), Button(Action.REROLL, first.public_id))
    admin = Owner("console", "99", chat_id="admin-dm")
    theirs = await service.press(admin, Button(Action.UPSCALE, first.public_id, 2))
    await told.wait_answered(mine.job_id, theirs.job_id)
    assert (await service.pressed_job(admin, Button(Action.REUSE, first.public_id, 1))).id == 1


async def test_a_reroll_on_a_job_retention_pruned_sends_nothing_upstream(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    first = await service.submit(owner(), "a secret fox --model 2 --count 1")
    await told.wait_answered(first.job_id)
    await wait_delivered(service.store, first.job_id)
    assert await service.store.prune(-60.0, limit=10) == 1  # as BOT_RETENTION_DAYS would

    # Before: an empty prompt went upstream, was refused there ("prompt is required") and the
    # presser was told the image service rejected their options, a day's image counted.
    with pytest.raises(InvalidInput) as expired:
        await service.press(owner("2"), Button(Action.REROLL, first.public_id))
    assert expired.value.message == texts.JOB_NOT_FOUND
    assert len(flow.images_requests()) == 1


async def test_upscales_past_the_daily_quota_are_refused(make_service: Any) -> None:
    service, told = await make_service(limits=Limits(daily_images_per_user=3))
    first = await service.submit(owner(), "a fox --model 2 --count 2")
    await told.wait_answered(first.job_id)
    upscale = await service.press(owner(), Button(Action.UPSCALE, first.public_id, 1))
    await told.wait_answered(upscale.job_id)
    with pytest.raises(InvalidInput, match="today's limit of 3 images"):
        await service.press(owner(), Button(Action.UPSCALE, first.public_id, 2))


async def test_a_user_hammering_buttons_is_asked_to_wait(make_service: Any) -> None:
    service, told = await make_service()
    first = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(first.job_id)
    refusals = []
    for _ in range(30):
        try:
            await service.pressed_job(owner("2"), Button(Action.REUSE, first.public_id, 1))
        except InvalidInput as refusal:
            refusals.append(refusal.message)
    assert refusals
    assert set(refusals) == {texts.SLOW_DOWN}
    # Another user of the same chat is not held back by the first one's presses.
    assert (await service.pressed_job(owner("3"), Button(Action.REUSE, first.public_id, 1))).id == 1


# Telegram, through python-telegram-bot.


async def test_a_forged_button_from_another_chat_gets_nothing_on_telegram(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    await tg.post_message(USER, USER, "/imagine a private fox --model 2 --count 1")
    await bot.delivered(1)
    # The attacker's own chat with the bot: any bot message there can carry a forged button.
    await tg.post_message(OTHER, OTHER, "/help")
    await tg.wait_for("sendMessage", predicate=to_chat(OTHER))
    [own] = tg.sent_messages(OTHER)

    forged = [
        await tg.press_button(OTHER, OTHER, own["message_id"], data)
        for data in ("u:1:1", "d:1:0", "r:1:1", "c:1:0")
    ]
    unknown = await tg.press_button(OTHER, OTHER, own["message_id"], "d:999:0")
    await tg.wait_for("answerCallbackQuery", count=5)
    assert answer_of(tg, unknown) == {"text": texts.JOB_NOT_FOUND, "show_alert": True}
    assert [answer_of(tg, q) for q in forged] == [answer_of(tg, unknown)] * 4

    # The attacker's own next prompt settles whatever the presses might have started.
    await tg.post_message(OTHER, OTHER, "/imagine my own fox --count 1")
    await bot.delivered(2)
    assert (await bot.job(2)).owner.user_id == str(OTHER)
    assert await bot.store.get_job(3) is None
    assert [g["prompt"] for g in generations(bot.flow)] == ["a private fox", "my own fox"]
    assert upscales(bot.flow) == []
    assert await bot.store.pending_keys("reuse", older_than=0) == []  # no ForceReply parked
    assert not any("force_reply" in str(c.params) for c in tg.calls_of("sendMessage"))


async def test_thirty_rerolls_on_a_full_queue_do_not_silence_a_group(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start(limits=Limits(queued_per_user=1))
    await tg.post_message(GROUP, USER, "/imagine a fox --count 1", chat_type="supergroup")
    await bot.delivered(1)
    result = next(m for m in tg.sent_messages(GROUP) if "reply_markup" in m)
    bot.service.scheduler.accounts["alice@example.com"].limit = 0.0  # nothing runs any more
    await tg.post_message(GROUP, USER, "/imagine another --count 1", chat_type="supergroup")
    await until(lambda: bot.service.scheduler.position(2) > 0)  # the queue is full now
    # The second job's status message (the first job's came before it): nothing more is due in
    # the group.
    await tg.wait_for(
        "sendMessage", count=2, predicate=lambda c: RESULT_HERE in str(c.params.get("text"))
    )
    posted = len([c for c in tg.calls if to_chat(GROUP)(c)])

    presses = [await tg.press_button(GROUP, USER, result["message_id"], "d:1:0") for _ in range(30)]
    await tg.wait_for("answerCallbackQuery", count=30)
    answers = [answer_of(tg, q) for q in presses]
    assert all(a["show_alert"] for a in answers)
    assert {a["text"] for a in answers} == {option_texts.queue_full(1), texts.SLOW_DOWN}

    # Nothing was said in the group, and another member is answered at once: the group's
    # message budget (20 a minute, kept by the rate limiter) is untouched.
    seen = len(tg.calls)
    assert len([c for c in tg.calls if to_chat(GROUP)(c)]) == posted
    asked = await tg.post_message(GROUP, OTHER, "/imagine mine --count 1", chat_type="supergroup")
    asked_id = asked["message"]["message_id"]
    await tg.wait_for(
        "sendMessage",
        predicate=lambda c: (
            tg.calls.index(c) >= seen and c.params["reply_parameters"]["message_id"] == asked_id
        ),
        timeout=3,
    )
    assert len([c for c in tg.calls if to_chat(GROUP)(c)]) == posted + 1


async def test_a_member_tapping_anothers_settings_panel_changes_and_redraws_nothing(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start(limits=Limits(press_burst=3))
    owner_key, other_key = UserKey("telegram", str(USER)), UserKey("telegram", str(OTHER))
    await bot.service.update_settings(owner_key, model="nano-banana-pro")
    await tg.post_message(GROUP, USER, "/settings", chat_type="supergroup")
    await tg.wait_for("sendMessage")
    panel = tg.sent_messages(GROUP)[-1]
    # Forged or not, a press is the presser's: the owner's panel and settings stay as they are.
    taps = ["set:reset", "set:m:nano-banana-2", "set:open:m", "set:back", "set:reset"] * 4
    pressed = [await tg.press_button(GROUP, OTHER, panel["message_id"], data) for data in taps]
    await tg.wait_for("answerCallbackQuery", count=len(pressed))
    assert tg.calls_of("editMessageText") == []
    assert tg.message(GROUP, panel["message_id"]) == panel
    assert (await bot.service.settings(owner_key)).model == "nano-banana-pro"
    assert (await bot.service.settings(other_key)).model is None
    # They get their own panel, but not one per tap: presses are slowed like any others.
    answers = [answer_of(tg, q)["text"] for q in pressed]
    assert answers.count(texts.SLOW_DOWN) >= len(taps) - 3 - 1
    own = [c for c in tg.calls_of("sendMessage") if c.params["chat_id"] == OTHER]
    assert 1 <= len(own) <= 4
    # They never wrote to the bot privately, and a bot can't write first: Telegram refuses the
    # private panel, so it comes in the group, addressed to them.
    bot.refusals.append("sendMessage: Forbidden: bot can't initiate conversation with a user")
    assert all(c.error is not None for c in own)
    assert tg_views.OTHERS_PANEL_BELOW in answers


# Discord, through discord.py.


async def _first_response(dc: FakeDiscordServer, inter: InjectedInteraction) -> dict[str, Any]:
    (reply,) = await dc.wait_for(f"/interactions/{inter.id}/")
    body: dict[str, Any] = reply.json
    return body


async def _result(dc: FakeDiscordServer, inter: InjectedInteraction) -> dict[str, Any]:
    await dc.wait_for(discord_harness.on_original(inter, files=True))
    message = dc.original_message(inter.id)
    assert message is not None
    return message


async def test_a_forged_button_from_another_channel_gets_nothing_on_discord(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: SqliteStore
) -> None:
    bot = await discord_harness.start_bot(dc, flow, store)
    try:
        asked = await dc.slash_command(
            "imagine", {"prompt": "a private fox", "count": 1, "model": "nano-banana-2"},
            user_id=discord_harness.USER,
        )  # fmt: skip
        await _result(dc, asked)
        # The attacker's DM with the bot, and their own result there.
        theirs = await dc.slash_command(
            "imagine", {"prompt": "mine", "count": 1}, user_id=discord_harness.OTHER, guild=False
        )
        own = await _result(dc, theirs)

        replies = []
        for custom_id in ("u:1:1", "d:1:0", "r:1:1", "c:1:0", "d:999:0"):
            press = await dc.press_button(
                int(own["id"]), custom_id, user_id=discord_harness.OTHER, forged=True
            )
            replies.append(await _first_response(dc, press))
        unknown = replies[-1]
        assert unknown["type"] == 4  # a message, not a form and not "thinking…"
        assert unknown["data"]["content"] == texts.failed(texts.JOB_NOT_FOUND)
        assert unknown["data"]["flags"] & FLAG_EPHEMERAL
        assert replies == [unknown] * 5  # no modal prefilled with the prompt
        assert await store.get_job(3) is None
        assert [r.json["prompt"] for r in flow.images_requests() if r.json] == [
            "a private fox",
            "mine",
        ]
        assert upscales(flow) == []
    finally:
        await bot.stop()


async def test_a_refused_press_on_discord_is_private_from_the_start(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: SqliteStore
) -> None:
    bot = await discord_harness.start_bot(dc, flow, store, limits=Limits(queued_per_user=1))
    try:
        first = await dc.slash_command(
            "imagine", {"prompt": "a fox", "count": 1}, user_id=discord_harness.USER
        )
        result = await _result(dc, first)
        bot.service.scheduler.accounts["alice@example.com"].limit = 0.0
        await dc.slash_command(
            "imagine", {"prompt": "waiting", "count": 1}, user_id=discord_harness.USER
        )
        await until(lambda: bot.service.scheduler.position(2) > 0)

        press = await dc.press_button(
            int(result["id"]),
            f"d:{discord_harness.public_id_of(result)}:0",
            user_id=discord_harness.USER,
        )
        reply = await _first_response(dc, press)
        assert reply["type"] == 4  # no public "thinking…" first
        assert reply["data"]["flags"] & FLAG_EPHEMERAL
        assert reply["data"]["content"] == texts.failed(option_texts.queue_full(1))
    finally:
        await bot.stop()


async def test_pressing_u_again_on_a_road_without_upscales_pays_for_no_second_render(
    store: AnyStore,
) -> None:
    """Where a road has no upscale, U renders the prompt and seed again at the next size: as
    Flow's upscale, it is made once per image and size (a second press is answered with the
    one made), or a member's presses would each buy another 2K render."""
    async with (
        FakeGeminiServer() as gemini,
        serving(store, GeminiClient(gemini.api_key, gemini.base_url)) as (service, told),
    ):
        first = await service.submit(owner(), "a fox --count 1")
        await told.wait_answered(first.job_id)
        up = Button(Action.UPSCALE, first.public_id, 1)
        made = await service.press(owner(), up)
        await told.wait_answered(made.job_id)
        renders = len(gemini.generate_requests())
        with pytest.raises(AlreadyMade) as again:
            await service.press(owner("2"), up)
        assert again.value.job_id == made.job_id
        assert len(gemini.generate_requests()) == renders
