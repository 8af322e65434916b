"""What every handler does with an interaction: reach the service, name who asked, acknowledge
within Discord's 3 seconds, answer privately, take a prompt from check to queue, and end an
unexpected error with a sentence (``on_error``, called by the command tree, the forms and the
components alike).

A prompt or press is first checked by the core (a refusal is the private first response), its
job stored and queued, then answered with its place in the queue (the public first response,
within the 3 s); that message is edited as the job moves, and becomes the answer. Under a
burst the checks may wait for the store behind a thousand others: an interaction still
unanswered ``ACK_BUDGET`` seconds after Discord made it is deferred ("thinking…") so that it is
acknowledged in time (platforms.md: "Acknowledge an interaction within 3 s"), and while ``BUSY``
prompts are in their checks already, a new one is deferred at once; its job then shows its
place once the place changes, and its answer takes that message's place all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import aiohttp
import discord

from bot.core import i18n, option_texts, texts
from bot.core.errors import InvalidInput
from bot.core.people import DISCORD, Owner, UserKey
from bot.core.ports import Parking
from bot.core.service.api import Admit, BotApi, Fetch
from bot.frontends.discord import delivery, views
from bot.frontends.discord.status import LiveInteractions

log = logging.getLogger(__name__)
# Discord forgets an interaction not acknowledged within 3 s of its creation (10062 Unknown
# interaction; the user sees "The application did not respond"). Half of it for the checks;
# the rest for a busy event loop and the callback's way to Discord.
ACK_BUDGET = 1.5
# More prompts than this in their checks at once (a burst): the next is deferred at once, not
# when its budget runs out, so that a burst's deferrals don't all fall due together (late).
BUSY = 16
# An attachment the CDN refused, or that could not be fetched at all (no connection, no answer
# in time): the user is told the download failed, as for any refusal.
DOWNLOAD_FAULTS = (discord.HTTPException, aiohttp.ClientError, TimeoutError)
# The attachments' downloads, all together, end within this (seconds): discord.py's session
# waits up to aiohttp's 5 minutes for a CDN that took the connection and sends nothing.
DOWNLOAD_SECONDS = 60.0
# The slash commands that start a job (``start_job``): their 3 s count from the command tree's
# check, before the user's language is looked up.
PROMPTS = frozenset({"imagine"})
# Discord's answer to a first response when it has one already: discord.py tries a callback again
# after a 5xx, which Discord's edge may send for a response that went through.
ALREADY_ACKNOWLEDGED = 40060


@runtime_checkable
class HasService(Protocol):
    """The client, as handlers see it (``interaction.client``)."""

    service: BotApi
    live: LiveInteractions
    parking: Parking


async def read_in(interaction: discord.Interaction[Any]) -> None:
    """Answer this interaction in its user's language (their choice in /settings, else the
    locale their Discord app sends with every interaction), from here to its end."""
    user = UserKey(DISCORD, str(interaction.user.id))
    i18n.answer_in(await client_of(interaction).service.reader(user, interaction.locale.value))


def client_of(interaction: discord.Interaction[Any]) -> HasService:
    client = interaction.client
    if not isinstance(client, HasService):
        raise TypeError(f"interaction from an unexpected client: {client!r}")
    return client


def owner(interaction: discord.Interaction[Any]) -> Owner:
    route = {"guild": str(interaction.guild_id or ""), "interaction": str(interaction.id)}
    if not can_post_here(interaction):
        route[delivery.LATE] = delivery.BY_DM
    channel = interaction.channel
    # A thread follows its channel's settings (channel_id is the thread's own).
    parent = channel.parent_id if isinstance(channel, discord.Thread) else None
    return Owner(
        platform=DISCORD,
        user_id=str(interaction.user.id),
        chat_id=str(interaction.channel_id or 0),
        route=route,
        server=str(interaction.guild_id) if interaction.guild_id else None,
        parent=str(parent) if parent else None,
        # Plain text in a caption: "@name" is no mention on Discord, so it pings nobody.
        name=f"@{interaction.user.name}",
    )


def can_post_here(interaction: discord.Interaction[Any]) -> bool:
    """Whether the bot may post in the interaction's channel on its own, as an answer that
    outlives the interaction's token must."""
    if interaction.context.private_channel:
        return False  # a group DM, or a DM between users: the bot is not in it (a user install)
    if interaction.guild_id is None:
        return True  # the user's DM with the bot
    if not interaction.is_guild_integration():
        return False  # a server that never invited the bot: the user's own install
    allowed = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread)
    send = allowed.send_messages_in_threads if in_thread else allowed.send_messages
    return allowed.view_channel and send and allowed.attach_files


async def acknowledge(interaction: discord.Interaction[Any], text: str | None = None) -> bool:
    """Answer publicly with ``text`` (a job's status), or defer ("thinking…") without one;
    interactions must be acknowledged within 3 s."""
    try:
        if text is None:
            await interaction.response.defer(thinking=True)
        else:
            await interaction.response.send_message(views.clip(text))
    except discord.HTTPException as exc:
        if exc.code == ALREADY_ACKNOWLEDGED:
            log.info(
                "interaction %s: Discord took the response it answered an error to", interaction.id
            )
            return True
        # Too late (10062 Unknown interaction): the user saw "did not respond".
        log.warning("could not acknowledge interaction %s: %s", interaction.id, exc)
        return False
    return True


