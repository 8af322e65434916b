"""The parts of a job's answer a platform has already taken, so that a retry sends only the rest.

An answer can take several platform calls (on Telegram an album, then the message with its
buttons; on Discord an answer split over posts). When a later call fails, the service retries
the whole answer: without this, the parts that went would go twice. Each part but the last is
parked in the store (``Parking``) once the platform took it, with what the next part needs of it
(the album's message id), so a retry skips it, in this process or the next. The parked parts are
dropped once the answer went whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from bot.core.ports import Parking

KIND = "answer.sent"


class SentParts:
    """The parts of job ``job_id``'s answer that went; ``await load()`` before asking."""

    def __init__(self, parking: Parking, job_id: int) -> None:
        self._parking = parking
        self._key = str(job_id)
        self._sent: dict[str, str] = {}

    async def load(self) -> SentParts:
        values = await self._parking.peek_pending(KIND, self._key)
        self._sent = dict(value.partition("=")[::2] for value in values)
        return self

    @property
    def sent(self) -> dict[str, str]:
        """The parts that went, each with what it left for the next (e.g. a message id)."""
        return dict(self._sent)

    async def once(self, part: str, send: Callable[[], Awaitable[str]]) -> str:
        """Send ``part`` unless an earlier try did; what it left for the next part either way."""
        if part not in self._sent:
            await self.went(part, await send())
        return self._sent[part]

    async def went(self, part: str, value: str = "") -> None:
        """The platform took ``part``. (Written after it did: a crash in between resends this
        one part, the same window as for a whole answer, README's "only duplicate possible".)"""
        await self._parking.add_pending(KIND, self._key, f"{part}={value}")
        self._sent[part] = value

    async def done(self) -> None:
        """The answer went whole: forget its parts (retention would prune them anyway)."""
        if self._sent:
            with contextlib.suppress(Exception):  # the answer is given; this is housekeeping
                await self._parking.take_pending(KIND, self._key)
            self._sent = {}
