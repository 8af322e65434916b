"""The Discord front end: runs the client, turns interactions into service calls, and is the
service's ``Notifier`` for Discord.

Interactions must be acknowledged within 3 s. A prompt or press is first checked by the core (a
refusal is the private first response), then deferred (the "thinking…" response) before
anything slow, then edited as the job moves: queued, generating, the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import discord

from bot.config import Settings
from bot.core import texts
from bot.core.domain import Job, JobResult, Owner, ResultImage
from bot.core.errors import InvalidInput
from bot.core.ports import DeliveryError
from bot.core.service import Service
from bot.core.service.api import Admit, Fetch
from bot.discord_bot import commands, delivery, phrases, render
from bot.discord_bot.buttons import ResultButton, SettingSelect, result_view
from bot.discord_bot.client import BananaClient
from bot.discord_bot.live import LiveInteractions, Stage

log = logging.getLogger(__name__)


class DiscordFrontEnd:
    """``fe = DiscordFrontEnd(service, settings); service.attach("discord", fe)``, then
    ``await fe.run()`` inside ``async with service``."""

    PLATFORM = "discord"

    def __init__(
        self,
        service: Service,
        settings: Settings,
        *,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float = 30.0,
    ) -> None:
        self.service = service
        self.settings = settings
        self.live = LiveInteractions()
        self._connected = asyncio.Event()
        self._ready_timeout = ready_timeout
        self.client = BananaClient(
            self,
            commands=commands.build(service.models),
            items=(ResultButton, SettingSelect),
            dev_guild=settings.discord_dev_guild,
            guild_ready_timeout=guild_ready_timeout,
        )

    async def run(self) -> None:
        """Log in and connect, serve until cancelled, then close the client cleanly."""
        if self.settings.discord_token is None:
            raise RuntimeError("DISCORD_TOKEN is not set")
        try:
            await self.client.start(self.settings.discord_token.reveal())
        finally:
            self._connected.clear()
            await self.client.close()

    def connected(self) -> None:
        self._connected.set()

    # From interactions to the service.

    def owner(self, interaction: discord.Interaction[Any]) -> Owner:
        return Owner(
            platform=self.PLATFORM,
            user_id=str(interaction.user.id),
            chat_id=str(interaction.channel_id or 0),
            route={"guild": str(interaction.guild_id or ""), "interaction": str(interaction.id)},
        )

    async def acknowledge(self, interaction: discord.Interaction[Any]) -> bool:
        """Defer publicly ("thinking…"); interactions must be acknowledged within 3 s."""
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:
            # Too late (10062 Unknown interaction): the user saw "did not respond" and nothing
            # was queued, so they can simply ask again.
            log.warning("could not acknowledge interaction %s: %s", interaction.id, exc)
            return False
        return True

    async def start_job(
        self, interaction: discord.Interaction[Any], admit: Admit, fetch: Fetch | None = None
    ) -> None:
        """Check the request, acknowledge it, fetch its attachments, queue it; then show the
        queue position in the response. What the checks refuse is said privately at once, with
        no public "thinking…" first (they take a store read or two: well within the 3 s)."""
        try:
            async with admit(self.owner(interaction)) as admission:
                if not await self.acknowledge(interaction):
                    return
                submitted = await admission.submit(fetch=fetch)
        except InvalidInput as refusal:
            await self.tell(interaction, texts.failed(refusal.message))
            return
        live = self.live.track(submitted.job_id, interaction)
        async with live.lock:
            if live.stage is Stage.THINKING:
                live.stage = Stage.QUEUED
                try:
                    await interaction.edit_original_response(
                        content=texts.queued(submitted.position)
                    )
                except discord.HTTPException as exc:
                    # The job is queued all the same; its answer finds its own way.
                    log.info("job %d: could not show its position: %s", submitted.job_id, exc)

    async def download(self, attachments: Sequence[discord.Attachment]) -> list[bytes]:
        """The attachments' bytes, fetched now: their signed URLs expire."""
        limit = self.service.limits.max_image_bytes
        for attachment in attachments:
            # Refused by the size Discord reports, before a byte is downloaded.
            if attachment.size > limit:
                raise InvalidInput(texts.image_too_large(attachment.size, limit))
        try:
            return list(await asyncio.gather(*(a.read() for a in attachments)))
        except discord.HTTPException as exc:
            log.info("attachment download failed: %s", exc)
            raise InvalidInput(phrases.DOWNLOAD_FAILED) from exc

    async def tell(self, interaction: discord.Interaction[Any], text: str) -> None:
        """Say ``text`` to the user alone (an ephemeral message)."""
        text = render.clip(text)
        response = interaction.response
        if not response.is_done():
            await response.send_message(text, ephemeral=True)
            return
        if response.type is discord.InteractionResponseType.deferred_channel_message:
            # A deferred response keeps the visibility it was deferred with, and prompts defer
            # publicly (their answer is public): drop the "thinking…" placeholder, then say it
            # in an ephemeral followup.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True)

    @contextlib.asynccontextmanager
    async def guarded(self, interaction: discord.Interaction[Any]) -> AsyncIterator[None]:
        """Log a handler's unexpected error and tell the user, instead of a silent failure."""
        try:
            yield
        except Exception:
            log.exception("interaction %s failed", interaction.id)
            with contextlib.suppress(discord.HTTPException):
                await self.tell(interaction, texts.failed(texts.INTERNAL))

    async def cancelled(self, job_id: int) -> None:
        """A job was cancelled from /queue: say so where its position was shown."""
        live = self.live.get(job_id)
        self.live.discard(job_id)
        if live is None:
            return
        async with live.lock:
            live.stage = Stage.FINAL
            with contextlib.suppress(discord.HTTPException):
                await live.interaction.edit_original_response(content=texts.CANCELLED)

    # Notifier: what the service reports.

    async def job_started(self, job: Job) -> None:
        # Progress is a courtesy: without a live token it is not shown at all.
        live = self.live.get(job.id)
        if live is None:
            return
        async with live.lock:
            if live.stage < Stage.STARTED:
                live.stage = Stage.STARTED
                await live.interaction.edit_original_response(
                    content=texts.UPSCALING if job.is_upscale else texts.STARTED
                )

    async def job_finished(self, result: JobResult) -> None:
        view = result_view(result.buttons) if result.buttons else None
        await self._final(result.job, texts.caption(result), result.images, view)

    async def job_failed(self, job: Job, message: str) -> None:
        await self._final(job, texts.failed(message))

    async def admin_alert(self, admin_ids: Sequence[str], text: str) -> None:
        await self._wait_connected()
        for admin in admin_ids:
            try:
                user = await self.client.fetch_user(int(admin))
                await user.send(render.clip(text))
            except (discord.HTTPException, ValueError) as exc:
                log.warning("could not alert Discord admin %s: %s", admin, exc)

    async def _final(
        self,
        job: Job,
        content: str,
        images: Sequence[ResultImage] = (),
        view: discord.ui.View | None = None,
    ) -> None:
        await self._wait_connected()
        live = self.live.get(job.id)
        try:
            if live is None:
                await delivery.post(self.client, job.id, job.owner, None, content, images, view)
            else:
                async with live.lock:
                    live.stage = Stage.FINAL
                    await delivery.post(
                        self.client, job.id, job.owner, live.interaction, content, images, view
                    )
        except DeliveryError as exc:
            if exc.permanent:
                self.live.discard(job.id)
            raise
        self.live.discard(job.id)

    async def _wait_connected(self) -> None:
        # After a restart the service re-delivers at once, possibly before the gateway is up.
        try:
            async with asyncio.timeout(self._ready_timeout):
                await self._connected.wait()
        except TimeoutError:
            raise DeliveryError("Discord is not connected yet") from None
