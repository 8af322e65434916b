"""The live status of a job: the interaction response the user saw ("thinking…"), edited as the
job moves (queued, generating, cancelled) while its token works. In memory only, never stored.

Discord interaction tokens last 15 minutes. While a job's token lasts, its progress and answer
edit that message; afterwards, or after a restart (when this is empty), the answer goes to the
channel instead and progress is not shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from typing import Any

import discord

from bot.core import texts
from bot.core.domain import Job, Submitted
from bot.frontends.discord import views

log = logging.getLogger(__name__)

# Tokens last 15 minutes; stop a minute early so an upload in progress does not outlive one.
TOKEN_LIFETIME = timedelta(minutes=14)


class Stage(IntEnum):
    """What the original response shows; it only ever moves forward."""

    THINKING = 0
    QUEUED = 1
    STARTED = 2
    FINAL = 3


@dataclass
class Live:
    interaction: discord.Interaction[Any]
    stage: Stage = Stage.THINKING
    # Edits of one message must land in order: "queued" never after "generating" or the result.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def fresh(self) -> bool:
        return discord.utils.utcnow() - self.interaction.created_at < TOKEN_LIFETIME


class LiveInteractions:
    """The interactions whose tokens still work, by job."""

    def __init__(self) -> None:
        self._by_job: dict[int, Live] = {}

    def track(self, job_id: int, interaction: discord.Interaction[Any]) -> Live:
        # Jobs that ended elsewhere (cancelled, answered in the channel) leave stale entries.
        self._by_job = {j: live for j, live in self._by_job.items() if live.fresh}
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

    async def queued(self, interaction: discord.Interaction[Any], submitted: Submitted) -> None:
        """The job is stored: show its place in the queue, unless it has moved on already."""
        live = self.track(submitted.job_id, interaction)
        async with live.lock:
            if live.stage is Stage.THINKING:
                live.stage = Stage.QUEUED
                try:
                    await interaction.edit_original_response(
                        content=views.clip(
                            texts.queued(submitted.position, paused=submitted.paused)
                        )
                    )
                except discord.HTTPException as exc:
                    # The job is queued all the same; its answer finds its own way.
                    log.info("job %d: could not show its position: %s", submitted.job_id, exc)

    async def started(self, job: Job) -> None:
        # Progress is a courtesy: without a live token it is not shown at all.
        live = self.get(job.id)
        if live is None:
            return
        async with live.lock:
            if live.stage < Stage.STARTED:
                live.stage = Stage.STARTED
                await live.interaction.edit_original_response(
                    content=views.clip(texts.UPSCALING if job.is_upscale else texts.STARTED)
                )

    async def cancelled(self, job_id: int) -> None:
        """A job was cancelled from /queue: say so where its position was shown."""
        live = self.get(job_id)
        self.discard(job_id)
        if live is None:
            return
        async with live.lock:
            live.stage = Stage.FINAL
            with contextlib.suppress(discord.HTTPException):
                await live.interaction.edit_original_response(
                    content=views.clip(texts.CANCELLED_STATUS)
                )
