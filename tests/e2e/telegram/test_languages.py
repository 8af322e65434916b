"""The reader's language on Telegram (issue 16): a user is answered in the language their app
sends (``language_code``) unless they chose one in /settings, and an answer given later, by a
process that never heard them, is in it too. ``tests.languages.TELEGRAM`` is the language these
tests speak (Russian)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bot.core import i18n, option_texts, texts
from bot.core.captions import ResultView
from bot.core.domain import GenerationRequest
from bot.core.i18n import ENGLISH, language
from bot.core.people import TELEGRAM, Owner, UserKey
from bot.core.presenters import label
from bot.core.service.delivery import result_of
from bot.frontends.telegram import outbound, views
from bot.frontends.telegram.status import UNDER_WAY, saying
from tests.e2e.telegram.harness import USER, BotUnderTest, labels, text_of
from tests.fakes.telegram_server import Call
from tests.languages import TELEGRAM as SPOKEN
from tests.languages import english_left

TAG, CODE = SPOKEN
READER = language(CODE)


@pytest.fixture
def operator_default() -> Iterator[None]:
    yield
    i18n.set_default(i18n.DEFAULT)


def said(bot: BotUnderTest, since: int = 0) -> list[Call]:
    """What the bot sent to users (not its command menus, not its own bookkeeping)."""
    quiet = {"setMyCommands", "getUpdates", "deleteWebhook", "getMe", "getFile", "getChatMember"}
    return [c for c in bot.tg.calls[since:] if c.method not in quiet]


def replies(bot: BotUnderTest, since: int) -> list[str]:
    return [text_of(c) for c in said(bot, since) if c.method == "sendMessage"]


async def refusal_to(bot: BotUnderTest, prompt: str) -> str:
    since = len(bot.tg.calls)
    await bot.tg.post_message(USER, USER, prompt)
    await bot.tg.wait_for("sendMessage", count=len(bot.tg.calls_of("sendMessage")) + 1)
    [reply] = replies(bot, since)
    return reply


async def test_a_user_is_answered_in_their_apps_language(bot: BotUnderTest) -> None:
    bot.tg.set_language(USER, TAG)
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/imagine a red fox --count 1 --seed 9")
    [photo] = await tg.wait_for("editMessageMedia")  # the status message became the picture
    job = await bot.delivered(1)
    # The status message: its place, and that the answer takes its place (one image brings
    # no call to spare for "generating": ``allowance``).
    [status] = tg.calls_of("sendMessage")
    assert text_of(status) == READER.render(saying(UNDER_WAY))
    assert text_of(status) != saying(UNDER_WAY)
    # The caption and the buttons under it.
    result = result_of(job, await bot.store.results(job.id), bot.service.models)
    shown = ResultView.of(result, bot.service.models, limit=outbound.MAX_CAPTION, language=READER)
    assert photo.params["media"]["caption"] == shown.caption
    markup = photo.params["reply_markup"]
    assert labels(markup) == [[READER.render(label(b)) for b in row] for row in result.buttons]
    assert labels(markup) != [[str(label(b)) for b in row] for row in result.buttons]
    # A refusal.
    refused = await refusal_to(bot, "/imagine a fox --count 5")
    assert refused == READER.render(texts.failed(option_texts.bad_count("5")))
    # Remembered in the store, as the app said it, for what is told later or elsewhere.
    assert await bot.store.language(UserKey(TELEGRAM, str(USER))) == TAG


async def test_a_choice_in_settings_wins_over_the_apps_language(bot: BotUnderTest) -> None:
    bot.tg.set_language(USER, "en")
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/settings")
    await tg.wait_for("sendMessage")
    panel = tg.sent_messages(USER)[-1]
    opened = await tg.press_button(USER, USER, panel["message_id"], "set:open:lang")
    await tg.wait_for("editMessageText")
    chosen = await tg.press_button(USER, USER, panel["message_id"], f"set:lang:{CODE}")
    await tg.wait_for("editMessageText", count=2)
    assert {opened, chosen} <= tg.answered_callbacks
    saved = await bot.store.user_settings(UserKey(TELEGRAM, str(USER)))
    assert saved.language == CODE
    # The panel is redrawn in the language chosen, at once.
    edited = tg.message(USER, panel["message_id"])
    assert edited is not None
    assert READER.render(i18n._("Language")) + ": " + i18n.NAMES[CODE] in edited["text"]
    # And everything after it, though the app still says English.
    refused = await refusal_to(bot, "/imagine a fox --count 5")
    assert refused == READER.render(texts.failed(option_texts.bad_count("5")))


async def test_an_unknown_language_falls_back_to_english_or_the_operators(
    bot: BotUnderTest, operator_default: None
) -> None:
    bot.tg.set_language(USER, "tlh")
    await bot.start()
    refused = await refusal_to(bot, "/imagine a fox --count 5")
    assert refused == ENGLISH.render(texts.failed(option_texts.bad_count("5")))
    i18n.set_default(CODE)  # BOT_DEFAULT_LANGUAGE
    refused = await refusal_to(bot, "/imagine a fox --count 6")
    assert refused == READER.render(texts.failed(option_texts.bad_count("6")))
    bot.tg.set_language(USER, None)  # an app that doesn't say: the one it said last time
    refused = await refusal_to(bot, "/imagine a fox --count 7")
    assert refused == READER.render(texts.failed(option_texts.bad_count("7")))


async def test_a_job_failed_before_a_restart_is_told_in_the_readers_language_after_it(
    bot: BotUnderTest,
) -> None:
    bot.tg.set_language(USER, TAG)
    await bot.start()
    await bot.tg.post_message(USER, USER, "/queue")  # the bot hears them once
    await bot.tg.wait_for("sendMessage")
    await bot.stop()
    # Meanwhile (another process; a crash before its answer went out): a job failed, stored
    # as its message, unanswered.
    async with bot.store.__class__(bot.db) as store:
        owner = Owner(TELEGRAM, str(USER), chat_id=str(USER))
        request = GenerationRequest("a lighthouse", "nano-banana-2", "1:1", 1, 5)
        job = await store.add_job(owner, request, {}, day="2026-01-01")
        reason = option_texts.image_too_many_pixels(9000, 9000, 40_000_000)
        assert await store.fail_job(job.id, reason)
    since = len(bot.tg.calls)
    await bot.start()  # a new process: nothing in memory, only the store
    await bot.delivered(job.id)
    assert replies(bot, since) == [READER.render(texts.failed(reason))]


async def test_the_command_menu_is_registered_in_every_shipped_language(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    commands = bot.tg.commands
    for code in i18n.LANGUAGES:
        for scope, shown in (("default", views.COMMANDS), ("all_chat_administrators", None)):
            menu = commands[f"{scope}/{views.language_code(code)}"]
            if shown is not None:
                assert [c["description"] for c in menu] == [
                    language(code).render(text) for _name, text in shown
                ]
    assert commands["default"] == commands["default/en"]  # the operator's default: English
    assert commands[f"default/{views.language_code(CODE)}"] != commands["default/en"]


async def test_nothing_reaches_a_reader_in_english_anywhere(
    bot: BotUnderTest,
) -> None:
    """Every delivery point, driven by a user whose app is in another language: no sentence of
    the catalogue reaches them in its English words (an f-string or ``+`` would make them)."""
    bot.tg.set_language(USER, TAG)
    await bot.start()
    tg = bot.tg

    async def say(text: str, method: str = "sendMessage") -> None:
        count = len(tg.calls_of(method)) + 1
        await tg.post_message(USER, USER, text)
        await tg.wait_for(method, count=count)

    await say("/start")
    await say("/help")
    await say("/settings")
    panel = tg.sent_messages(USER)[-1]
    await tg.press_button(USER, USER, panel["message_id"], "set:open:m")
    await tg.wait_for("editMessageText")
    await say("/imagine a red fox --count 2 --model 2", "sendMediaGroup")
    await bot.delivered(1)
    keyboard = next(m for m in reversed(tg.sent_messages(USER)) if "reply_markup" in m)
    job = await bot.job(1)
    bot.flow.upscale_latency = 1.0  # its status message goes, then becomes its file
    await tg.press_button(USER, USER, keyboard["message_id"], f"u:{job.public_id}:1")
    await tg.wait_for("editMessageMedia")
    await bot.delivered(2)
    bot.flow.upscale_latency = 0.0
    await tg.press_button(USER, USER, keyboard["message_id"], f"r:{job.public_id}:2")
    await tg.wait_for("sendMessage", predicate=lambda c: "force_reply" in str(c.params))
    for command in ("/queue", "/info", "/history", f"/show {job.public_id}", "/link"):
        await say(command)
    await say("/character list")
    await say("/draw a cat")  # another bot's command: the bot says which are its own
    await say("/imagine a fox --count 5")  # a refusal
    await say("/show zzzzzzz")  # an unknown job
    sent = [c for c in said(bot) if c.method != "answerCallbackQuery" or c.params.get("text")]
    assert {c.method for c in sent} >= {"sendMessage", "sendMediaGroup", "editMessageMedia"}
    left = [
        (call.method, english_left(json.dumps(call.params, ensure_ascii=False, default=str), CODE))
        for call in sent
    ]
    assert [(method, found) for method, found in left if found] == []
    # (and the detector does see English: the same words for an English reader)
    assert english_left(str(texts.queued(3)), CODE) != []