async def tell(interaction: discord.Interaction[Any], text: str) -> None:
    """Say ``text`` to the user alone (an ephemeral message)."""
    text = views.clip(text)
    response = interaction.response
    if not response.is_done():
        await response.send_message(text, ephemeral=True)
        return
    public = (
        discord.InteractionResponseType.channel_message,
        discord.InteractionResponseType.deferred_channel_message,
    )
    if response.type in public:
        # A prompt's first response is public (its answer will be): drop that status message
        # (or "thinking…": a followup would take its place, public), then say it in an
        # ephemeral followup.
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
    await interaction.followup.send(text, ephemeral=True)


# Says a refusal the core gave (by default privately, as a failure).
Refuse = Callable[[discord.Interaction[Any], InvalidInput], Awaitable[None]]


async def refused(interaction: discord.Interaction[Any], refusal: InvalidInput) -> None:
    await tell(interaction, texts.failed(refusal.message))


async def start_job(
    interaction: discord.Interaction[Any],
    admit: Admit,
    fetch: Fetch | None = None,
    refuse: Refuse = refused,
) -> bool:
    """Check the request, fetch its attachments, store and queue it, then answer with its
    place in the queue; whether it was queued. What the checks refuse is said privately at once
    (``refuse``), with no public status first; checks that take longer than ``ACK_BUDGET`` are
    deferred. Durable by construction: the job is stored before it is announced, so a /queue
    elsewhere shows it, and a crash never announces a job that isn't there. It starts only once
    announced: one Discord forgot (10062) is cancelled before the upstream is asked."""
    first = FirstResponse.of(interaction)
    client = client_of(interaction)
    try:
        async with admit(owner(interaction)) as admission:
            submitted = await admission.submit(fetch=fetch, until_told=True)
            # Nothing awaited since the job was queued: its progress and answer can't have
            # come yet; they wait for the first response.
            live = client.live.track(submitted.job_id, interaction)
    except InvalidInput as refusal:
        await first.settle()
        await refuse(interaction, refusal)
        return False
    finally:
        await first.settle()
    said = False
    try:
        said = await first.say(texts.queued(submitted.position, paused=submitted.paused))
    except BaseException:
        # Not refused (a stop under way, a broken connection): the accepted job is kept, and
        # starts; only Discord's "too late" cancels it.
        client.service.told(submitted.job_id)
        raise
    finally:
        live.final = not said
        live.answered.set()
    if said:
        client.service.told(submitted.job_id)
    else:
        # Too late: the user saw "did not respond", so they may simply ask again; this one
        # must not be made (and paid) as well, and it hasn't started.
        client.live.discard(submitted.job_id)
        with contextlib.suppress(InvalidInput):
            await client.service.cancel(owner(interaction).user, submitted.job_id)
    return said


class FirstResponse:
    """An interaction's first response: what ``say`` says if it comes within ``ACK_BUDGET``
    of the interaction's creation, else "thinking…" (deferred) then; "thinking…" at once if
    ``BUSY`` others are in their checks."""

    checking = 0  # this process's prompts not acknowledged yet

    @classmethod
    def of(cls, interaction: discord.Interaction[Any]) -> FirstResponse:
        """The interaction's, due from its first call (the command tree's check, for a
        prompt, so that what runs before the command counts too)."""
        first = interaction.extras.get(cls.__name__)
        if not isinstance(first, cls):
            first = interaction.extras[cls.__name__] = cls(interaction)
        return first

    def __init__(self, interaction: discord.Interaction[Any]) -> None:
        self._interaction = interaction
        self._lock = asyncio.Lock()  # the deferral and the answer: one of them, whole
        self._deferred = False
        age = (discord.utils.utcnow() - interaction.created_at).total_seconds()
        # Clamped: a clock behind Discord's must not push the deadline out of the window.
        due = 0.0 if FirstResponse.checking >= BUSY else min(ACK_BUDGET, ACK_BUDGET - age)
        FirstResponse.checking += 1
        self._checking = True
        self._timer = asyncio.create_task(self._defer_in(due))

    def _checked(self) -> None:
        if self._checking:
            FirstResponse.checking -= 1
            self._checking = False

    async def _defer_in(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
        self._checked()  # acknowledged from here on, whatever becomes of the command
        async with self._lock:
            if not self._interaction.response.is_done():
                self._deferred = await acknowledge(self._interaction)

    async def say(self, text: str) -> bool:
        """Acknowledge with ``text``, or not at all if deferred already; whether the
        interaction is acknowledged."""
        self._checked()
        async with self._lock:
            self._timer.cancel()
            if self._interaction.response.is_done():
                return self._deferred
            return await acknowledge(self._interaction, text)

    async def settle(self) -> None:
        """No deferral from now on: the caller answers (or has)."""
        self._checked()
        async with self._lock:
            self._timer.cancel()


async def download(
    interaction: discord.Interaction[Any], attachments: Sequence[discord.Attachment]
) -> list[bytes]:
    """The attachments' bytes, fetched now: their signed URLs expire."""
    limit = client_of(interaction).service.limits.max_image_bytes
    for attachment in attachments:
        # Refused by the size Discord reports, before a byte is downloaded.
        if attachment.size > limit:
            raise InvalidInput(option_texts.image_too_large(attachment.size, limit))
    try:
        async with asyncio.timeout(DOWNLOAD_SECONDS):
            return list(await asyncio.gather(*(a.read() for a in attachments)))
    except DOWNLOAD_FAULTS as exc:
        log.info("attachment download failed: %s", exc)
        raise InvalidInput(views.DOWNLOAD_FAILED) from exc


async def on_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """A handler failed unexpectedly: log it and tell the user, rather than fall silent."""
    log.error("interaction %s failed", interaction.id, exc_info=error)
    with contextlib.suppress(discord.HTTPException):
        await tell(interaction, texts.failed(texts.INTERNAL))
