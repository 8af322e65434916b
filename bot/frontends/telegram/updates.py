"""How many updates are handled at once, and whose: ``AT_ONCE`` in all, at most ``PER_SENDER`` of
them one sender's, whose next ``WAITING`` wait for those; a sender's messages past these are not
handled (their presses are: each is answered beside the chat, where no flood limit holds it; and
so are an album's items: each is only parked, and one dropped would change what the request asks).

A handler returns once its answer went, and a chat's answers go at about one a second (Telegram's
flood limits, ``line``): a sender typing faster than that builds a line of answers of their own.
python-telegram-bot's own bound counts every sender's updates in one place, so a user's three
hundred /help held all 256 of them, and every other user's updates waited minutes behind theirs.
Here their updates wait among themselves. The ones past ``WAITING`` are dropped (logged): their
answers could not reach the chat for a minute or more, and each one waiting would hold the
process from stopping until its answer went.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

AT_ONCE = 256  # python-telegram-bot's own bound for concurrent updates
# Handled at once for one sender: enough for a command and the presses around it; an album's
# ten photos (ten updates, each only parked: ``albums``) wait a moment for each other.
PER_SENDER = 4
WAITING = 16  # a few commands are never dropped
log = logging.getLogger(__name__)


@dataclass
class _Sender:
    turns: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(PER_SENDER))
    # Presses take turns of their own: answered beside the chat, they don't wait behind the
    # sender's messages, whose answers may wait minutes for a busy group's budget.
    presses: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(PER_SENDER))
    held: int = 0  # updates handled or waiting
    dropping: bool = False  # said in the log (once until none of theirs is left)


class Updates(BaseUpdateProcessor):
    """Updates taken in by sender: one sender's flood waits in its own line (``WAITING``)."""

    def __init__(self) -> None:
        # python-telegram-bot's bound (which its process_update holds around ours) is ``AT_ONCE``
        # here, taken after the sender's turn: a sender waiting for theirs holds no place.
        super().__init__(max_concurrent_updates=sys.maxsize)
        self._at_once = asyncio.Semaphore(AT_ONCE)
        self._senders: dict[int, _Sender] = {}

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close: python-telegram-bot waits for the updates under way."""

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update) or update.effective_sender is None:
            # No sender's (a poll's news, an object put in the queue by hand): no line of its own
            async with self._at_once:
                await coroutine
            return
        key = update.effective_sender.id
        sender = self._senders.setdefault(key, _Sender())
        # A press is answered beside the chat, however many (and past its rate, refused so:
        # ``Throttle``), and an album's item is only parked (``albums``; three albums forwarded
        # at once are thirty updates): only what is answered in the chat is dropped.
        if sender.held >= PER_SENDER + WAITING and not _never_dropped(update):
            if inspect.iscoroutine(coroutine):
                coroutine.close()  # never awaited, and not to be
            if not sender.dropping:
                sender.dropping = True
                log.warning(
                    "telegram sender %d writes faster than it is answered: updates dropped", key
                )
            return
        sender.held += 1
        turns = sender.turns if update.callback_query is None else sender.presses
        try:
            async with turns, self._at_once:
                await coroutine
        finally:
            sender.held -= 1
            if not sender.held:
                del self._senders[key]


def _never_dropped(update: Update) -> bool:
    """A press, or an album's item."""
    message = update.effective_message
    return update.callback_query is not None or (
        message is not None and message.media_group_id is not None
    )
