"""The one-field form behind R1–R4 and "Imagine with this image" (a prompt), and behind "Make a
character" (its name)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.frontends.discord import interactions, views

OnPrompt = Callable[[discord.Interaction[Any], str], Awaitable[None]]

# Discord's caps: a modal title is at most 45 characters, a text input holds at most 4000.
TITLE_MAX = 45
INPUT_MAX = 4000
# Discord tells the bot nothing when a form is dismissed: forget an unanswered one after this.
# (Forms live in memory only, so one left open across a restart is lost; the user asks again.)
FORM_TIMEOUT = 30 * 60.0


class PromptModal(discord.ui.Modal):
    """A prompt form (or, ``short``, a name's); ``limit`` caps what can be typed (the bot's
    prompt limit)."""

    def __init__(
        self,
        *,
        title: str,
        on_prompt: OnPrompt,
        limit: int,
        default: str | None = None,
        label: str = views.PROMPT_LABEL,
        placeholder: str = views.PROMPT_PLACEHOLDER,
        short: bool = False,
    ) -> None:
        super().__init__(title=views.label(title, TITLE_MAX), timeout=FORM_TIMEOUT)
        limit = max(1, min(limit, INPUT_MAX))
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=views.label(label, TITLE_MAX),
            style=discord.TextStyle.short if short else discord.TextStyle.paragraph,
            placeholder=views.label(placeholder, 100),
            default=default[:limit] if default else None,
            max_length=limit,
        )
        self.add_item(self.prompt)
        self._on_prompt = on_prompt

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        await interactions.read_in(interaction)  # the submit runs in a task of its own
        return True

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await self._on_prompt(interaction, self.prompt.value)

    # As discord.py's own Modal.on_error, which narrows BaseView's (a modal has no failing item).
    async def on_error(  # type: ignore[override]
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await interactions.on_error(interaction, error)
