"""A command whose answer is expected soon is not acknowledged before it (``status_book``,
``HOLD``): with the real python-telegram-bot against the fake Bot API, a fast upstream's picture
is the only message; a slow upstream's job is acknowledged at once; and a job expected soon
that turns out slow is acknowledged at the bound, its answer then taking the message's place.
A held job keeps neither its sender's next commands waiting nor its chat's board from listing
it."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.core.service.progress import TYPICAL_AFTER
from bot.frontends.telegram import board, status_book, updates
from bot.frontends.telegram.status import UNDER_WAY, saying
from tests.e2e.telegram.harness import ADMIN, OTHER, USER, BotUnderTest, text_of
from tests.fakes.telegram_server import Call, FakeTelegramServer

# The upstream answered this many jobs before: the service knows its usual time from then on.
KNOWN_AFTER = TYPICAL_AFTER


def to_the_chat(tg: FakeTelegramServer, since: int) -> list[Call]:
    return [c for c in tg.calls[since:] if in_the_chat(c)]


def in_the_chat(call: Call) -> bool:
    return call.params.get("chat_id") == USER


async def serve_before(bot: BotUnderTest) -> None:
    """``KNOWN_AFTER`` jobs answered at the upstream's latency now, side by side (each from a
    user of another chat)."""
    for i in range(KNOWN_AFTER):
        await bot.tg.post_message(OTHER + i, OTHER + i, f"/imagine warm {i} --count 1")
    for job_id in range(1, KNOWN_AFTER + 1):
        await bot.delivered(job_id)


async def test_a_fast_upstream_s_picture_is_the_only_message(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(status_book, "HOLD", 0.5)
    await bot.start()
    await serve_before(bot)
    since = len(bot.tg.calls)
    command = await bot.tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(KNOWN_AFTER + 1)
    await asyncio.sleep(status_book.HOLD + 0.2)  # past the longest hold: nothing more comes

    calls = to_the_chat(bot.tg, since)
    assert [c.method for c in calls] == ["sendPhoto"]
    assert calls[0].params["reply_parameters"]["message_id"] == command["message"]["message_id"]


async def test_a_slow_upstream_s_job_is_acknowledged_at_once(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An upstream that takes longer than a command is held (as Flow's 10-30 s do).
    monkeypatch.setattr(status_book, "HOLD", 0.8)
    bot.flow.latency = 1.0
    await bot.start()
    await serve_before(bot)
    since = len(bot.tg.calls)
    bot.flow.hold()
    asked = time.monotonic()
    await bot.tg.post_message(USER, USER, "/imagine a fox --count 1")
    [acknowledged] = await bot.tg.wait_for("sendMessage", predicate=in_the_chat)

    assert acknowledged.at - asked < status_book.HOLD  # not held: it went at once
    assert text_of(acknowledged) == saying(UNDER_WAY)
    bot.flow.release()
    await bot.delivered(KNOWN_AFTER + 1)
    assert [c.method for c in to_the_chat(bot.tg, since)] == ["sendMessage", "editMessageMedia"]


async def test_a_job_expected_soon_that_is_slow_is_acknowledged_at_the_bound(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    await serve_before(bot)
    since = len(bot.tg.calls)
    bot.flow.hold()  # expected in a moment, it doesn't come
    asked = time.monotonic()
    await bot.tg.post_message(USER, USER, "/imagine a fox --count 1")
    [acknowledged] = await bot.tg.wait_for("sendMessage", predicate=in_the_chat)

    assert to_the_chat(bot.tg, since) == [acknowledged]
    assert not (await bot.job(KNOWN_AFTER + 1)).state.final  # it went on its own
    waited = acknowledged.at - asked
    assert waited >= status_book.AFTER_ANSWER  # held while the answer was due
    assert waited < status_book.HOLD + 1.0  # and at most the bound (and the pass through)
    bot.flow.release()
    await bot.delivered(KNOWN_AFTER + 1)
    assert [c.method for c in to_the_chat(bot.tg, since)] == ["sendMessage", "editMessageMedia"]


async def test_a_busy_chat_s_jobs_answered_soon_are_never_listed(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(status_book, "HOLD", 0.5)
    await bot.start()
    await serve_before(bot)
    since = len(bot.tg.calls)
    bot.flow.hold()
    await bot.tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.stored(KNOWN_AFTER + 1)
    await bot.tg.post_message(USER, USER, "/imagine a hare --count 1")  # on the chat's board
    await bot.stored(KNOWN_AFTER + 2)
    bot.flow.release()
    await bot.delivered(KNOWN_AFTER + 2)
    await bot.delivered(KNOWN_AFTER + 1)
    await asyncio.sleep(status_book.HOLD + 0.2)  # past the longest hold: nothing more comes

    assert [c.method for c in to_the_chat(bot.tg, since)] == ["sendPhoto", "sendPhoto"]


async def test_a_held_acknowledgement_keeps_none_of_the_sender_s_next_commands_waiting(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each held 3 s; a sender's updates are handled four at a time (``updates.PER_SENDER``).
    monkeypatch.setattr(status_book, "HOLD", 4.0)
    monkeypatch.setattr(status_book, "AFTER_ANSWER", 3.0)
    await bot.start()
    await serve_before(bot)
    bot.flow.hold()
    for i in range(updates.PER_SENDER + 1):
        await bot.tg.post_message(USER, USER, f"/imagine fox {i} --count 1")
    await bot.stored(KNOWN_AFTER + updates.PER_SENDER + 1, timeout=1.5)  # not after a hold
    bot.flow.release()
    for job_id in range(KNOWN_AFTER + 1, KNOWN_AFTER + updates.PER_SENDER + 2):
        await bot.delivered(job_id)


async def test_a_job_held_in_a_chat_whose_board_goes_is_listed_on_it_at_once(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Held far longer than the test waits: what shows it is the board, not its hold's end.
    monkeypatch.setattr(status_book, "HOLD", 30.0)
    monkeypatch.setattr(status_book, "AFTER_ANSWER", 29.0)
    await bot.start()
    await serve_before(bot)
    since = len(bot.tg.calls)
    bot.flow.hold()  # the fox, expected in a moment, doesn't come
    await bot.tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.stored(KNOWN_AFTER + 1)
    await bot.tg.post_message(ADMIN, ADMIN, "/admin pause")  # nobody can tell the hare's time
    await bot.tg.wait_for("sendMessage", predicate=lambda c: c.params.get("chat_id") == ADMIN)
    await bot.tg.post_message(USER, USER, "/imagine a hare --count 1")  # acknowledged at once
    [first] = await bot.tg.wait_for("sendMessage", predicate=in_the_chat)
    if "a fox" not in text_of(first):
        await bot.tg.wait_for("editMessageText", predicate=lambda c: "a fox" in text_of(c))

    shown = to_the_chat(bot.tg, since)
    assert all(text_of(c).startswith(board.HEADING) for c in shown)  # no message of its own
    await bot.tg.post_message(ADMIN, ADMIN, "/admin resume")
    bot.flow.release()
    await bot.delivered(KNOWN_AFTER + 1)
    await bot.delivered(KNOWN_AFTER + 2)
