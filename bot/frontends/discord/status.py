"""The live status of a job: the interaction response the user saw, which first says the
request's place in the queue, then what progress reports (``Notifier.job_progress``), and then
becomes the answer, while its token works. In memory only, never stored.

Discord interaction tokens last 15 minutes. While a job's token lasts, its progress and answer
edit that message; afterwards, or after a restart (when this is empty), the answer goes to the
channel instead and progress is not shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import discord

from bot.core.domain import Job
from bot.core.presenters import JobStatus
from bot.frontends.discord import views

log = logging.getLogger(__name__)

# Tokens last 15 minutes; stop a minute early so an upload in progress does not outlive one.
TOKEN_LIFETIME = timedelta(minutes=14)


@dataclass
class Live:
    interaction: discord.Interaction[Any]
    final: bool = False  # the answer (or "cancelled") is on its way: no more progress
    # The first response is sent (or failed, then ``final``): there is no message to edit
    # before it. The job is stored and queued before it is announced, so its progress and
    # answer may come first: they wait for it.
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    # Edits of one message land in order: progress never after the answer.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    editing: asyncio.Future[Any] | None = None  # a progress edit on its way

    @property
    def fresh(self) -> bool:
        return discord.utils.utcnow() - self.interaction.created_at < TOKEN_LIFETIME

    @contextlib.asynccontextmanager
    async def last_word(self) -> AsyncIterator[None]:
        """Hold the message for its final edit, after any progress edit already sent."""
        await self.answered.wait()
        async with self.lock:
            self.final = True
            if self.editing is not None:
                await asyncio.wait([self.editing])
            yield


class LiveInteractions:
    """The interactions whose tokens still work, by job."""

    def __init__(self) -> None:
        self._by_job: dict[int, Live] = {}

    def track(self, job_id: int, interaction: discord.Interaction[Any]) -> Live:
        """Follow a job stored from ``interaction``, whose first response is still to come
        (``Live.answered``)."""
        # Jobs that ended elsewhere (cancelled, answered in the channel) leave stale entries:
        # the oldest go first, tracked in about the order their interactions were made (not a
        # sweep of every entry: a burst of a thousand commands would make that a million).
        while self._by_job:
            oldest = next(iter(self._by_job))
            if self._by_job[oldest].fresh:
                break
            del self._by_job[oldest]
        self._by_job.pop(job_id, None)  # tracked again: now the newest
        live = self._by_job[job_id] = Live(interaction)
        return live

    def get(self, job_id: int) -> Live | None:
        live = self._by_job.get(job_id)
        if live is not None and not live.fresh:
            del self._by_job[job_id]
            return None
        return live

    def discard(self, job_id: int) -> None:
        self._by_job.pop(job_id, None)

    async def progress(self, job: Job, status: JobStatus) -> None:
        """Show ``status`` on the job's response. Progress is a courtesy: without a live token
        it is not shown at all."""
        live = self.get(job.id)
        if live is None:
            return
        await live.answered.wait()
        async with live.lock:
            if live.final:
                return
            # Shielded: when the answer comes and this report is dropped, the edit already
            # sent still lands, and the answer's edit waits for it (``last_word``).
            live.editing = asyncio.ensure_future(
                live.interaction.edit_original_response(content=views.clip(status.text))
            )
            await asyncio.shield(live.editing)

    async def ended(self, job_id: int, text: str) -> None:
        """A job ended without its answer here (cancelled from /queue, or told by another
        process): say ``text`` where its position was shown."""
        live = self.get(job_id)
        self.discard(job_id)
        if live is None:
            return
        async with live.last_word():
            with contextlib.suppress(discord.HTTPException):
                await live.interaction.edit_original_response(content=views.clip(text))
