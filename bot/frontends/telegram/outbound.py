"""Every request the bot sends to Telegram passes here (python-telegram-bot's rate limiter is the
one hook all of them go through): its texts and button labels are rendered in the reader's
language (``i18n.reader()``: the sender of the update, or the owner of the job being answered),
then cut to Telegram's lengths, so that no answer is lost to "message is too long" whatever it
quotes; and it waits its turn within Telegram's flood limits, so that the bot meets no 429 (each
costs a second or more of silence in that chat). (An album's captions, a result's caption and a
text with entities are rendered where they are made: entity offsets count the words as sent.)

The turn order is what the user sees first: answers (images, failures, replies to what a user
just did) before new jobs' status messages or listing, and those before live progress and chat
actions, which also leave part of every budget unused, so that an answer never waits behind
them. In a group, the people the bot is answering take turns (each their most urgent), so one
member's ten answers don't hold back another member's next job. Edits of one message go out
one at a time, in the order made: a progress edit already sent when the answer comes lands
before it.

Whom a request answers is ``answering`` (set for each update, its sender, and by the delivery of
a job, its owner), how urgent it is ``urgency``; tasks started from there inherit both. A request
made ``unless_overtaken`` asks, when its turn comes, whether it should still go: a job's status
message whose answer came first is never sent (``Overtaken``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Coroutine, Hashable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum
from typing import Any

from telegram import TelegramObject, Update
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter, ContextTypes

from bot.core.i18n import Language, reader
from bot.frontends.telegram.bucket import Bucket

# Bot API: message text 1-4096 characters, captions 0-1024, callback query answers 0-200.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ALERT = 200


@dataclass(frozen=True)
class FloodLimits:
    """How fast the bot may send: in all and in each chat, ``burst`` requests at once, then
    ``rate`` a second; in each group, ``group_rate`` messages every ``group_period`` seconds."""

    overall_rate: float
    overall_burst: int
    chat_rate: float
    chat_burst: int
    group_rate: int
    group_period: float


# Telegram's flood limits as its bot FAQ gives them (core.telegram.org/bots/faq, "My bot is
# hitting limits"; our notes: shared/reference/platforms.md), the bot's default: about 30
# messages a second in all, one a second in a chat ("short bursts" allowed: we take 3), 20 a
# minute in a group. Sends and edits count in a chat (tdlib/telegram-bot-api#648); everything
# sent to a chat counts in all, as python-telegram-bot's own limiter counts. Telegram counts
# when a request arrives, and requests sent in one order may arrive closer together: a chat's
# messages are spaced a tenth of a second more than its limit, and the burst in all is short
# of 30 by what a tenth of a second brings.
TELEGRAM_LIMITS = FloodLimits(
    overall_rate=30.0,
    overall_burst=27,
    chat_rate=1.0 / 1.1,
    chat_burst=3,
    group_rate=20,
    group_period=60.0,
)

MESSAGES = frozenset(
    (
        "sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "editMessageText",
        "editMessageCaption", "editMessageReplyMarkup", "editMessageMedia",
    )
)  # fmt: skip
# What each urgency leaves unused of the overall, a chat's and a group's budget, for more urgent
# requests that may come meanwhile (answers come in waves, a slot's worth of jobs at once): the
# rest go only while most of the overall burst is left, and in a chat only when its budget is
# rested (the FAQ's 1/s in a chat, 30/s in all), but for a busy chat's board, which leaves the
# last place: such a budget is seldom rested, and a new command is to be seen within a second.
SPARE = {
    "ANSWER": (0, 0, 0),
    "STATUS": (20, 2, 1),
    "LISTING": (20, 1, 1),
    "PROGRESS": (20, 2, 5),
}

Json = dict[str, Any]


class Urgency(IntEnum):
    ANSWER = 0  # an answer, a failure, a reply to what a user just did
    STATUS = 1  # a new job's status message
    LISTING = 2  # new jobs on a busy chat's board
    PROGRESS = 3  # live progress, chat actions: a courtesy


answering: ContextVar[int | None] = ContextVar("answering", default=None)
urgency: ContextVar[Urgency] = ContextVar("urgency", default=Urgency.ANSWER)
# Asked once, when the request's turn comes: True if it should still go (see ``unless_overtaken``).
_still_due: ContextVar[Callable[[], bool] | None] = ContextVar("still_due", default=None)


class Overtaken(Exception):
    """A request withdrawn when its turn came: what it would say was overtaken."""


@contextlib.contextmanager
def at(level: Urgency) -> Iterator[None]:
    """Send what is sent inside at ``level``."""
    token = urgency.set(level)
    try:
        yield
    finally:
        urgency.reset(token)


@contextlib.contextmanager
def unless_overtaken(still_due: Callable[[], bool]) -> Iterator[None]:
    """Send what is sent inside only if ``still_due()`` says so when its turn comes (called
    then, once a turn, in the limiter's own step: nothing else runs between that answer and
    the request going); otherwise it raises ``Overtaken`` and nothing is sent."""
    token = _still_due.set(still_due)
    try:
        yield
    finally:
        _still_due.reset(token)


def clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, counted as Telegram counts them (UTF-16 units)."""
    units = text.encode("utf-16-le")
    if len(units) <= 2 * limit:
        return text
    # "ignore" drops half of a surrogate pair cut in two.
    return units[: 2 * (limit - 1)].decode("utf-16-le", errors="ignore") + "…"


