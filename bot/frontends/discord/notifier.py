"""``DiscordNotifier``: what the service reports (progress, answers, admin alerts), posted by the
client the front end runs; to the job's live interaction while its token works (``status``),
else to its channel (``delivery``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import discord

from bot.core import texts
from bot.core.domain import Job, JobResult, ResultImage
from bot.core.ports import DeliveryError
from bot.frontends.discord import delivery, views
from bot.frontends.discord.buttons import result_view
from bot.frontends.discord.status import LiveInteractions, Stage

log = logging.getLogger(__name__)


class DiscordNotifier:
    """Implements ``bot.core.ports.Notifier`` for Discord."""

    def __init__(self, client: discord.Client, live: LiveInteractions) -> None:
        self._client = client
        self._live = live

    async def job_started(self, job: Job) -> None:
        await self._live.started(job)

    async def job_finished(self, result: JobResult) -> None:
        view = result_view(result.buttons) if result.buttons else None
        await self._final(result.job, texts.caption(result), result.images, view)

    async def job_failed(self, job: Job, message: str) -> None:
        await self._final(job, texts.failed(message))

    async def admin_alert(self, admin_ids: Sequence[str], text: str) -> None:
        for admin in admin_ids:
            try:
                user = await self._client.fetch_user(int(admin))
                await user.send(views.clip(text))
            except (discord.HTTPException, ValueError) as exc:
                log.warning("could not alert Discord admin %s: %s", admin, exc)

    async def _final(
        self,
        job: Job,
        content: str,
        images: Sequence[ResultImage] = (),
        view: discord.ui.View | None = None,
    ) -> None:
        live = self._live.get(job.id)
        try:
            if live is None:
                await delivery.post(self._client, job.id, job.owner, None, content, images, view)
            else:
                async with live.lock:
                    live.stage = Stage.FINAL
                    await delivery.post(
                        self._client, job.id, job.owner, live.interaction, content, images, view
                    )
        except DeliveryError as exc:
            if exc.permanent:
                self._live.discard(job.id)
            raise
        self._live.discard(job.id)
