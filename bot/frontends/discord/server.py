"""/server: the bot's settings in this server, for the members who may manage it (Manage Server,
as Discord computes it for the member in the channel: ``interaction.permissions``).

The panel's components are DynamicItems (``srv:<setting>``): they work after a restart, and each
press checks the presser's permission again. Everyone else is told who can change what.
"""

from __future__ import annotations

import re
from typing import Any, Self, cast

import discord

from bot.core import rules_texts, texts
from bot.core.errors import InvalidInput
from bot.core.i18n import _
from bot.core.presenters import ServerPanel
from bot.frontends.discord import interactions, views
from bot.frontends.discord.components import Handled, KeyedSelect

TOGGLE_TEMPLATE = r"srv:(?P<key>on|share)"
SELECT_TEMPLATE = r"srv:(?P<key>model|limit)"
CHANNELS_ID = "srv:ch"
# Where a server's bot may be told to answer: text and announcement channels and forums (a
# thread follows its channel).
CHANNEL_TYPES = [discord.ChannelType.text, discord.ChannelType.news, discord.ChannelType.forum]
MAX_CHANNELS = 25


def administers(interaction: discord.Interaction[Any]) -> bool:
    permissions = interaction.permissions
    return interaction.guild_id is not None and (
        permissions.manage_guild or permissions.administrator
    )


async def show(interaction: discord.Interaction[Any]) -> None:
    """/server: the panel, privately, for those who may change it."""
    if await _refused(interaction):
        return
    service = interactions.client_of(interaction).service
    panel = await service.server_panel(interactions.owner(interaction))
    content, view = panel_message(panel)
    await interaction.response.send_message(content, view=view, ephemeral=True)


async def _refused(interaction: discord.Interaction[Any]) -> bool:
    if interaction.guild_id is None:
        await interactions.tell(interaction, texts.failed(rules_texts.SERVER_ONLY))
        return True
    if not administers(interaction):
        await interactions.tell(interaction, texts.failed(views.SERVER_ADMINS_ONLY))
        return True
    return False


async def _change(interaction: discord.Interaction[Any], **changes: Any) -> None:
    """Save a change the panel asked for, and show the panel as it is now."""
    if await _refused(interaction):
        return
    service = interactions.client_of(interaction).service
    try:
        panel = await service.update_server(interactions.owner(interaction), **changes)
    except InvalidInput as refusal:
        await interactions.tell(interaction, texts.failed(refusal.message))
        return
    content, view = panel_message(panel)
    await interaction.response.edit_message(content=content, view=view)


class ServerToggle(
    Handled, discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=TOGGLE_TEMPLATE
):
    """The bot on or off here; others may press a member's buttons, or not."""

    def __init__(self, key: str, label: str = "", on: bool = True) -> None:
        style = discord.ButtonStyle.success if on else discord.ButtonStyle.secondary
        shown = views.label(label) if label else key
        super().__init__(discord.ui.Button(label=shown, custom_id=f"srv:{key}", style=style))
        self.key = key

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        return cls(match["key"])

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.guild_id is None:  # a forged press outside any server: nothing to read
            await _refused(interaction)
            return
        service = interactions.client_of(interaction).service
        current = (await service.server_panel(interactions.owner(interaction))).settings
        if self.key == "on":
            await _change(interaction, enabled=not current.enabled)
        else:
            await _change(interaction, shared_buttons=not current.shared_buttons)


class ServerSelect(
    KeyedSelect,
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=SELECT_TEMPLATE,
):
    """The members' default model; their daily images here."""

    PREFIX = "srv"

    async def choose(self, interaction: discord.Interaction[Any], value: str | None) -> None:
        if self.key == "model":
            await _change(interaction, model=value)
        elif value is not None and value.isdigit():
            await _change(interaction, daily_images=int(value))


class ServerChannels(
    Handled,
    discord.ui.DynamicItem[discord.ui.ChannelSelect[discord.ui.View]],
    template=CHANNELS_ID,
):
    """The channels the bot answers in here (none chosen: every channel)."""

    def __init__(self, chosen: tuple[str, ...] = ()) -> None:
        super().__init__(
            discord.ui.ChannelSelect(
                custom_id=CHANNELS_ID,
                channel_types=CHANNEL_TYPES,
                placeholder=views.label(_("Answer in every channel (or pick some)"), 150),
                min_values=0,
                max_values=MAX_CHANNELS,
                default_values=[
                    discord.SelectDefaultValue(
                        id=int(c), type=discord.SelectDefaultValueType.channel
                    )
                    for c in chosen[:MAX_CHANNELS]
                ],
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        return cls()

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        # The ids as sent: the channels need not be in any cache (no member intents).
        data = cast(dict[str, Any], interaction.data or {})
        values = [str(v) for v in data.get("values", [])]
        await _change(interaction, channels=tuple(v for v in values if v.isdigit()))


def panel_message(panel: ServerPanel) -> tuple[str, discord.ui.View]:
    settings = panel.settings
    view = discord.ui.View(timeout=None)
    on = (
        _("Bot: on (press to switch off)")
        if settings.enabled
        else _("Bot: off (press to switch on)")
    )
    if settings.shared_buttons:
        shared = _("Others may press a member's buttons: yes")
    else:
        shared = _("Others may press a member's buttons: no")
    for item in (
        ServerToggle("on", on, settings.enabled),
        ServerToggle("share", shared, settings.shared_buttons),
        ServerChannels(settings.channels),
        ServerSelect("model", views.server_model_options(panel)),
        ServerSelect("limit", views.server_limit_options(panel)),
    ):
        view.add_item(item)
    view.stop()  # dispatched by custom_id alone: nothing is kept per message (see buttons._view)
    return views.clip(views.server_text(panel)), view
