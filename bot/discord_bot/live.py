"""The interactions whose tokens still work, by job: in memory only, never stored.

Discord interaction tokens last 15 minutes. While a job's token lasts, its progress and answer
edit the message the user saw ("thinking…"); afterwards, or after a restart (when this is
empty), the answer goes to the channel instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from typing import Any

import discord

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
