"""``/character create|list|delete`` on Discord: a slash command group. ``create`` takes the
character's pictures as ``image1`` and ``image2``; everything is answered privately (a user's
characters are theirs)."""

from __future__ import annotations

import io
from typing import Any

import discord
from discord import app_commands

from bot.core import character_texts, texts
from bot.core.characters import NAME_CHARS
from bot.core.errors import InvalidInput
from bot.core.i18n import _, join
from bot.core.presenters import character_line
from bot.frontends.discord import interactions, views
from bot.frontends.discord.forms import PromptModal

# Files on one Discord message: its most.
FILES_PER_MESSAGE = 10


def build() -> list[app_commands.Group | app_commands.ContextMenu]:
    return [_group(), app_commands.ContextMenu(name=views.MAKE_CHARACTER, callback=from_message)]


async def from_message(interaction: discord.Interaction[Any], message: discord.Message) -> None:
    """Apps → "Make a character": a form for its name; the message's pictures are its own."""
    attachments = [a for a in message.attachments if views.is_image(a)]
    if not attachments:
        await interactions.tell(interaction, views.NO_IMAGES)
        return

    async def named(modal_interaction: discord.Interaction[Any], name: str) -> None:
        await _create(modal_interaction, name, attachments)

    modal = PromptModal(
        title=views.MAKE_CHARACTER,
        on_prompt=named,
        limit=NAME_CHARS,
        label=views.NAME_LABEL,
        placeholder=views.NAME_PLACEHOLDER,
        short=True,
    )
    await interaction.response.send_modal(modal)


async def _create(
    interaction: discord.Interaction[Any], name: str, attachments: list[discord.Attachment]
) -> None:
    """Make the character, privately: the upstream calls take well past Discord's 3 s."""
    service = interactions.client_of(interaction).service
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        made = await service.create_character(
            interactions.owner(interaction),
            name,
            images=len(attachments),
            fetch=lambda: interactions.download(interaction, attachments),
        )
    except InvalidInput as refusal:
        await interactions.tell(interaction, texts.failed(refusal.message))
        return
    await interactions.tell(interaction, character_texts.character_created(made.name))


def _group() -> app_commands.Group:
    group = app_commands.Group(
        name="character", description=_("Named characters: @name in a prompt")
    )

    @group.command(name="create", description=_("Make a character from 1 or 2 pictures"))
    @app_commands.describe(
        name=_("Its name, used as @name in prompts"),
        image1=_("A picture"),
        image2=_("Another picture"),
    )
    async def create(
        interaction: discord.Interaction[Any],
        name: app_commands.Range[str, 1, NAME_CHARS],
        image1: discord.Attachment,
        image2: discord.Attachment | None = None,
    ) -> None:
        """/character create name image1 [image2]."""
        await _create(interaction, name, [a for a in (image1, image2) if a is not None])

    @group.command(name="list", description=_("Your characters, with a picture each"))
    async def list_(interaction: discord.Interaction[Any]) -> None:
        """/character list: names, and a thumbnail of each."""
        service = interactions.client_of(interaction).service
        owner = interactions.owner(interaction)
        try:
            service.throttle_press(owner.user)  # each list is a round of thumbnails
        except InvalidInput as refusal:
            await interactions.tell(interaction, texts.failed(refusal.message))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        mine = await service.characters(owner.user)
        shared = [c for c in await service.shared_characters(owner) if c not in mine]
        characters = mine + shared
        if not characters:
            await interactions.tell(interaction, character_texts.NO_CHARACTERS_YET)
            return
        for at in range(0, len(characters), FILES_PER_MESSAGE):
            chunk = characters[at : at + FILES_PER_MESSAGE]
            files = [
                discord.File(
                    io.BytesIO(await service.character_thumbnail(c)),
                    filename=f"character{c.id}.jpg",
                    description=c.name,
                )
                for c in chunk
            ]
            content = join("\n", [character_line(c, shared=c in shared) for c in chunk])
            await interaction.followup.send(views.clip(content), files=files, ephemeral=True)

    @group.command(name="delete", description=_("Delete one of your characters"))
    @app_commands.describe(name=_("The character's name"))
    async def delete(
        interaction: discord.Interaction[Any], name: app_commands.Range[str, 1, NAME_CHARS]
    ) -> None:
        """/character delete name."""
        service = interactions.client_of(interaction).service
        try:
            text = await service.delete_character(interactions.owner(interaction).user, name)
        except InvalidInput as refusal:
            text = texts.failed(refusal.message)
        await interactions.tell(interaction, text)

    @group.command(name="share", description=_("Let everyone in this server use one by its name"))
    @app_commands.describe(name=_("The character's name"))
    async def share(
        interaction: discord.Interaction[Any], name: app_commands.Range[str, 1, NAME_CHARS]
    ) -> None:
        """/character share name: usable as @name by everyone in this server."""
        service = interactions.client_of(interaction).service
        try:
            text = await service.share_character(interactions.owner(interaction), name)
        except InvalidInput as refusal:
            text = texts.failed(refusal.message)
        await interactions.tell(interaction, text)

    @group.command(name="unshare", description=_("Stop sharing a character in this server"))
    @app_commands.describe(name=_("The character's name"))
    async def unshare(
        interaction: discord.Interaction[Any], name: app_commands.Range[str, 1, NAME_CHARS]
    ) -> None:
        """/character unshare name: by its owner, or a server admin (Manage Server)."""
        service = interactions.client_of(interaction).service
        admin = interaction.guild_id is not None and interaction.permissions.manage_guild
        try:
            text = await service.unshare_character(
                interactions.owner(interaction), name, chat_admin=admin
            )
        except InvalidInput as refusal:
            text = texts.failed(refusal.message)
        await interactions.tell(interaction, text)

    return group
