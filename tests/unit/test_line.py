"""How long a status (a new job's status message, a busy chat's board) can wait in its chat:
the real ``Line`` with Telegram's own limits, in virtual time (a loop whose clock jumps to its
next timer), so that a 12-second wait is asserted to the millisecond in no time at all."""

from __future__ import annotations

import asyncio
import itertools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bot.frontends.telegram.line import (
    PATIENCE,
    TELEGRAM_LIMITS,
    Line,
    Overtaken,
    Request,
    Urgency,
)

CHAT = 42
# The rate answers come at in a busy chat at 200 queued jobs (bench queue-1000, --quick): one
# every 1.5 s, against the chat's refill of one every 1.1 s.
EVERY = 1.5


class _Clock(selectors.DefaultSelector):
    """A selector that, with nothing ready, moves the loop's clock to its next timer instead
    of sleeping."""

    now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready:
            if timeout is None:
                raise RuntimeError("nothing left to happen: the test waits for what never comes")
            self.now += timeout
        return ready


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._clock = _Clock()
        super().__init__(self._clock)

    def time(self) -> float:
        return self._clock.now


def in_virtual_time(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    def run() -> None:
        with asyncio.Runner(loop_factory=_VirtualLoop) as runner:
            runner.run(test())

    return run


class Chat:
    """Requests to one private chat, each sent the moment its turn comes."""

    def __init__(self) -> None:
        self.line = Line(TELEGRAM_LIMITS)
        self.seq = itertools.count()
        self.went: list[tuple[str, float]] = []

    async def send(
        self, label: str, urgency: Urgency = Urgency.ANSWER, *, still_due: bool = True
    ) -> float:
        """When ``label`` went (its turn came: it is counted then)."""
        loop = asyncio.get_running_loop()
        request = Request(
            urgency, next(self.seq), CHAT, group=False, counted=True, message=None,
            requester=CHAT, granted=loop.create_future(), still_due=lambda: still_due,
        )  # fmt: skip
        self.line.add(request)
        await request.granted
        self.went.append((label, loop.time()))
        return loop.time()

    async def answers(self, first: float, count: int) -> list[float]:
        """``count`` answers, one every ``EVERY`` seconds from ``first``: when each went."""

        async def one(at: float) -> float:
            await asyncio.sleep(at - asyncio.get_running_loop().time())
            return await self.send("answer")

        return await asyncio.gather(*(one(first + n * EVERY) for n in range(count)))


@in_virtual_time
async def test_a_busy_chats_board_waits_at_most_its_patience_for_the_chat_to_rest() -> None:
    chat = Chat()
    # As traced: the first job's status message, then its answer and another's at once.
    for label in ("status", "answer", "answer"):
        await chat.send(label)
    answers = asyncio.create_task(chat.answers(first=1.9, count=8))
    await asyncio.sleep(0.7)  # the chat's later commands were stored: the board goes at status
    went = await chat.send("board", Urgency.STATUS)
    # Its chat never rested until 8 s; it took a place that was not the chat's last.
    assert 0.7 + PATIENCE <= went < 0.7 + PATIENCE + 1 / TELEGRAM_LIMITS.chat_rate
    assert await answers == pytest.approx([1.9 + n * EVERY for n in range(8)])  # none waited


@in_virtual_time
async def test_a_status_that_went_out_of_patience_leaves_the_next_waiting_as_long_again() -> None:
    chat = Chat()
    for label in ("status", "answer", "answer"):
        await chat.send(label)
    answers = asyncio.create_task(chat.answers(first=1.9, count=8))
    await asyncio.sleep(0.7)
    first = await chat.send("board", Urgency.STATUS)
    then = await chat.send("board's next command", Urgency.STATUS)
    # At most one place that is not the chat's last a ``PATIENCE``, whatever waits.
    assert then >= first + PATIENCE
    assert await answers == pytest.approx([1.9 + n * EVERY for n in range(8)])


@in_virtual_time
async def test_a_board_overtaken_at_its_turn_goes_anew_without_waiting_again() -> None:
    chat = Chat()
    for label in ("status", "answer", "answer"):
        await chat.send(label)
    answers = asyncio.create_task(chat.answers(first=1.9, count=8))
    await asyncio.sleep(0.7)
    with pytest.raises(Overtaken):  # it changed while it waited: it is made again, as it is now
        await chat.send("board as it was", Urgency.STATUS, still_due=False)
    turn = asyncio.get_running_loop().time()
    assert await chat.send("board as it is", Urgency.STATUS) == turn
    await answers


@in_virtual_time
async def test_a_status_whose_chat_rests_within_its_patience_leaves_it_two_places() -> None:
    chat = Chat()
    for label in ("status", "answer", "answer"):
        await chat.send(label)
    await asyncio.sleep(1.5)
    # The chat rests when its three places are back, at 3.3 s, before the status has waited
    # ``PATIENCE``: it waits for that, not for a place that is not the last.
    went = await chat.send("status", Urgency.STATUS)
    rested = 3 / TELEGRAM_LIMITS.chat_rate
    assert rested < 1.5 + PATIENCE
    assert went == pytest.approx(rested)
