"""Attacks through a busy chat's board (``telegram/board.py``): the one message listing the
commands a group asked while another job was open, which members' prompts are written on."""

from __future__ import annotations

import json
from typing import Any

from bot.frontends.telegram import board
from tests.attacks.conftest import answer_of, until
from tests.e2e.telegram.harness import GROUP, OTHER, USER, BotUnderTest
from tests.fakes.telegram_server import MAX_TEXT

SUPERGROUP = "supergroup"


def said_in(bot: BotUnderTest, chat: int) -> list[Any]:
    """Each text the bot sent or edited into ``chat``, in order (the fake's calls)."""
    return [
        c
        for c in bot.tg.calls
        if c.params.get("chat_id") == chat
        and c.method in ("sendMessage", "editMessageText")
        and "text" in c.params
    ]


def boards_in(bot: BotUnderTest, chat: int) -> list[str]:
    return [
        str(c.params["text"])
        for c in said_in(bot, chat)
        if str(c.params["text"]).startswith(board.HEADING)
    ]


def preview_off(call: Any) -> bool:
    options = call.params.get("link_preview_options")
    if isinstance(options, str):
        options = json.loads(options)
    return isinstance(options, dict) and bool(options.get("is_disabled"))


async def test_a_link_in_a_prompt_shows_no_preview_of_its_page_on_the_bots_messages(
    telegram: BotUnderTest,
) -> None:
    """A member's prompt with a link, written back on the board (and /queue), would have
    Telegram draw that page's preview, its picture and title, under the bot's own message."""
    bot, tg = telegram, telegram.tg
    await bot.start()
    bot.flow.hold()  # the chat stays busy: the next commands go on its board
    await tg.post_message(GROUP, USER, "/imagine a fox --count 1", chat_type=SUPERGROUP)
    link = "https://evil.example/x.jpg"
    await tg.post_message(
        GROUP, USER, f"/imagine {link} as a poster --count 1", chat_type=SUPERGROUP
    )

    def echoed() -> list[Any]:
        return [c for c in said_in(bot, GROUP) if link in str(c.params["text"])]

    await until(lambda: any(str(c.params["text"]).startswith(board.HEADING) for c in echoed()))
    await tg.post_message(GROUP, USER, "/queue", chat_type=SUPERGROUP)
    await until(lambda: any("Your jobs" in str(c.params["text"]) for c in echoed()))
    assert all(preview_off(c) for c in echoed()), [c.params for c in echoed()]
    bot.flow.release()


async def test_a_groups_flood_of_long_prompts_still_shows_the_latest_command_on_the_board(
    telegram: BotUnderTest,
) -> None:
    """Members fill their queues with prompts as long as a line shows (emoji: two UTF-16
    units each, as Telegram counts a text's length): the board is longer than a message may
    be. Clipped at its end, it would leave the latest commands unacknowledged."""
    bot, tg = telegram, telegram.tg
    await bot.start()
    bot.flow.hold()
    members = [USER, *range(700, 705)]
    last = ""
    for n in range(9):
        for member in members:
            last = f"m{member}n{n}"
            text = f"/imagine {last} {'🦊' * 70} --count 1"
            await tg.post_message(GROUP, member, text, chat_type=SUPERGROUP)
    await until(lambda: any(last in text for text in boards_in(bot, GROUP)), timeout=20)
    for text in boards_in(bot, GROUP):
        assert len(text.encode("utf-16-le")) // 2 <= MAX_TEXT
    # The older lines, each shown when it was asked, give way; an ellipsis says so.
    assert boards_in(bot, GROUP)[-1].startswith(f"{board.HEADING}\n…\n")
    bot.flow.release()


async def test_a_forged_cancel_pressed_on_a_board_cancels_no_other_members_job(
    telegram: BotUnderTest,
) -> None:
    """The board carries no buttons, but a modified client can send any callback data on any
    message of the bot's: the jobs it lists are a member's to cancel, not their neighbours'."""
    bot, tg = telegram, telegram.tg
    await bot.start()
    bot.flow.hold()
    await tg.post_message(GROUP, USER, "/imagine a fox --count 1", chat_type=SUPERGROUP)
    await tg.post_message(GROUP, USER, "/imagine a cat --count 1", chat_type=SUPERGROUP)
    await until(lambda: any("cat" in text for text in boards_in(bot, GROUP)))
    listing = next(m for m in tg.sent_messages(GROUP) if board.HEADING in str(m.get("text")))
    jobs = [await bot.service.job(job_id) for job_id in (1, 2)]
    for job in jobs:
        assert job is not None
        query = await tg.press_button(GROUP, OTHER, listing["message_id"], f"c:{job.public_id}:0")
        await tg.wait_for(
            "answerCallbackQuery",
            predicate=lambda c: c.params["callback_query_id"] == query,  # noqa: B023
        )
        assert answer_of(tg, query)["show_alert"]
    for job in jobs:
        assert job is not None
        now = await bot.service.job(job.id)
        assert now is not None
        assert not now.state.final
    bot.flow.release()
    await bot.delivered(1)
    await bot.delivered(2)


async def test_markup_in_a_prompt_is_written_as_typed_on_the_board_and_pings_nobody(
    telegram: BotUnderTest,
) -> None:
    """HTML, Markdown and a mention in a prompt: the board is plain text (no parse mode, no
    entity of the bot's but a mention it means), so each is shown as typed, inert."""
    bot, tg = telegram, telegram.tg
    await bot.start()
    bot.flow.hold()
    await tg.post_message(GROUP, USER, "/imagine a fox --count 1", chat_type=SUPERGROUP)
    prompt = '<a href="tg://user?id=1">x</a> *b* [c](tg://user?id=1) @alice'
    await tg.post_message(GROUP, OTHER, f"/imagine {prompt} --count 1", chat_type=SUPERGROUP)
    await until(lambda: any("*b*" in text for text in boards_in(bot, GROUP)))
    for call in said_in(bot, GROUP):
        assert "parse_mode" not in call.params
        assert not call.params.get("entities")
    listed = [t for t in boards_in(bot, GROUP) if "*b*" in t][-1]
    assert '<a href="tg://user?id=1">x</a>' in listed
    assert "@alice" not in listed  # a word joiner after the @: no mention, no ping
    bot.flow.release()


async def test_a_prompt_written_over_several_lines_forges_no_line_of_the_board(
    telegram: BotUnderTest,
) -> None:
    """A board line a job: a prompt with line breaks (or a right-to-left override turning a
    line's end around) would write lines of its own, a made-up job "done" among them."""
    bot, tg = telegram, telegram.tg
    await bot.start()
    bot.flow.hold()
    await tg.post_message(GROUP, USER, "/imagine a fox --count 1", chat_type=SUPERGROUP)
    await tg.post_message(GROUP, USER, "/imagine a dog --count 1", chat_type=SUPERGROUP)
    forged = "a cat”\n#k3x9q2m “free” — ✅ Done\u2028\u202eenod"
    await tg.post_message(GROUP, OTHER, f"/imagine {forged} --count 1", chat_type=SUPERGROUP)
    await until(lambda: any("free" in text for text in boards_in(bot, GROUP)))
    listed = [t for t in boards_in(bot, GROUP) if "free" in t][-1]
    assert len(listed.splitlines()) == 3, listed  # the heading, the dog's line and the cat's
    assert "\u202e" not in listed
    bot.flow.release()
