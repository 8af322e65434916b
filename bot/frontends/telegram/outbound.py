"""Every request the bot sends to Telegram passes here (python-telegram-bot's rate limiter is the
one hook all of them go through): its texts and button labels are rendered in the reader's
language (``i18n.reader()``: the sender of the update, or the owner of the job being answered),
then cut to Telegram's lengths, so that no answer is lost to "message is too long" whatever it
quotes; and it waits its turn within Telegram's flood limits (``line``), so that the bot meets
no 429 (each costs a second or more of silence in that chat). (An album's captions, a result's
caption and a text with entities are rendered where they are made: entity offsets count the
words as sent.)

Whom a request answers is ``answering`` (set for each update, its sender, and by the delivery of
a job, its owner), how urgent it is ``urgency``; tasks started from there inherit both. A request
made ``unless_overtaken`` asks, when its turn comes, whether it should still go: a job's status
message whose answer came first is never sent (``line.Overtaken``); one ``written_at_turn`` is
written then (a busy chat's board says where its jobs are when it goes).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from telegram import TelegramObject, Update
from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter, ContextTypes

from bot.core.i18n import Language, reader
from bot.frontends.telegram.line import (
    MESSAGES,
    TELEGRAM_LIMITS,
    Closed,
    FloodLimits,
    Line,
    Request,
    Urgency,
)

# Bot API: message text 1-4096 characters, captions 0-1024, callback query answers 0-200.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ALERT = 200

Json = dict[str, Any]


class Stopping(TelegramError):
    """Not sent: the bot is stopping (``Outbound.close``). A job's answer stays undelivered in
    the store, and goes once the bot is back."""

    def __init__(self) -> None:
        super().__init__("not sent: the bot is stopping")


answering: ContextVar[int | None] = ContextVar("answering", default=None)
urgency: ContextVar[Urgency] = ContextVar("urgency", default=Urgency.ANSWER)
# Asked once, when the request's turn comes: True if it should still go (see ``unless_overtaken``).
_still_due: ContextVar[Callable[[], bool] | None] = ContextVar("still_due", default=None)
# Asked when the request's turn came: its text as true then (see ``written_at_turn``).
_written: ContextVar[Callable[[], str] | None] = ContextVar("written", default=None)


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


@contextlib.contextmanager
def written_at_turn(text: Callable[[], str]) -> Iterator[None]:
    """Send the text of what is sent inside as ``text()`` says it once its turn came, not as
    it was made: what it says is true when it goes, however long it waited."""
    token = _written.set(text)
    try:
        yield
    finally:
        _written.reset(token)


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


class Outbound(BaseRateLimiter[int]):
    """Telegram's flood limits, with answers first, one message's edits in order and a
    group's rate shared in turns (``line``); flood waits (429) rest that chat and are retried."""

    def __init__(self, *, max_retries: int, limits: FloodLimits = TELEGRAM_LIMITS) -> None:
        self._max_retries = max_retries
        self._line = Line(limits)
        self._seq = itertools.count()

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        self.close()

    def close(self) -> int:
        """From now on nothing waits its turn: what waits, or comes, raises ``Stopping``; how
        many requests waited."""
        return self._line.close()

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
        request = Request(
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
        written = _written.get() if "text" in data else None
        for attempt in itertools.count():
            await self._turn_of(request)
            if written is not None:
                data["text"] = clip(language.render(written()), text_limit)
            try:
                return await self._send(request, callback(*args, **kwargs))
            except RetryAfter as exc:
                if attempt >= retries:
                    raise
                # Back in line at once, in its place: its chat rests until the flood wait is
                # over, then it goes before whatever came to that chat after it. (Waiting
                # outside the line, it raced the line's own timer for the same moment.)
                self._line.rest(request, _seconds(exc.retry_after))
                request.granted = asyncio.get_running_loop().create_future()
        raise AssertionError("unreachable")

    async def _turn_of(self, request: Request) -> None:
        self._line.add(request)
        try:
            await request.granted
        except Closed:
            raise Stopping() from None
        except asyncio.CancelledError:
            granted = request.granted
            if granted.done() and not granted.cancelled() and granted.exception() is None:
                self._line.done(request)  # granted just as its sender went: give the turn back
            else:
                self._line.withdraw(request)
            raise

    async def _send(
        self, request: Request, call: Coroutine[Any, Any, bool | Json | list[Json]]
    ) -> bool | Json | list[Json]:
        # Shielded: a sender that gives up (a progress edit the answer overtook) must not cut
        # a request in half; the message's next edit waits until Telegram has this one.
        sending = asyncio.ensure_future(call)
        sending.add_done_callback(lambda task: self._sent(request, task))
        return await asyncio.shield(sending)

    def _sent(self, request: Request, task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()  # its sender may be gone: the outcome is seen here at least
        self._line.done(request)


def _seconds(retry_after: int | timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after


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
