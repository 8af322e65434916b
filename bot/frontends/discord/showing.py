"""Posting a past job again (/show, and 🔎 Show buttons): the service says whether the user may
see it here (a refusal is private, before anything else), the interaction is deferred, the core
brings the job's answer — images this platform holds come back as their attachment URLs, which
are fetched again, the others as bytes — and it is posted with buttons that work here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import discord

from bot.core import history_texts, texts
from bot.core.domain import Job, ResultImage
from bot.core.errors import InvalidInput
from bot.core.history_views import ShowView
from bot.core.people import DISCORD, Owner
from bot.core.ports import DeliveryError
from bot.frontends.discord import delivery, interactions, views

log = logging.getLogger(__name__)

# The job a /show or a 🔎 press names, if its presser may see it there (``BotApi.show``).
Find = Callable[[Owner], Awaitable[Job]]


async def show(
    interaction: discord.Interaction[Any],
    find: Find,
    view_of: Callable[[ShowView], discord.ui.View | None],
) -> None:
    """Post the job ``find`` names in the interaction's channel (``view_of`` makes its
    buttons)."""
    client = interactions.client_of(interaction)
    owner = interactions.owner(interaction)
    try:
        job = await find(owner)
    except InvalidInput as refusal:
        await interactions.tell(interaction, texts.failed(refusal.message))
        return
    if not await interactions.acknowledge(interaction):
        return
    brought = await client.service.bring(owner, job)
    images = [
        image for image in [await _bytes(interaction, i) for i in brought.result.images] if image
    ]
    missing = brought.missing or len(images) < len(brought.result.images)
    result = replace(brought.result, images=tuple(images))
    shown = ShowView.of(result, missing=missing, limit=views.MAX_CONTENT)
    try:
        sent = await delivery.post(
            interaction.client,
            job,
            owner,
            interaction,
            shown.text,
            images,
            view_of(shown),
            shown.alt,
        )
    except DeliveryError as exc:
        log.warning("job %d could not be shown again: %s", job.id, exc)
        await interactions.tell(interaction, texts.failed(history_texts.IMAGES_UNAVAILABLE))
        return
    if sent.urls:
        await client.service.save_posted(job.id, DISCORD, sent.urls)


async def _bytes(interaction: discord.Interaction[Any], image: ResultImage) -> ResultImage | None:
    """The image with its bytes: those Discord holds are fetched from there again."""
    if image.posted is None:
        return image
    try:
        data = await delivery.fetch(interaction.client, image.posted)
    except DeliveryError as exc:
        log.info("an attachment could not be fetched again: %s", exc)
        return None
    return replace(image, data=data, posted=None)
