"""Running the bot for a Telegram community, end to end (real python-telegram-bot, service, Flow
client and store, against the fake Bot API and the fake Flow API): an upstream that serves no
one, said at once and told to the admin once; /admin for BOT_ADMINS and a refusal for others;
/group for a group's admins; /info."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bot.core import admin_texts, option_texts, rules_texts, texts
from bot.core.people import UserKey
from bot.frontends.telegram import views
from bot.frontends.telegram.status import saying
from tests.e2e.telegram.harness import (
    ADMIN,
    GROUP,
    OTHER,
    USER,
    BotUnderTest,
    callback_data,
    text_of,
)
from tests.fakes.telegram_server import Call
from tests.outages import GRACE, OUTAGE_TUNING, every_outage

GROUP_ADMIN = 50


def to(chat_id: int, text: str | None = None) -> Callable[[Call], bool]:
    return lambda c: c.params.get("chat_id") == chat_id and (text is None or text_of(c) == text)


async def said(
    bot: BotUnderTest, chat_id: int, text: str, *, since: int = 0, timeout: float = 5.0
) -> Call:
    """The bot said exactly ``text`` in ``chat_id`` (a new message, or a status edited to it),
    in a call after the first ``since`` calls."""

    def found() -> Call | None:
        calls = bot.tg.calls[since:]
        return next(
            (
                c
                for c in reversed(calls)
                if c.method in ("sendMessage", "editMessageText") and to(chat_id, text)(c)
            ),
            None,
        )

    async with asyncio.timeout(timeout):
        while (call := found()) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return call


async def ask(bot: BotUnderTest, chat_id: int, user: int, text: str, answer: str) -> Call:
    """``user`` writes ``text`` in ``chat_id``; the bot's ``answer`` to it."""
    since = len(bot.tg.calls)
    chat_type = "private" if chat_id > 0 else "supergroup"
    await bot.tg.post_message(chat_id, user, text, chat_type=chat_type)
    return await said(bot, chat_id, answer, since=since)


def alerts(bot: BotUnderTest) -> list[str]:
    return [text_of(c) for c in bot.tg.calls_of("sendMessage") if to(ADMIN)(c)]


@every_outage
async def test_an_upstream_that_serves_no_one_is_said_at_once_and_told_once(
    bot: BotUnderTest, break_it: Any, mend_it: Any, reason: str
) -> None:
    break_it(bot.flow)
    bot.tg.start_bot(ADMIN)  # an admin who uses the bot: Telegram lets it write to them
    await bot.start(tuning=OUTAGE_TUNING)
    alert = await bot.tg.wait_for("sendMessage", predicate=to(ADMIN))
    assert text_of(alert[0]) == f"⚠️ Operator action needed: {reason}. {admin_texts.NOTHING_SERVES}"

    asked = time.monotonic()
    await ask(bot, USER, USER, "/imagine a fox --count 1", texts.failed(texts.OPERATOR))
    assert time.monotonic() - asked < 3  # not "⏳ Queued — you're next." for good
    assert await bot.store.get_job(1) is None  # refused, not queued
    await asyncio.sleep(3 * GRACE)
    assert len(alerts(bot)) == 1  # told once, however many refreshes met it

    mend_it(bot.flow)
    await said(bot, ADMIN, f"✅ Working again. It was: {reason}")
    await bot.tg.post_message(USER, USER, "/imagine a fox --count 1")
    job = await bot.delivered(1)
    assert (await bot.results(job.id))[0].data is None  # delivered (its bytes dropped)
    assert bot.tg.calls_of("editMessageMedia")  # the status message became the picture
    assert len(alerts(bot)) == 2


async def admin_says(bot: BotUnderTest, line: str, *, by: int = ADMIN) -> str:
    """Send ``/admin line`` in the sender's private chat; the bot's answer."""
    before = len(bot.tg.calls_of("sendMessage"))
    await bot.tg.post_message(by, by, f"/admin {line}")
    calls = await bot.tg.wait_for("sendMessage", count=before + 1, predicate=None)
    return text_of(calls[-1])


