"""What our components share: a handler whose unexpected errors end in ``on_error``, and the
select menu named by its custom_id (``prefix:key``: /settings' and /server's menus).

Each is a DynamicItem (its subclass names the template): discord.py rebuilds it from the
custom_id of the component pressed, so it works after a restart and no view is kept.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Self

import discord

from bot.frontends.discord import interactions, views


class Handled:
    """A component's callback: its handler, whose unexpected errors end in ``on_error`` like a
    command's (discord.py only logs what a DynamicItem's callback raises)."""

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await interactions.read_in(interaction)
            await self.handle(interaction)
        except Exception as error:
            await interactions.on_error(interaction, error)

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        raise NotImplementedError


class KeyedSelect(Handled):
    """A select menu whose custom_id is ``PREFIX:key``, rebuilt from it with the options the
    message holds; a choice is ``choose(key's value)``, None for the menu's reset entry. A
    subclass is also ``DynamicItem[Select]`` with a template capturing ``key``."""

    PREFIX: ClassVar[str]
    key: str
    item: discord.ui.Select[discord.ui.View]  # DynamicItem's

    def __init__(self, key: str, options: list[discord.SelectOption]) -> None:
        select = discord.ui.Select[discord.ui.View](
            custom_id=f"{self.PREFIX}:{key}", options=options
        )
        super().__init__(select)  # type: ignore[call-arg]  # DynamicItem's, after this mixin
        self.key = key

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        options = item.options if isinstance(item, discord.ui.Select) else []
        return cls(match["key"], options)

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        chosen = self.item.values[0] if self.item.values else views.RESET
        await self.choose(interaction, None if chosen == views.RESET else chosen)

    async def choose(self, interaction: discord.Interaction[Any], value: str | None) -> None:
        raise NotImplementedError
