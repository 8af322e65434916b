"""The components on our messages, as DynamicItems: they work after a restart, for anyone in
the channel the result was answered in (the core decides who may press what, where).

A custom_id holds only what the core's ``Button.data`` holds (``action:job:index``) or the name
of a setting; everything else is read from the store when the component is used. discord.py
rebuilds the item from the custom_id (``from_custom_id``), so no view is kept per message.
A refused press is told privately, as the press's first and only response.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Self

import discord

from bot.core import settings, texts
from bot.core.domain import Action, Button, GenerationRequest, UserKey
from bot.core.errors import InvalidInput
from bot.core.presenters import QueueView, SettingsPanel
from bot.frontends.discord import interactions, views
from bot.frontends.discord.forms import PromptModal

# Exactly the core's Button.data format (bot.core.domain._BUTTON).
BUTTON_TEMPLATE = r"(?P<action>[udrc]):(?P<job>[1-9][0-9]{0,17}):(?P<index>[0-9])"
SETTING_TEMPLATE = rf"set:(?P<key>{'|'.join(settings.NAMES)})"
# Discord's cap: 5 rows of 5 buttons on a message.
MAX_BUTTONS = 25

_STYLES = {
    Action.UPSCALE: discord.ButtonStyle.primary,
    Action.REROLL: discord.ButtonStyle.secondary,
    Action.REUSE: discord.ButtonStyle.secondary,
    Action.CANCEL: discord.ButtonStyle.danger,
}


class _Handled:
    """A component's callback: its handler, whose unexpected errors end in ``on_error`` like a
    command's (discord.py only logs what a DynamicItem's callback raises)."""

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self.handle(interaction)
        except Exception as error:
            await interactions.on_error(interaction, error)

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        raise NotImplementedError


class ResultButton(
    _Handled, discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=BUTTON_TEMPLATE
):
    """U1–U4, 🎲 and R1–R4 under a result; the cancel buttons of /queue."""

    def __init__(self, button: Button, *, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=button.label, custom_id=button.data, style=_STYLES[button.action]
            ),
            row=row,
        )
        self.button = button

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        # The custom_id comes from the client and may be forged: the core parses it again.
        button = Button.parse(match[0])
        if button is None:
            raise ValueError(f"not a button: {match[0]!r}")
        return cls(button)

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        button = self.button
        if button.action is Action.REUSE:
            await _ask_reuse_prompt(interaction, button)
        elif button.action is Action.CANCEL:
            await _cancel(interaction, button)
        else:
            service = interactions.client_of(interaction).service
            await interactions.start_job(
                interaction, lambda owner: service.admit_press(owner, button)
            )


async def _ask_reuse_prompt(interaction: discord.Interaction[Any], button: Button) -> None:
    """Rn: a form for the new prompt, prefilled with the old one."""
    service = interactions.client_of(interaction).service
    # A form must be the first answer (it cannot follow a defer): one quick store read, well
    # within the 3 s to acknowledge, says whether this press may see the old prompt at all.
    try:
        job = await service.pressed_job(interactions.owner(interaction), button)
    except InvalidInput as refusal:
        await interactions.tell(interaction, texts.failed(refusal.message))
        return
    assert isinstance(job.request, GenerationRequest)  # pressed_job refuses upscales

    async def submit(modal_interaction: discord.Interaction[Any], prompt: str) -> None:
        await interactions.start_job(
            modal_interaction, lambda owner: service.admit_press(owner, button, prompt=prompt)
        )

    modal = PromptModal(
        title=views.reuse_title(button.index), default=job.request.prompt, on_prompt=submit
    )
    await interaction.response.send_modal(modal)


async def _cancel(interaction: discord.Interaction[Any], button: Button) -> None:
    """✖ under /queue: cancel, say so where the job's position was shown, list the rest."""
    client = interactions.client_of(interaction)
    owner = interactions.owner(interaction)
    try:
        await client.service.press_cancel(owner, button)
    except InvalidInput as refusal:
        await interactions.tell(interaction, texts.failed(refusal.message))
        return
    await client.live.cancelled(button.job_id)
    content, view = await queue_panel(interaction, owner.user)
    await interaction.response.edit_message(
        content=views.clip(f"{texts.CANCELLED} (#{button.job_id})\n\n{content}"), view=view
    )


class SettingSelect(
    _Handled, discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]], template=SETTING_TEMPLATE
):
    """One of the /settings menus; choosing saves at once."""

    def __init__(self, key: str, options: list[discord.SelectOption]) -> None:
        super().__init__(discord.ui.Select(custom_id=f"set:{key}", options=options))
        self.key = key

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        options = item.options if isinstance(item, discord.ui.Select) else []
        return cls(match["key"], options)

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        service = interactions.client_of(interaction).service
        user = interactions.owner(interaction).user
        chosen = self.item.values[0] if self.item.values else views.RESET
        try:
            await service.update_settings(
                user, **{self.key: None if chosen == views.RESET else chosen}
            )
        except InvalidInput as refusal:
            await interactions.tell(interaction, texts.failed(refusal.message))
            return
        content, view = await settings_panel(interaction, user)
        await interaction.response.edit_message(content=content, view=view)


def result_view(rows: Iterable[Iterable[Button]]) -> discord.ui.View:
    return _view(ResultButton(b, row=r) for r, row in enumerate(rows) for b in row)


async def queue_panel(
    interaction: discord.Interaction[Any], user: UserKey
) -> tuple[str, discord.ui.View]:
    """The /queue message: the user's jobs, and a cancel button for each one still waiting."""
    view = QueueView.of(await interactions.client_of(interaction).service.queue(user))
    cancels = view.cancellable[:MAX_BUTTONS]
    buttons = _view(ResultButton(Button(Action.CANCEL, job_id)) for job_id in cancels)
    return views.clip(views.queue_text(view)), buttons


async def settings_panel(
    interaction: discord.Interaction[Any], user: UserKey
) -> tuple[str, discord.ui.View]:
    """The /settings message: what is set, and a menu per setting."""
    service = interactions.client_of(interaction).service
    panel = SettingsPanel.of(await service.settings(user), service.models, service.defaults)
    selects = [SettingSelect(row.setting.name, views.setting_options(row)) for row in panel.rows]
    return views.clip(views.settings_text(panel)), _view(selects)


def _view(items: Iterable[discord.ui.Item[Any]]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    # Every item is a DynamicItem, dispatched by its custom_id alone. A stopped view is never
    # stored by discord.py: nothing is kept per message, and no view timeout runs (on timeout
    # discord.py removes a view, and removing one can unregister its DynamicItem classes).
    view.stop()
    return view
