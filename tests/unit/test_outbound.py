"""The order requests go to Telegram in (answers first, one message's edits in turn, a group's
rate in turns, a flood wait resting only its chat), and clipping as Telegram counts characters.

The real limiter, driven with plain coroutines for requests and budgets made small and fast.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.frontends.telegram import outbound
from bot.frontends.telegram.line import TELEGRAM_LIMITS, Urgency
from bot.frontends.telegram.outbound import Outbound, clip

CHAT, OTHER_CHAT, GROUP = 42, 43, -100123
# Two messages at once in a chat, then one every 250 ms: a refill slower than a loaded
# machine's pauses, which would otherwise let a request go before the one it must wait for.
SMALL = replace(TELEGRAM_LIMITS, chat_rate=4.0, chat_burst=2)


class Telegram:
    """Records the order requests reach it; ``hold`` keeps a request open until released."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.held: dict[str, asyncio.Event] = {}

    def hold(self, label: str) -> asyncio.Event:
        self.held[label] = asyncio.Event()
        return self.held[label]

    async def send(
        self,
        limiter: Outbound,
        label: str,
        *,
        endpoint: str = "sendMessage",
        chat: int = CHAT,
        urgency: Urgency = Urgency.ANSWER,
        requester: int | None = None,
        **data: Any,
    ) -> None:
        async def call() -> bool:
            self.order.append(label)
            if label in self.held:
                await self.held[label].wait()
                self.order.append(f"{label} done")
            return True

        outbound.answering.set(requester)
        with outbound.at(urgency):
            await limiter.process_request(call, (), {}, endpoint, {"chat_id": chat, **data}, None)


async def settle(tasks: list[asyncio.Task[None]]) -> None:
    async with asyncio.timeout(5):
        await asyncio.gather(*tasks)


async def test_answers_go_before_status_messages_and_those_before_progress() -> None:
    limiter, tg = Outbound(max_retries=0, limits=SMALL), Telegram()
    await tg.send(limiter, "status a")
    await tg.send(limiter, "status b")  # the chat's budget is used up for now
    waiting = [
        asyncio.create_task(
            tg.send(
                limiter,
                "progress",
                endpoint="editMessageText",
                message_id=1,
                urgency=Urgency.PROGRESS,
            )
        ),
        asyncio.create_task(tg.send(limiter, "status c", urgency=Urgency.STATUS)),
        asyncio.create_task(tg.send(limiter, "answer", endpoint="editMessageMedia", message_id=2)),
    ]
    await settle(waiting)
    assert tg.order == ["status a", "status b", "answer", "status c", "progress"]


@pytest.mark.parametrize("urgency", [Urgency.STATUS, Urgency.PROGRESS])
async def test_status_and_progress_leave_a_chats_last_place_for_an_answer(
    urgency: Urgency,
) -> None:
    limiter, tg = Outbound(max_retries=0, limits=SMALL), Telegram()
    await tg.send(limiter, "first")  # one of the chat's two places used
    later = asyncio.create_task(
        tg.send(limiter, "later", endpoint="editMessageText", message_id=1, urgency=urgency)
    )
    await asyncio.sleep(0)  # it is waiting its turn now
    assert tg.order == ["first"]  # it would take the last place: it waits for the refill
    await tg.send(limiter, "answer", endpoint="editMessageMedia", message_id=2)
    assert tg.order == ["first", "answer"]  # the place was there for the answer at once
    await settle([later])


async def test_an_answer_waiting_for_its_chat_goes_before_a_chat_action_waiting_for_room() -> None:
    # Room in all for two at once, then two a second: a chat action (which leaves two places
    # unused) waits a second for it; the chat's refill lets the answer go at 250 ms.
    slow = replace(SMALL, overall_rate=2.0, overall_burst=3)
    limiter, tg = Outbound(max_retries=0, limits=slow), Telegram()
    await tg.send(limiter, "a1")
    await tg.send(limiter, "a2")  # the chat's two places used, and two of the three in all
    answer = asyncio.create_task(tg.send(limiter, "answer"))
    await asyncio.sleep(0)
    action = asyncio.create_task(
        tg.send(limiter, "action", endpoint="sendChatAction", urgency=Urgency.PROGRESS)
    )
    await settle([answer, action])
    assert tg.order == ["a1", "a2", "answer", "action"]