async def test_admin_commands_for_the_operator_and_nothing_for_anyone_else(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    for line in ("stats", "ban telegram:42", "pause", "whatever"):
        assert await admin_says(bot, line, by=OTHER) == texts.failed(admin_texts.ADMIN_ONLY)
    assert not await bot.store.is_banned(UserKey("telegram", str(USER)))

    assert await admin_says(bot, "pause") == admin_texts.PAUSED
    await ask(bot, USER, USER, "/imagine a fox --count 1", saying(texts.queued(1, paused=True)))
    await bot.stored(1)
    stats = await admin_says(bot, "stats")
    assert "Queue:\n• 1 waiting, 0 running — paused by an operator (/admin resume)" in stats
    assert "• alice@example.com: 0 of 3 in flight, serving" in stats
    assert "telegram:7: pause" in stats  # who did what, and when

    assert await admin_says(bot, f"ban {USER}") == admin_texts.banned(
        UserKey("telegram", str(USER)), 1, changed=True
    )
    await said(bot, USER, texts.failed(rules_texts.CANCELLED_BY_ADMIN))  # its status says so
    await ask(bot, USER, USER, "/imagine a fox --count 1", texts.failed(rules_texts.BANNED))
    assert await admin_says(bot, f"unban telegram:{USER}") == admin_texts.unbanned(
        UserKey("telegram", str(USER)), changed=True
    )

    assert await admin_says(bot, "block fox") == admin_texts.blocked_now("fox", changed=True)
    await ask(bot, USER, USER, "/imagine a Fox, running", texts.failed(rules_texts.blocked("Fox")))
    assert await admin_says(bot, "unblock fox") == admin_texts.unblocked("fox", changed=True)

    quota = await admin_says(bot, f"quota {USER} 1")
    assert quota == admin_texts.quota_set(UserKey("telegram", str(USER)), 1, 0)
    await ask(
        bot, USER, USER, "/imagine a fox --count 2", texts.failed(option_texts.daily_quota(1))
    )
    assert await admin_says(bot, "quota default 5") == admin_texts.quota_set(None, 5, 0)

    # Still paused: it waits.
    await ask(bot, USER, USER, "/imagine a cat --count 1", saying(texts.queued(1, paused=True)))
    assert await admin_says(bot, f"cancel telegram:{USER}") == admin_texts.cancelled_jobs(
        UserKey("telegram", str(USER)), 1
    )
    assert await admin_says(bot, "resume") == admin_texts.RESUMED
    await bot.tg.post_message(USER, USER, "/imagine a cat --count 1")
    job = await bot.delivered(3)  # 1 was cancelled by the ban, 2 by the cancel: both given back
    assert job.state.value == "done"
    assert await admin_says(bot, "nonsense") == texts.failed(admin_texts.ADMIN_USAGE)


async def test_a_groups_admins_set_the_bot_up_there(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    tg.chat_admins[GROUP] = [GROUP_ADMIN]
    await ask(bot, GROUP, USER, "/group", texts.failed(views.GROUP_ADMINS_ONLY))
    await tg.post_message(GROUP, GROUP_ADMIN, "/group", chat_type="supergroup")
    await tg.wait_for("sendMessage", predicate=lambda c: text_of(c).startswith("The bot in"))
    panel = next(m for m in reversed(tg.sent_messages(GROUP)) if "reply_markup" in m)
    assert panel["text"].startswith("The bot in this group (for its admins):")
    data = [d for row in callback_data(panel["reply_markup"]) for d in row]
    assert {"srv:on:0", "srv:lim:5", "srv:share:0", "srv:m:nano-banana-pro"} <= set(data)

    refused = await tg.press_button(GROUP, USER, panel["message_id"], "srv:on:0")
    await tg.wait_for("answerCallbackQuery", predicate=lambda c: c.params["text"] is not None)
    assert _answer(bot, refused) == views.GROUP_ADMINS_ONLY
    off = await tg.press_button(GROUP, GROUP_ADMIN, panel["message_id"], "srv:on:0")
    await until_answered(bot, off)
    await ask(
        bot, GROUP, USER, "/imagine a fox", texts.failed(rules_texts.switched_off("telegram"))
    )

    for choice in ("srv:on:1", "srv:lim:5", "srv:share:0", "srv:m:nano-banana-pro"):
        await until_answered(
            bot, await tg.press_button(GROUP, GROUP_ADMIN, panel["message_id"], choice)
        )
    expected = "default model: nano-banana-pro · images per member: 5 a day"
    await tg.wait_for("editMessageText", predicate=lambda c: expected in text_of(c))
    await tg.post_message(GROUP, USER, "/imagine a fox --count 4", chat_type="supergroup")
    job = await bot.delivered(1)
    await ask(
        bot, GROUP, USER, "/imagine a fox --count 2", texts.failed(rules_texts.server_quota(5))
    )
    assert job.request.model == "nano-banana-pro"
    assert job.owner.server == str(GROUP)
    result = next(m for m in reversed(tg.sent_messages(GROUP)) if "reply_markup" in m)
    reroll = next(d for row in callback_data(result["reply_markup"]) for d in row if d[0] == "d")
    pressed = await tg.press_button(GROUP, OTHER, result["message_id"], reroll)
    await until_answered(bot, pressed)
    assert _answer(bot, pressed) == rules_texts.NOT_YOUR_BUTTONS
    audit = await bot.store.audit_log(10)
    assert {(e.actor, e.action) for e in audit} == {(f"telegram:{GROUP_ADMIN}", "server")}


def _answer(bot: BotUnderTest, query_id: str) -> object:
    calls = bot.tg.calls_of("answerCallbackQuery")
    return next(c.params.get("text") for c in calls if c.params["callback_query_id"] == query_id)


async def until_answered(bot: BotUnderTest, query_id: str) -> None:
    await bot.tg.wait_for(
        "answerCallbackQuery", predicate=lambda c: c.params["callback_query_id"] == query_id
    )


async def test_info_and_settings_show_the_day(bot: BotUnderTest) -> None:
    await bot.start()
    await bot.tg.post_message(USER, USER, "/imagine a fox --count 2")
    await bot.delivered(1)
    await bot.tg.post_message(USER, USER, "/info")
    info = await said(
        bot,
        USER,
        rules_texts.usage(2, 0) + "\n\n" + texts.NOTHING_QUEUED + "\n\n"
        "Your defaults: Model: nano-banana-2-lite · Aspect ratio: 1:1 · "
        "Images per prompt: 4 · Upscale to: 2k · Language: your app's language.",
    )
    assert info.params["chat_id"] == USER
    await bot.tg.post_message(USER, USER, "/settings")
    settings = await bot.tg.wait_for(
        "sendMessage", predicate=lambda c: text_of(c).endswith(rules_texts.usage(2, 0))
    )
    assert text_of(settings[0]).startswith("Your defaults for new prompts")
