"""Photos sent without a caption: kept in the store, per user and chat, for a while, and taken by
that user's next prompt in that chat (which then uses them as its references)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from bot.core.ports import Parking
from bot.frontends.telegram.intake import Source

KIND = "photo"
# A kept photo waits this long for its prompt; the latest this many are kept (an album's most).
KEEP_SECONDS = 15 * 60.0
MAX_KEPT = 10


class KeptPhotos:
    def __init__(self, parking: Parking, clock: Callable[[], float] = time.time) -> None:
        self._parking = parking
        self._clock = clock  # wall time: the store outlives the process

    async def keep(self, chat_id: int, user_id: int, sources: Sequence[Source]) -> None:
        for source in sources:
            value = {"file_id": source.file_id, "size": source.file_size, "at": self._clock()}
            await self._parking.add_pending(KIND, _key(chat_id, user_id), json.dumps(value))

    async def take(self, chat_id: int, user_id: int) -> list[Source]:
        """The photos the user kept here and not too long ago, oldest first; none stay kept."""
        kept = [
            json.loads(v) for v in await self._parking.take_pending(KIND, _key(chat_id, user_id))
        ]
        fresh = [k for k in kept if self._clock() - k["at"] < KEEP_SECONDS]
        return [Source(k["file_id"], k["size"]) for k in fresh[-MAX_KEPT:]]


def _key(chat_id: int, user_id: int) -> str:
    return f"{chat_id}:{user_id}"
