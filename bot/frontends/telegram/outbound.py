"""Every request the bot sends to Telegram passes here (python-telegram-bot's rate limiter is
the one hook all of them go through): its texts and button labels are rendered in the reader's
language (``i18n.reader()``: the sender of the update, or the owner of the job being answered),
then cut to Telegram's lengths, so that no answer is lost to "message is too long" whatever it
quotes; and it is held to Telegram's flood limits, with a group's rate shared fairly among the
people the bot is answering there. (An album's captions and a text with entities are rendered
where they are made: entity offsets count the words as sent.)

Telegram lets a bot send about 20 messages a minute to a group, and a job costs about five
(status, its edits, the answer). First come, first served, one member's ten jobs would hold
everyone else's answers for minutes; here each member waiting gets the next turn in rotation.
Whom a request answers is ``answering``: set for each update (its sender) and by the delivery
of a job (its owner); tasks started from there inherit it.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine, Hashable
from contextvars import ContextVar
from typing import Any

from telegram import TelegramObject, Update
from telegram.ext import AIORateLimiter, ContextTypes

from bot.core.i18n import Language, reader

# Bot API: message text 1-4096 characters, captions 0-1024, callback query answers 0-200.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ALERT = 200
# Telegram's documented flood limit for groups (python-telegram-bot's default too).
GROUP_RATE = 20
GROUP_PERIOD = 60.0

Json = dict[str, Any]
answering: ContextVar[int | None] = ContextVar("answering", default=None)


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


class FairBucket:
    """A leaky bucket of ``rate`` per ``period`` whose waiters take turns by key: each key
    waiting gets one request through, then goes to the back of the line."""

    def __init__(self, rate: int, period: float) -> None:
        self._rate = rate
        self._leak_per_second = rate / period
        self._level = 0.0
        self._at = 0.0
        self._waiting: dict[Hashable, collections.deque[asyncio.Future[None]]] = {}
        self._turns: collections.deque[Hashable] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        self._leak()
        return not self._turns and self._level == 0

    async def acquire(self, key: Hashable) -> None:
        self._leak()
        if not self._turns and self._level + 1 <= self._rate:
            self._level += 1
            return
        future = asyncio.get_running_loop().create_future()
        if key not in self._waiting:
            self._waiting[key] = collections.deque()
            self._turns.append(key)
        self._waiting[key].append(future)
        self._schedule()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._level -= 1  # granted just as its waiter went: give the place back
            raise

    def _leak(self) -> None:
        now = asyncio.get_running_loop().time()
        self._level = max(0.0, self._level - (now - self._at) * self._leak_per_second)
        self._at = now

    def _schedule(self) -> None:
        if self._timer is None and self._turns:
            wait = max(0.0, (self._level + 1 - self._rate) / self._leak_per_second)
            self._timer = asyncio.get_running_loop().call_later(wait, self._release)

    def _release(self) -> None:
        self._timer = None
        self._leak()
        while self._turns and self._level + 1 <= self._rate:
            key = self._turns[0]
            queue = self._waiting[key]
            future = queue.popleft()
            if future.done() and queue:  # cancelled: the key's next waiter has the turn
                continue
            self._turns.popleft()
            if queue:
                self._turns.append(key)
            else:
                del self._waiting[key]
            if not future.done():
                self._level += 1
                future.set_result(None)
        self._schedule()


class Outbound(AIORateLimiter):
    """``AIORateLimiter`` (the overall limit, retrying flood waits), with texts clipped and
    each group's rate shared fairly (instead of its first-come, first-served group limit)."""

    def __init__(self, *, max_retries: int) -> None:
        super().__init__(max_retries=max_retries, group_max_rate=0)
        self._groups: dict[int | str, FairBucket] = {}

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
        for field, limit in (("text", text_limit), ("caption", MAX_CAPTION)):
            value = data.get(field)
            if isinstance(value, str):
                data[field] = clip(language.render(value), limit)
        markup = data.get("reply_markup")
        if isinstance(markup, TelegramObject):  # button labels, a reply's placeholder
            data["reply_markup"] = _rendered(markup.to_dict(), language)
        group = _group(data.get("chat_id"))
        if group is not None:
            await self._bucket(group).acquire(answering.get())
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )

    def _bucket(self, group: int | str) -> FairBucket:
        if len(self._groups) > 512:  # forget the groups whose share is all unused again
            self._groups = {g: b for g, b in self._groups.items() if g == group or not b.idle}
        if group not in self._groups:
            self._groups[group] = FairBucket(GROUP_RATE, GROUP_PERIOD)
        return self._groups[group]


def _rendered(value: Any, language: Language) -> Any:
    if isinstance(value, str):
        return language.render(value)
    if isinstance(value, dict):
        return {key: _rendered(item, language) for key, item in value.items()}
    if isinstance(value, list):
        return [_rendered(item, language) for item in value]
    return value


def _group(chat_id: object) -> int | str | None:
    # As python-telegram-bot tells groups: negative ids, and @usernames (channels, supergroups).
    if isinstance(chat_id, str):
        try:
            chat_id = int(chat_id)
        except ValueError:
            return chat_id
    return chat_id if isinstance(chat_id, int) and chat_id < 0 else None
