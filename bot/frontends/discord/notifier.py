"""``DiscordNotifier``: what the service reports (progress, answers, admin alerts), posted by the
client the front end runs; to the job's live interaction while its token works (``status``),
else to its channel (``delivery``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import discord

from bot.core import texts
from bot.core.captions import ResultView
from bot.core.domain import Job, JobResult, JobState, ResultImage
from bot.core.ports import DeliveryError, Parking, Posted
from bot.core.presenters import JobStatus
from bot.core.service.api import BotApi
from bot.frontends.discord import delivery, views
from bot.frontends.discord.buttons import UPSCALE_SENT, result_view
from bot.frontends.discord.status import LiveInteractions
from bot.frontends.parts import SentParts

log = logging.getLogger(__name__)


class DiscordNotifier:
    """Implements ``bot.core.ports.Notifier`` for Discord."""

    def __init__(
        self, client: discord.Client, live: LiveInteractions, service: BotApi, parking: Parking
    ) -> None:
        self._client = client
        self._live = live
        self._service = service
        self._parking = parking

    async def job_progress(self, job: Job, status: JobStatus) -> None:
        await self._live.progress(job, status)

    async def job_finished(self, result: JobResult) -> Posted:
        # A prompt's Markdown is written as typed: "[words](address)" would be a link the bot
        # vouches for, its address hidden (as /queue and /history write it).
        shown = ResultView.of(
            result,
            self._service.models,
            limit=views.MAX_CONTENT,
            as_typed=discord.utils.escape_markdown,
        )
        view = result_view(result.buttons) if result.buttons else None
        sent = await self._final(result.job, shown.caption, result.images, view, shown.alt)
        if result.job.is_upscale:  # a second press of its button points here, never pays again
            await self._parking.add_pending(UPSCALE_SENT, str(result.job.id), sent.link)
        return sent.urls

    async def job_failed(self, job: Job, message: str) -> None:
        await self._final(job, texts.failed(message))

    async def job_ended_elsewhere(self, job: Job) -> None:
        # Only the leader delivers, without the token of a prompt another process heard: the
        # one that heard it edits its first response into where the end was told, while the
        # token lasts (after that it can't, as on one process).
        await self._live.ended(job.id, told_where(job))

    async def fetch_image(self, ref: str) -> bytes:
        return await delivery.fetch(self._client, ref)

    async def admin_alert(self, admin_id: str, text: str) -> None:
        # A DM needs a server shared with the bot and DMs open (else 50007).
        try:
            user = await self._client.fetch_user(int(admin_id))
            await user.send(views.clip(text))
        except (discord.HTTPException, ValueError) as exc:
            raise DeliveryError(f"Discord refused a DM to admin {admin_id}: {exc}") from exc

    async def _final(
        self,
        job: Job,
        content: str,
        images: Sequence[ResultImage] = (),
        view: discord.ui.View | None = None,
        alt: Sequence[str] = (),
    ) -> delivery.Sent:
        live = self._live.get(job.id)
        parts = SentParts(self._parking, job.id)
        post = functools.partial(delivery.post, self._client, job, job.owner, parts=parts)
        try:
            if live is None:
                sent = await post(None, content, images, view, alt)
            else:
                async with live.last_word():
                    sent = await post(live.interaction, content, images, view, alt)
        except DeliveryError as exc:
            if exc.permanent:
                self._live.discard(job.id)
            raise
        self._live.discard(job.id)
        return sent


def told_where(job: Job) -> str:
    """Where the end of a job told by another process is: a cancel was said to whoever
    cancelled it; an answer or a failure went to the channel, or to the user's DMs."""
    if job.state is JobState.CANCELLED and not job.error:
        return texts.CANCELLED_STATUS
    if job.owner.route.get(delivery.LATE) == delivery.BY_DM:
        return views.ANSWERED_BY_DM
    return views.ANSWERED_BELOW
