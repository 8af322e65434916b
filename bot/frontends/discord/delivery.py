"""Posting what the service reports: to the live interaction while its token works, else to the
channel with a mention of the user, or, where the bot can't post in that channel (a group DM, a
server that only the user's install of the app reaches, a channel it may not write in), to the
user's DMs with the bot. Discord failures become ``DeliveryError`` for the service.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import discord

from bot.core.domain import Job, ResultImage
from bot.core.i18n import join
from bot.core.people import Owner
from bot.core.ports import DeliveryError
from bot.frontends.discord import media, views
from bot.frontends.parts import SentParts

log = logging.getLogger(__name__)

# How often a message refused as too large (413) is recompressed smaller before giving up.
MAX_SHRINKS = 3
# ``Owner.route[LATE] == BY_DM``: the bot can't post in the job's channel (found when it was
# asked), so an answer after the token goes to the user's DMs at once.
LATE, BY_DM = "late", "dm"
# Discord's codes for "the bot may not post here": Missing Access, Missing Permissions.
_NOT_HERE = frozenset({50001, 50013})


class _Target(Protocol):
    file_limit: int

    async def post(
        self,
        content: str | None,
        files: list[discord.File],
        view: discord.ui.View | None,
        *,
        first: bool,
    ) -> discord.Message:
        """Post one message."""
        ...


class _InteractionTarget:
    """The first message replaces the "thinking…" response; the rest are followups."""

    def __init__(self, interaction: discord.Interaction[Any]) -> None:
        self.interaction = interaction
        self.file_limit = interaction.filesize_limit

    async def post(
        self,
        content: str | None,
        files: list[discord.File],
        view: discord.ui.View | None,
        *,
        first: bool,
    ) -> discord.Message:
        if first:
            return await self.interaction.edit_original_response(
                content=views.clip(content or ""), attachments=files, view=view
            )
        extra: dict[str, Any] = {"content": views.clip(content)} if content is not None else {}
        if view is not None:
            extra["view"] = view
        return await self.interaction.followup.send(files=files, wait=True, **extra)


class _ChannelTarget:
    """After the token is gone: a plain message in the channel, mentioning the user."""

    def __init__(self, client: discord.Client, owner: Owner) -> None:
        guild_id = int(owner.route.get("guild") or 0) or None
        self.channel = client.get_partial_messageable(int(owner.chat_id), guild_id=guild_id)
        guild = client.get_guild(guild_id) if guild_id else None
        self.file_limit = guild.filesize_limit if guild else media.DEFAULT_FILE_LIMIT
        self.user = discord.Object(int(owner.user_id))

    async def post(
        self,
        content: str | None,
        files: list[discord.File],
        view: discord.ui.View | None,
        *,
        first: bool,
    ) -> discord.Message:
        if first and content:
            content = join(" ", [f"<@{self.user.id}>", content])
        text = views.clip(content) if content else content
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        return await self.channel.send(
            content=text,
            files=files,
            # Ping the user the answer is for, and nobody a prompt might name.
            allowed_mentions=discord.AllowedMentions(
                everyone=False, users=[self.user], roles=False, replied_user=False
            ),
            **extra,
        )


@dataclass(frozen=True)
class Sent:
    """Where an answer went: the link of the first message this call posted, and each image's
    attachment URL (by image index; signed, and refreshed when it is used again: ``fetch``)."""

    link: str
    urls: dict[int, str]


class _DirectTarget:
    """The user's DMs with the bot, where it can't post in the channel. They must share a
    server with the bot and take DMs from its members, else Discord refuses (50007)."""

    def __init__(self, client: discord.Client, owner: Owner) -> None:
        self.client = client
        self.user = discord.Object(int(owner.user_id))
        self.file_limit = media.DEFAULT_FILE_LIMIT

    async def post(
        self,
        content: str | None,
        files: list[discord.File],
        view: discord.ui.View | None,
        *,
        first: bool,
    ) -> discord.Message:
        channel = await self.client.create_dm(self.user)
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        text = views.clip(content) if content else None
        return await channel.send(content=text, files=files, **extra)


def _late_target(client: discord.Client, owner: Owner) -> _Target:
    """Where an answer goes once the interaction's token can't carry it."""
    if owner.route.get(LATE) == BY_DM:
        return _DirectTarget(client, owner)
    return _ChannelTarget(client, owner)


async def post(
    client: discord.Client,
    job: Job,
    owner: Owner,
    interaction: discord.Interaction[Any] | None,
    content: str,
    images: Sequence[ResultImage] = (),
    view: discord.ui.View | None = None,
    alt: Sequence[str] = (),
    *,
    parts: SentParts | None = None,
) -> Sent:
    """Post ``content`` and ``images`` for ``owner`` (split over messages if needed, ``view`` on
    the last, ``alt`` the images' alt texts); where it went. A retry sends only the messages
    ``parts`` says did not go (each parked with its images' attachment URLs); without
    ``parts`` (a job shown again), nothing is parked."""
    job_id = job.id
    target: _Target = (
        _InteractionTarget(interaction) if interaction else _late_target(client, owner)
    )
    if parts is not None and len(images) > 1:  # one image is one message: nothing to remember
        await parts.load()
    parked = parts.sent.values() if parts is not None else ()
    urls = {int(i): url for value in parked for i, url in json.loads(value).items()}
    went = set(urls)
    described: list[str | None] = [*alt, *[None] * (len(images) - len(alt))]
    pending = [(i, text) for i, text in zip(images, described, strict=True) if i.index not in went]
    limit = target.file_limit
    first = not went
    shrinks = 0
    link = ""
    try:
        while True:
            messages = await asyncio.to_thread(
                media.fit,
                [image for image, _ in pending],
                stem=f"banana-{job.public_id}",
                file_limit=limit,
                alt=[text for _, text in pending],
            )
            batch = messages[0] if messages else []
            last = len(messages) <= 1
            try:
                posted = await target.post(
                    content if first else None,
                    [part.file() for part in batch],
                    view if last else None,
                    first=first,
                )
            except discord.HTTPException as exc:
                if isinstance(target, _InteractionTarget) and _token_gone(exc):
                    # Tokens last 15 minutes (or the user deleted our response): the channel
                    # is the only place left to answer.
                    log.info(
                        "job %d: interaction answer refused (%s); answering without it",
                        job_id,
                        exc,
                    )
                    target = _late_target(client, owner)
                    limit, first = target.file_limit, not went
                    continue
                if isinstance(target, _ChannelTarget) and exc.code in _NOT_HERE:
                    # The bot may not (or no longer) post in the channel: the DMs are left.
                    log.info("job %d: can't post in the channel (%s); answering by DM", job_id, exc)
                    target = _DirectTarget(client, owner)
                    limit, first = target.file_limit, not went
                    continue
                if exc.status == 413 and batch and shrinks < MAX_SHRINKS:
                    # The real limit is lower than we were told: halve the largest file.
                    shrinks += 1
                    limit = max(len(part.data) for part in batch) // 2
                    log.info(
                        "job %d: Discord found the files too large; trying %d bytes", job_id, limit
                    )
                    continue
                raise
            link = link or posted.jump_url
            sent, pending = pending[: len(batch)], pending[len(batch) :]
            indexes = [image.index for image, _ in sent]
            urls.update(zip(indexes, (a.url for a in posted.attachments), strict=False))
            if last:
                if parts is not None:
                    await parts.done()
                known = {i: url for i, url in urls.items() if url}
                return Sent(link, known if len(known) == len(images) else {})
            if parts is not None:  # parked with its URLs (none for one Discord didn't list)
                posted_urls = json.dumps({i: urls.get(i, "") for i in indexes})
                await parts.went(f"post:{indexes[0]}", posted_urls)
            went.update(indexes)
            first = False
    except discord.HTTPException as exc:
        raise _failure(job_id, owner, exc) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise DeliveryError(f"Discord unreachable: {exc!r}") from exc


async def fetch(client: discord.Client, url: str) -> bytes:
    """The bytes of an attachment we posted: its URL's signature expires, so it is refreshed
    first (``POST /attachments/refresh-urls``, which discord.py doesn't wrap)."""
    try:
        answer = await client.http.request(
            discord.http.Route("POST", "/attachments/refresh-urls"),
            json={"attachment_urls": [url]},
        )
        refreshed = [u["refreshed"] for u in answer.get("refreshed_urls", [])]
        if not refreshed:
            raise DeliveryError("Discord refreshed no URL for an attachment", permanent=True)
        return await client.http.get_from_cdn(refreshed[0])
    except discord.HTTPException as exc:
        raise DeliveryError(f"Discord has no attachment there any more: {exc.status}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise DeliveryError(f"Discord unreachable: {exc!r}") from exc


def _token_gone(exc: discord.HTTPException) -> bool:
    # 401/50027 Invalid Webhook Token; 404 Unknown Message/Webhook when the response is gone.
    return exc.status == 401 or isinstance(exc, discord.NotFound)


def _failure(job_id: int, owner: Owner, exc: discord.HTTPException) -> DeliveryError:
    reason = f"{exc.status} {exc.code}: {exc.text}"
    if exc.status == 429 or exc.status >= 500 or exc.status == 401:
        # Discord itself, our rate limit or our token: worth another try later.
        return DeliveryError(f"Discord answered {reason}")
    # No permission in the channel, the channel or DM is gone or closed, a payload Discord will
    # never take: trying again would only count towards Discord's invalid-request ban.
    log.warning(
        "job %d: cannot answer user %s in channel %s (%s); giving up on this answer",
        job_id,
        owner.user_id,
        owner.chat_id,
        reason,
    )
    return DeliveryError(f"Discord refused the answer: {reason}", permanent=True)
