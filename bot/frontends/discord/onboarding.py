"""Meeting the bot: it introduces itself once when added to a server, with examples to tap.

Without the message-content intent the bot reads no messages, so the introduction goes where
Discord itself greets newcomers, the server's system channel, if the bot may post there; else it
says nothing (the slash commands are listed in Discord's own menu all the same). A tapped example
is the presser's own prompt (``buttons.ExampleButton``).
"""

from __future__ import annotations

import logging

import discord

from bot.core import i18n
from bot.core.i18n import _
from bot.frontends.discord import views
from bot.frontends.discord.buttons import examples_view

log = logging.getLogger(__name__)


async def introduce(client: discord.Client, guild: discord.Guild) -> None:
    channel = guild.system_channel
    if channel is None or not channel.permissions_for(guild.me).send_messages:
        log.info("joined guild %s: no system channel to introduce the bot in", guild.id)
        return
    name = client.user.display_name if client.user else _("the image bot")
    # Nobody wrote yet: the server's own language (Server Settings → Community), if shipped.
    code = i18n.pick(guild.preferred_locale.value)
    try:
        with i18n.reading(i18n.language(code) if code else i18n.default()):
            await channel.send(views.clip(views.introduction(name)), view=examples_view())
    except discord.HTTPException as exc:  # a courtesy: the commands work without it
        log.info("could not introduce the bot in guild %s: %s", guild.id, exc)
