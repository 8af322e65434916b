"""Albums: Telegram sends each photo as its own update, with no count and no end marker.

Items wait in the store (so a restart or a second process loses none) until the album has been
quiet for a moment, or has reached Telegram's maximum of ten; then the whole album is one
request. Handling it claims the items (they stay in the store, marked taken) and they go only
once the request is answered or its job stored, with the status message it got; a restart
puts taken albums back, and ``recover`` restarts the debounce timers, the only thing in memory.
(A second process restarting while another handles an album would handle it twice.)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from telegram import Message

from bot.core.cancellation import cancel_until_done
from bot.core.ports import Parking
from bot.frontends.telegram.addressing import sender_id

KIND = "album"
TAKEN = "album.taken"  # being handled: the items of an album whose job is not stored yet
STATUS = "album.status"  # the status message a taken album got, to take up after a restart
MAX_ITEMS = 10  # sendMediaGroup's (and so an album's) maximum
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlbumItem:
    message_id: int
    user_id: int
    private: bool
    file_id: str
    file_size: int | None
    caption: str

    @classmethod
    def of(cls, message: Message) -> AlbumItem:
        if message.photo:
            file_id, size = message.photo[-1].file_id, message.photo[-1].file_size
        elif message.document is not None:
            file_id, size = message.document.file_id, message.document.file_size
        else:
            raise ValueError("an album item without a photo or document")
        return cls(
            message_id=message.message_id,
            user_id=sender_id(message),
            private=message.chat.type == "private",
            file_id=file_id,
            file_size=size,
            caption=message.caption or "",
        )


@dataclass(frozen=True)
class Album:
    """An album to handle: its items in the order sent, and the status message an interrupted
    attempt left (``status_id``); ``remember_status`` keeps the one in use for the next."""

    chat_id: int
    items: list[AlbumItem]
    status_id: int | None
    remember_status: Callable[[int], Awaitable[None]]


# Returns once the album's request is answered or its job stored.
OnAlbum = Callable[[Album], Awaitable[None]]


class Albums:
    def __init__(self, store: Parking, on_album: OnAlbum, *, wait: float) -> None:
        self._store = store
        self._on_album = on_album
        self._wait = wait
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._counts: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def add(self, message: Message) -> None:
        """Park one album item and (re)start its album's debounce timer."""
        key = f"{message.chat_id}:{message.media_group_id}"
        await self._store.add_pending(KIND, key, json.dumps(asdict(AlbumItem.of(message))))
        count = self._counts[key] = self._counts.get(key, 0) + 1
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._timers[key] = self._spawn(self._expire(key, 0 if count >= MAX_ITEMS else self._wait))

    async def recover(self) -> None:
        """Take up albums parked before a restart: each waits one debounce, as if just sent.
        Those a stopped process was handling are parked again first."""
        for key in await self._store.pending_keys(TAKEN, older_than=0.0):
            await self._store.move_pending(TAKEN, key, KIND)
        for key in await self._store.pending_keys(KIND, older_than=0.0):
            if key not in self._timers:
                self._timers[key] = self._spawn(self._expire(key, self._wait))

    async def close(self) -> None:
        # Handling an album waits on the store and on Telegram, either of which may swallow
        # one cancellation; the front end stops only once these are done.
        await cancel_until_done(self._tasks)

    async def _expire(self, key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        # From here on a new item starts a new timer instead of cancelling this flush.
        if self._timers.get(key) is asyncio.current_task():
            del self._timers[key]
            self._counts.pop(key, None)
        await self._flush(key)

    async def _flush(self, key: str) -> None:
        try:
            values = await self._store.move_pending(KIND, key, TAKEN)
            if not values:  # another process, or an earlier timer, took this album
                return
            items = sorted((AlbumItem(**json.loads(v)) for v in values), key=lambda i: i.message_id)
            earlier = await self._store.take_pending(STATUS, key)

            async def remember_status(message_id: int) -> None:
                await self._store.add_pending(STATUS, key, str(message_id))

            status_id = int(earlier[-1]) if earlier else None
            await self._on_album(
                Album(int(key.split(":", 1)[0]), items, status_id, remember_status)
            )
            await self._store.take_pending(TAKEN, key)
            await self._store.take_pending(STATUS, key)
        except Exception:  # a task nobody awaits: say what happened
            log.exception("album %s could not be handled", key)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