async def test_one_messages_edits_go_in_turn_even_when_the_earlier_is_given_up() -> None:
    limiter, tg = Outbound(max_retries=0, limits=SMALL), Telegram()
    release = tg.hold("progress")
    progress = asyncio.create_task(
        tg.send(
            limiter, "progress", endpoint="editMessageText", message_id=7, urgency=Urgency.PROGRESS
        )
    )
    await asyncio.sleep(0.01)
    progress.cancel()  # the answer came: the report is dropped while Telegram has it
    with contextlib.suppress(asyncio.CancelledError):
        await progress
    answer = asyncio.create_task(
        tg.send(limiter, "answer", endpoint="editMessageMedia", message_id=7)
    )
    elsewhere = asyncio.create_task(tg.send(limiter, "another message", message_id=8))
    await asyncio.sleep(0.05)
    assert tg.order == ["progress", "another message"]  # the answer waits for that edit only
    release.set()
    await settle([answer, elsewhere])
    assert tg.order == ["progress", "another message", "progress done", "answer"]


async def test_in_a_group_members_take_turns() -> None:
    group = replace(SMALL, group_rate=2, group_period=0.5)  # two at once, then one every 250 ms
    limiter, tg = Outbound(max_retries=0, limits=group), Telegram()
    greedy = [
        asyncio.create_task(tg.send(limiter, f"a{n}", chat=GROUP, requester=1)) for n in range(5)
    ]
    await asyncio.sleep(0)  # a0 and a1 went at once; a2-a4 wait
    other = asyncio.create_task(
        tg.send(limiter, "b status", chat=GROUP, requester=2, urgency=Urgency.STATUS)
    )
    await settle([*greedy, other])
    # The other member's next job goes before the rest of the first member's answers.
    assert tg.order == ["a0", "a1", "b status", "a2", "a3", "a4"]


async def test_a_flood_wait_rests_its_chat_only_and_the_request_goes_again() -> None:
    limiter, tg = Outbound(max_retries=1, limits=SMALL), Telegram()
    refused = asyncio.Event()

    async def flooded() -> bool:
        if not refused.is_set():
            refused.set()
            raise RetryAfter(timedelta(milliseconds=300))
        tg.order.append("answer")
        return True

    answer = asyncio.create_task(
        limiter.process_request(flooded, (), {}, "sendPhoto", {"chat_id": CHAT}, None)
    )
    await refused.wait()
    await tg.send(limiter, "other chat", chat=OTHER_CHAT)  # not held up
    later = asyncio.create_task(tg.send(limiter, "same chat"))
    await asyncio.sleep(0.05)
    assert tg.order == ["other chat"]
    async with asyncio.timeout(5):
        await answer
    await settle([later])
    assert tg.order == ["other chat", "answer", "same chat"]


async def test_a_request_written_at_its_turn_says_what_is_true_when_it_goes() -> None:
    limiter, tg = Outbound(max_retries=0, limits=SMALL), Telegram()
    await tg.send(limiter, "a")
    await tg.send(limiter, "b")  # the chat's budget is used up for now
    said = {"place": "next"}
    data: dict[str, Any] = {"chat_id": CHAT, "text": "made: next"}

    async def call() -> bool:
        tg.order.append(data["text"])
        return True

    with outbound.written_at_turn(lambda: f"at its turn: {said['place']}"):
        board = asyncio.create_task(
            limiter.process_request(call, (), {}, "sendMessage", data, None)
        )
    await asyncio.sleep(0)  # waiting for room
    said["place"] = "running"
    async with asyncio.timeout(5):
        await board
    assert tg.order == ["a", "b", "at its turn: running"]


def test_clip_counts_utf16_units_and_never_splits_a_character() -> None:
    assert clip("short", 10) == "short"
    assert clip("x" * 11, 10) == "x" * 9 + "…"
    clipped = clip("🍌" * 10, 10)  # each banana is two UTF-16 units
    assert clipped == "🍌" * 4 + "…"
