"""A busy chat's board (``board``): the commands asked while another job of the chat is open
are listed on one status message, with the real python-telegram-bot against the fake Bot API.
Each command is shown before its answer, each job answered once, and no board is left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from math import inf

import pytest

from bot.core import texts
from bot.core.policy import Limits
from bot.core.service import progress
from bot.frontends.telegram import board, line
from bot.frontends.telegram.line import TELEGRAM_LIMITS
from tests.e2e.telegram.harness import (
    GROUP,
    OTHER,
    USER,
    BotUnderTest,
    spend_the_chats_budget,
    text_of,
    upstream_posts,
)
from tests.fakes.telegram_server import Call, FakeTelegramServer, FloodControl, Json


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - what the bot sends, as the fake records it
            await asyncio.sleep(0.01)


def boards(tg: FakeTelegramServer) -> list[Json]:
    return [m for m in tg.sent_messages(USER) if str(m.get("text", "")).startswith(board.HEADING)]


def answered_at(tg: FakeTelegramServer, command: Json) -> float:
    """When the command's picture went: a reply of its own, or a message replying to it (its
    status message, or a board) edited into it."""
    asked = command["message"]["message_id"]
    for call in tg.calls:
        if call.method == "sendPhoto":
            replied = (call.params.get("reply_parameters") or {}).get("message_id")
        elif call.method == "editMessageMedia":
            edited = tg.message(USER, call.params["message_id"]) or {}
            replied = edited.get("reply_to_message", {}).get("message_id")
        else:
            continue
        if replied == asked and call.error is None:
            return call.at
    raise AssertionError(f"command {asked} was never answered")


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
    await bot.start(limits=Limits(running_per_user=1))  # the second job waits: "queued"
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


async def test_a_groups_board_speaks_to_the_whole_group_not_to_one_member(
    bot: BotUnderTest,
) -> None:
    # A group's board lists every member's jobs, and the whole group reads it: a place in the
    # queue is said as it is true for any of them ("2 ahead"), never "ahead of you".
    await bot.start()
    tg = bot.tg
    bot.flow.hold()
    for n, member in enumerate((USER, OTHER) * 3):
        await tg.post_message(GROUP, member, f"/imagine fox {n} --count 1", chat_type="supergroup")

    def listing() -> str:
        return next(
            (
                str(m["text"])
                for m in tg.sent_messages(GROUP)
                if str(m.get("text", "")).startswith(board.HEADING) and "“fox 5”" in m["text"]
            ),
            "",
        )

    await until(lambda: "ahead" in listing())
    lines = listing().splitlines()[1:]
    assert len(lines) == 5, lines
    assert not [line for line in lines if "you" in line.split("”", 1)[1]], lines
    assert any(line.endswith("ahead.") for line in lines), lines
    bot.flow.release()
    for job_id in range(1, 7):
        await bot.delivered(job_id)


async def test_a_private_chats_board_is_as_true_and_queue_still_says_you(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    bot.flow.hold()
    for n in range(6):
        await tg.post_message(USER, USER, f"/imagine fox {n} --count 1")
    await until(lambda: any("“fox 5” — ⏳ Queued — 3 ahead." in m["text"] for m in boards(tg)))
    await tg.post_message(USER, USER, "/queue")
    [queue] = await tg.wait_for(
        "sendMessage",
        predicate=lambda c: "“fox 5”" in text_of(c) and not text_of(c).startswith(board.HEADING),
    )
    assert "“fox 5” — ⏳ Queued — 3 ahead of you." in text_of(queue)  # the reader's own jobs
    bot.flow.release()
    for job_id in range(1, 7):
        await bot.delivered(job_id)


async def test_a_busy_chats_jobs_cost_two_calls_each_however_long_they_wait(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Progress told ten times as often as shipped: each job's place and its run are reported
    # every second, and each job waits for the chat's others before it.
    monkeypatch.setattr(progress, "SETTLE", 0.2)
    monkeypatch.setattr(progress, "PACE", 1.0)
    monkeypatch.setattr(texts, "SHOWN_ELAPSED", 0.5)
    await bot.start(limits=Limits(running_per_user=1))
    tg = bot.tg
    bot.flow.latency = 0.8
    asked = [await tg.post_message(USER, USER, f"/imagine fox {n} --count 1") for n in range(5)]
    for job_id in range(1, 6):
        await bot.delivered(job_id, timeout=15)
    await until(lambda: not boards(tg))

    calls = [c for c in tg.calls if c.params.get("chat_id") == USER]
    assert len(calls) <= 2 * len(asked)  # acknowledged, told as the calls left allow, answered
    assert [len(answers_to(tg, command)) for command in asked] == [1, 1, 1, 1, 1]
    assert not [m for m in tg.sent_messages(USER) if "photo" not in m]  # no "queued" left


async def test_a_boards_only_job_answered_while_the_board_is_on_its_way_takes_its_place(
    bot: BotUnderTest,
) -> None:
    # The board is with Telegram for a second and a half; its only job is answered meanwhile
    # (after its turn came: half a second). The answer waits for the board and takes its
    # place, as a status message's does: no picture of its own, no board left to delete (two
    # calls for each job).
    await bot.start()
    tg = bot.tg
    tg.delays = {"sendMessage": 1.5}
    bot.flow.latency = 0.5
    bot.flow.stall_next(3.0)  # the first job keeps the chat busy
    await tg.post_message(USER, USER, "/imagine fox 0 --count 1")
    await until(lambda: upstream_posts(bot.flow))
    command = await tg.post_message(USER, USER, "/imagine fox 1 --count 1")
    await bot.delivered(2)
    await bot.delivered(1)
    await asyncio.sleep(0.5)  # nothing else comes

    calls = [c for c in tg.calls if c.params.get("chat_id") == USER]
    assert sorted(c.method for c in calls) == [
        "editMessageMedia",
        "editMessageMedia",
        "sendMessage",
        "sendMessage",
    ]
    assert len(answers_to(tg, command)) == 1  # the board, which replied to its command
    assert not boards(tg)


async def test_a_board_says_the_places_true_when_it_goes(bot: BotUnderTest) -> None:
    # Its chat's budget spent: the board waits for room while the jobs it lists start. It says
    # where they are when it goes, not the places they took when they were asked (both were
    # "next" then).
    await spend_the_chats_budget(bot)
    tg = bot.tg
    bot.flow.hold()
    for n in range(3):  # one by one: the first has its own status message, the others the board
        await tg.post_message(USER, USER, f"/imagine fox {n} --count 1")
        await bot.stored(n + 1)

    def both(call: Call) -> bool:
        return text_of(call).startswith(board.HEADING) and "“fox 2”" in text_of(call)

    await until(lambda: any(map(both, tg.calls)))
    listing = next(filter(both, tg.calls))
    one, two = (await bot.job(2)).public_id, (await bot.job(3)).public_id
    assert text_of(listing).splitlines()[1:] == [
        f"#{one} “fox 1” — {texts.STARTED}",  # it runs (its user runs two at once)
        f"#{two} “fox 2” — {texts.queued_for_all(1)}",
    ]
    bot.flow.release()
    for job_id in range(1, 4):
        await bot.delivered(job_id)


async def test_a_board_waits_at_most_its_patience_behind_its_chats_answers(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chat's budget (burst 3) refilled every 0.4 s and spent; then an answer every 0.55 s,
    # one job at a time: slower than the refill, yet the chat doesn't rest for seconds (as at
    # 200 queued jobs: an answer every 1.5 s against a refill every 1.1 s). Patience as much
    # shorter as the refill is. Resting, the chat would take the board at 4.4 s, after every
    # answer but the last.
    monkeypatch.setattr(line, "PATIENCE", 0.8)
    bot.flood = replace(TELEGRAM_LIMITS, chat_rate=2.5)
    bot.tg.flood = FloodControl(chat_per_second=2.5)  # and no place it takes is refused
    await bot.start(limits=Limits(running_per_user=1))
    tg = bot.tg
    for _ in range(3):
        await tg.post_message(USER, USER, "/start")
    await tg.wait_for("sendMessage", count=3)
    bot.flow.latency = 0.55
    asked = [await tg.post_message(USER, USER, f"/imagine fox {n} --count 1") for n in range(8)]
    for job_id in range(1, 9):
        await bot.delivered(job_id)

    shown = [next((c.at for c in tg.calls if f"“fox {n}”" in text_of(c)), inf) for n in range(8)]
    answered = [answered_at(tg, command) for command in asked]
    # From the fourth on (answered from 2.2 s), each is on the board before its answer.
    assert all(at < answer for at, answer in zip(shown[3:], answered[3:], strict=True)), (
        shown,
        answered,
    )
