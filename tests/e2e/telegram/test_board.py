"""A busy chat's board (``board``): the commands asked while another job of the chat is open
are listed on one status message, with the real python-telegram-bot against the fake Bot API.
Each command is shown before its answer, each job answered once, and no board is left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.frontends.telegram import board
from tests.e2e.telegram.harness import USER, BotUnderTest, spend_the_chats_budget, text_of
from tests.fakes.telegram_server import FakeTelegramServer, Json


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - what the bot sends, as the fake records it
            await asyncio.sleep(0.01)


def boards(tg: FakeTelegramServer) -> list[Json]:
    return [m for m in tg.sent_messages(USER) if str(m.get("text", "")).startswith(board.HEADING)]


def answers_to(tg: FakeTelegramServer, command: Json) -> list[Json]:
    asked = command["message"]["message_id"]
    return [
        m
        for m in tg.sent_messages(USER)
        if "photo" in m and m.get("reply_to_message", {}).get("message_id") == asked
    ]


async def test_commands_asked_while_the_chat_is_busy_are_listed_on_one_board(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    bot.flow.hold()  # nothing is answered until every command is shown
    asked = [await tg.post_message(USER, USER, f"/imagine fox {n} --count 1") for n in range(4)]

    def listed() -> bool:
        return any(all(f"“fox {n}”" in m["text"] for n in (1, 2, 3)) for m in boards(tg))

    await until(listed)
    [listing] = boards(tg)
    assert "“fox 0”" not in listing["text"]  # the first has its status message of its own
    assert [m["text"] for m in tg.sent_messages(USER) if m is not listing] == [
        tg.calls_of("sendMessage")[0].params["text"]
    ]
    bot.flow.release()
    for job_id in range(1, 5):
        await bot.delivered(job_id)

    await until(lambda: not boards(tg))  # the board goes with its last line
    assert [len(answers_to(tg, command)) for command in asked] == [1, 1, 1, 1]
    assert not [m for m in tg.sent_messages(USER) if "photo" not in m]  # no "queued" left


async def test_jobs_answered_before_the_boards_turn_never_show_it(bot: BotUnderTest) -> None:
    # The chat's budget a message every 0.4 s, spent by three /start answers: the status
    # message and the board wait for room, and the fake upstream answers in the meantime.
    since = await spend_the_chats_budget(bot)
    tg = bot.tg
    asked = [await tg.post_message(USER, USER, f"/imagine fox {n} --count 1") for n in range(2)]
    await bot.delivered(1)
    await bot.delivered(2)
    await asyncio.sleep(1.5)  # the status message's and the board's turns have come and gone

    calls = [c for c in tg.calls[since:] if c.params.get("chat_id") == USER]
    assert [c.method for c in calls] == ["sendPhoto", "sendPhoto"]
    assert [len(answers_to(tg, command)) for command in asked] == [1, 1]


async def test_the_board_is_in_its_readers_language(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    tg.set_language(USER, "de")
    bot.flow.hold()
    for n in range(2):
        await tg.post_message(USER, USER, f"/imagine fox {n} --count 1")
    [listing] = await tg.wait_for(
        "sendMessage", predicate=lambda c: "“fox 1”" in text_of(c), timeout=5
    )
    assert text_of(listing).splitlines()[0] == "Aufträge in diesem Chat:"
    assert "In der Warteschlange" in text_of(listing)
    bot.flow.release()
    await bot.delivered(2)