async def note_sender(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Run first for every update: what the bot sends for it answers its sender."""
    if isinstance(update, Update) and update.effective_sender is not None:
        answering.set(update.effective_sender.id)


@dataclass(eq=False)
class _Request:
    urgency: Urgency
    seq: int
    chat: int | str
    group: bool
    counted: bool  # a message: counts in its chat's and group's budget
    message: tuple[int | str, int] | None  # the message it edits or deletes
    requester: Hashable
    granted: asyncio.Future[None]
    still_due: Callable[[], bool] | None = None


class Outbound(BaseRateLimiter[int]):
    """Telegram's flood limits, with answers first, one message's edits in order and a
    group's rate shared in turns; flood waits (429) rest that chat and are retried."""

    def __init__(self, *, max_retries: int, limits: FloodLimits = TELEGRAM_LIMITS) -> None:
        self._max_retries = max_retries
        self._limits = limits
        self._overall = Bucket(limits.overall_rate, limits.overall_burst)
        self._chats: dict[int | str, Bucket] = {}
        self._groups: dict[int | str, Bucket] = {}
        self._turns: dict[tuple[int | str, Hashable], int] = {}  # (group, requester) → turn
        self._waiting: list[_Request] = []
        self._sending: set[tuple[int | str, int]] = set()  # messages with an edit on its way
        self._seq = itertools.count()
        self._turn = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | Json | list[Json]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | Json | list[Json]:
        # ``data`` is the request's own parameters (ExtBot passes it in ``args`` as well).
        text_limit = MAX_ALERT if endpoint == "answerCallbackQuery" else MAX_TEXT
        language = reader()
        for name, limit in (("text", text_limit), ("caption", MAX_CAPTION)):
            value = data.get(name)
            if isinstance(value, str):
                data[name] = clip(language.render(value), limit)
        markup = data.get("reply_markup")
        if isinstance(markup, TelegramObject):  # button labels, a reply's placeholder
            data["reply_markup"] = _rendered(markup.to_dict(), language)
        chat = _chat(data.get("chat_id"))
        if chat is None:  # not sent to a chat (files, callback answers, settings): not limited
            return await callback(*args, **kwargs)
        message_id = data.get("message_id")
        request = _Request(
            urgency.get(),
            next(self._seq),
            chat,
            group=isinstance(chat, str) or chat < 0,
            counted=endpoint in MESSAGES,
            message=(chat, message_id) if isinstance(message_id, int) else None,
            requester=answering.get(),
            granted=asyncio.get_running_loop().create_future(),
            still_due=_still_due.get(),
        )
        retries = rate_limit_args if rate_limit_args is not None else self._max_retries
        for attempt in itertools.count():
            await self._turn_of(request)
            try:
                return await self._send(request, callback(*args, **kwargs))
            except RetryAfter as exc:
                if attempt >= retries:
                    raise
                # Back in line at once, in its place: its chat rests until the flood wait is
                # over, then it goes before whatever came to that chat after it. (Waiting
                # outside the line, it raced the line's own timer for the same moment.)
                self._rest(request, exc.retry_after)
                request.granted = asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")

    async def _turn_of(self, request: _Request) -> None:
        self._waiting.append(request)
        self._pump()
        try:
            await request.granted
        except asyncio.CancelledError:
            granted = request.granted
            if granted.done() and not granted.cancelled() and granted.exception() is None:
                self._finish(request)  # granted just as its sender went: give the turn back
            else:
                self._waiting.remove(request)
            raise

    async def _send(
        self, request: _Request, call: Coroutine[Any, Any, bool | Json | list[Json]]
    ) -> bool | Json | list[Json]:
        # Shielded: a sender that gives up (a progress edit the answer overtook) must not cut
        # a request in half; the message's next edit waits until Telegram has this one.
        sending = asyncio.ensure_future(call)
        sending.add_done_callback(lambda task: self._sent(request, task))
        return await asyncio.shield(sending)

    def _sent(self, request: _Request, task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()  # its sender may be gone: the outcome is seen here at least
        self._finish(request)

    def _finish(self, request: _Request) -> None:
        if request.message is not None:
            self._sending.discard(request.message)
            self._pump()

    def _rest(self, request: _Request, retry_after: int | timedelta) -> None:
        """Telegram refused with a flood wait: nothing more to that chat (and its group) until
        it is over, and this request goes again then."""
        seconds = retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after
        until = asyncio.get_running_loop().time() + seconds
        for bucket in self._budgets(request)[1:]:  # not the others' budget: theirs is fine
            bucket.resting_until = max(bucket.resting_until, until)

    # Whose turn it is.

    def _pump(self) -> None:
        """Let go every waiting request that fits now, most urgent first; then set a timer
        for when the next one will."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = asyncio.get_running_loop().time()
        while (request := self._next(now)) is not None:
            self._waiting.remove(request)
            if request.still_due is not None and not request.still_due():
                request.granted.set_exception(Overtaken())
                continue
            for bucket in self._budgets(request):
                bucket.take()
            if request.message is not None:
                self._sending.add(request.message)
            if request.group:
                self._turns[(request.chat, request.requester)] = next(self._turn)
            request.granted.set_result(None)
        waits = [self._wait(r, now) for r in self._waiting]
        soonest = min((w for w in waits if w is not None), default=None)
        if soonest is not None:
            self._timer = asyncio.get_running_loop().call_later(soonest, self._pump)
        self._forget_idle()

    def _next(self, now: float) -> _Request | None:
        """The most urgent waiting request that may go now. In a group, only the one whose
        turn it is may go: another member's request doesn't take a turn that waits for room."""
        turn: dict[int | str, _Request] = {}
        for request in self._waiting:
            if request.group and request.counted:
                ahead = turn.get(request.chat)
                if ahead is None or self._before(request, ahead):
                    turn[request.chat] = request
        chosen: _Request | None = None
        for request in self._waiting:
            if request.group and request.counted and turn[request.chat] is not request:
                continue
            if chosen is not None and self._before(chosen, request):
                continue
            if self._wait(request, now) == 0.0:
                chosen = request
        return chosen

    def _before(self, one: _Request, other: _Request) -> bool:
        """Whether ``one`` goes before ``other``: progress after everything else; in one group,
        the member who had the least recent turn (their answer or their next job's status);
        then the more urgent; then the one made first."""
        progress = Urgency.PROGRESS
        if (one.urgency is progress) != (other.urgency is progress):
            return other.urgency is progress
        if one.group and one.chat == other.chat:
            mine = self._turns.get((one.chat, one.requester), 0)
            theirs = self._turns.get((other.chat, other.requester), 0)
            if mine != theirs:
                return mine < theirs
        if one.urgency != other.urgency:
            return one.urgency < other.urgency
        return one.seq < other.seq

    def _wait(self, request: _Request, now: float) -> float | None:
        """Seconds until ``request`` may go (None: when the edit before it is done)."""
        if request.message is not None and request.message in self._sending:
            return None
        spares = SPARE[request.urgency.name]
        # A spare is at most all but one place: a budget at rest always lets one through.
        return max(
            bucket.wait(now, min(spare, bucket.burst - 1))
            for bucket, spare in zip(self._budgets(request), spares, strict=False)
        )

    def _budgets(self, request: _Request) -> list[Bucket]:
        """The budgets ``request`` counts in: overall, then its chat's and its group's."""
        budgets = [self._overall]
        if request.counted:
            limits = self._limits
            chat = self._bucket(self._chats, request.chat, limits.chat_rate, limits.chat_burst)
            budgets.append(chat)
            if request.group:
                rate, burst = limits.group_rate / limits.group_period, limits.group_rate
                budgets.append(self._bucket(self._groups, request.chat, rate, burst))
        return budgets

    @staticmethod
    def _bucket(
        buckets: dict[int | str, Bucket], chat: int | str, rate: float, burst: float
    ) -> Bucket:
        if chat not in buckets:
            buckets[chat] = Bucket(rate, burst)
        return buckets[chat]

    def _forget_idle(self) -> None:
        """Forget the chats whose budget is all unused again, once there are many."""
        if len(self._chats) + len(self._groups) <= 1024:
            return
        busy = {r.chat for r in self._waiting}
        for buckets in (self._chats, self._groups):
            for chat in [c for c, b in buckets.items() if b.idle and c not in busy]:
                del buckets[chat]
        self._turns = {k: t for k, t in self._turns.items() if k[0] in self._groups}


def _rendered(value: Any, language: Language) -> Any:
    if isinstance(value, str):
        return language.render(value)
    if isinstance(value, dict):
        return {key: _rendered(item, language) for key, item in value.items()}
    if isinstance(value, list):
        return [_rendered(item, language) for item in value]
    return value


def _chat(chat_id: object) -> int | str | None:
    # As python-telegram-bot tells them: ids, and @usernames (channels, supergroups).
    if isinstance(chat_id, str):
        try:
            return int(chat_id)
        except ValueError:
            return chat_id
    return chat_id if isinstance(chat_id, int) else None
