"""The components on our messages, as DynamicItems: they work after a restart, for anyone in
the channel the result was answered in (the core decides who may press what, where).

A custom_id holds only what the core's ``Button.data`` holds (``action:job:index``), the name
of a setting, or an example's number; everything else is read from the store when the component
is used. discord.py rebuilds the item from the custom_id (``from_custom_id``), so no view is
kept per message. A refused press is told privately, as the press's first and only response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, Self

import discord

from bot.core import history_texts, settings, texts
from bot.core.buttons import Action, Button
from bot.core.domain import GenerationRequest
from bot.core.errors import AlreadyMade, InvalidInput
from bot.core.history_views import ShowView
from bot.core.i18n import join
from bot.core.people import UserKey
from bot.core.presenters import QueueView, job_ref, label
from bot.core.public_ids import PUBLIC_ID
from bot.frontends.discord import interactions, showing, views
from bot.frontends.discord.components import Handled, KeyedSelect
from bot.frontends.discord.forms import PromptModal

log = logging.getLogger(__name__)
# The core's Button.data format (bot.core.buttons._BUTTON); the core parses it again.
BUTTON_TEMPLATE = rf"(?P<action>[udrcs]):(?P<job>[1-9][0-9]{{0,17}}|{PUBLIC_ID}):(?P<index>[0-9])"
SETTING_TEMPLATE = rf"set:(?P<key>{'|'.join(settings.NAMES)})"
EXAMPLE_TEMPLATE = r"ex:(?P<n>[1-9])"
HISTORY_TEMPLATE = r"hist:(?P<page>[0-9]{1,4})"
UNLINK_ID = "link:off"
# Discord's cap: 5 rows of 5 buttons on a message.
MAX_BUTTONS = 25
# Where an upscale was posted, by job: a second press of its button points there.
UPSCALE_SENT = "upscale.sent"

_STYLES = {
    Action.UPSCALE: discord.ButtonStyle.primary,
    Action.REROLL: discord.ButtonStyle.secondary,
    Action.REUSE: discord.ButtonStyle.secondary,
    Action.CANCEL: discord.ButtonStyle.danger,
    Action.SHOW: discord.ButtonStyle.secondary,
}


class ResultButton(
    Handled, discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=BUTTON_TEMPLATE
):
    """Upscale, edit and draw again under a result (an upscale asked for shows done, green);
    the cancel buttons of /queue; 🔎 Show under /history and a shown job (its parent)."""

    def __init__(
        self, button: Button, *, row: int | None = None, done: bool = False, shown: str = ""
    ) -> None:
        style = discord.ButtonStyle.success if done else _STYLES[button.action]
        words = shown or views.label(label(button, done=done))
        super().__init__(
            discord.ui.Button(label=words, custom_id=button.data, style=style), row=row
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
        elif button.action is Action.SHOW:
            service = interactions.client_of(interaction).service
            await showing.show(
                interaction, lambda owner: service.press_show(owner, button), shown_view
            )
        else:
            service = interactions.client_of(interaction).service

            async def refused(pressed: discord.Interaction[Any], refusal: InvalidInput) -> None:
                if isinstance(refusal, AlreadyMade):
                    await _point_to(pressed, button, refusal)
                else:
                    await interactions.refused(pressed, refusal)

            queued = await interactions.start_job(
                interaction, lambda owner: service.admit_press(owner, button), refuse=refused
            )
            if queued and button.action is Action.UPSCALE:
                await _mark_done(interaction, button)


async def _point_to(
    interaction: discord.Interaction[Any], button: Button, made: AlreadyMade
) -> None:
    """An upscale made before: the presser is shown where it was posted, privately; it is
    never paid for twice."""
    parking = interactions.client_of(interaction).parking
    # Read in place: taking and parking again would lose it to a stop in between, and hide it
    # from a press at the same time.
    where = await parking.peek_pending(UPSCALE_SENT, str(made.job_id))
    await interactions.tell(
        interaction, join(" ", [made.message, where[-1]]) if where else views.UPSCALED_ABOVE
    )
    await _mark_done(interaction, button)


async def _mark_done(interaction: discord.Interaction[Any], button: Button) -> None:
    """Show a pressed upscale as done on the result (a courtesy: where the bot can't edit the
    message, e.g. installed by a user only, it stays as it was). Its labels keep their words:
    the result may be someone else's, in their language."""
    message = interaction.message
    if message is None:
        return
    rows: list[list[ResultButton]] = []
    for row in message.components:
        rows.append([])
        for item in getattr(row, "children", []):
            parsed = Button.parse(getattr(item, "custom_id", None) or "")
            if parsed is None:
                return  # not a result's buttons: leave it alone
            marked = item.style is discord.ButtonStyle.success
            if parsed == button and marked:
                return  # shown as done already
            done = marked or parsed == button
            shown = "" if parsed == button else getattr(item, "label", None) or ""
            rows[-1].append(ResultButton(parsed, row=len(rows) - 1, done=done, shown=shown))
    try:
        await message.edit(view=_view(item for row in rows for item in row))
    except discord.HTTPException as exc:
        log.info("could not mark upscale %s as done: %s", button.data, exc)


async def _ask_reuse_prompt(interaction: discord.Interaction[Any], button: Button) -> None:
    """Edit n: a form for the new prompt, prefilled with the old one."""
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
        title=views.reuse_title(button.index),
        default=job.request.prompt,
        on_prompt=submit,
        limit=service.limits.max_prompt_chars,
    )
    await interaction.response.send_modal(modal)


async def _cancel(interaction: discord.Interaction[Any], button: Button) -> None:
    """✖ under /queue: cancel, say so where the job's position was shown, list the rest."""
    client = interactions.client_of(interaction)
    owner = interactions.owner(interaction)
    try:
        done = await client.service.press_cancel(owner, button)
    except InvalidInput as refusal:
        await interactions.tell(interaction, texts.failed(refusal.message))
        return
    job = await client.service.find_job(button.job)
    if job is not None:
        await client.live.ended(job.id, texts.CANCELLED_STATUS)
    content, view = await queue_panel(interaction, owner.user)
    await interaction.response.edit_message(
        content=views.clip(join("", [job_ref(button.job), ": ", done, "\n\n", content])),
        view=view,
    )


class SettingSelect(
    KeyedSelect,
    discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]],
    template=SETTING_TEMPLATE,
):
    """One of the /settings menus; choosing saves at once."""

    PREFIX = "set"

    async def choose(self, interaction: discord.Interaction[Any], value: str | None) -> None:
        service = interactions.client_of(interaction).service
        user = interactions.owner(interaction).user
        try:
            await service.update_settings(user, **{self.key: value})
        except InvalidInput as refusal:
            await interactions.tell(interaction, texts.failed(refusal.message))
            return
        await interactions.read_in(interaction)  # a new language applies to the panel at once
        content, view = await settings_panel(interaction)
        await interaction.response.edit_message(content=content, view=view)


class ExampleButton(
    Handled, discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=EXAMPLE_TEMPLATE
):
    """An example prompt under the bot's introduction: a tap runs it as the presser's own."""

    def __init__(self, number: int) -> None:
        shown, _ = texts.EXAMPLES[number - 1]
        super().__init__(
            discord.ui.Button(
                label=views.label(shown),
                custom_id=f"ex:{number}",
                style=discord.ButtonStyle.secondary,
            )
        )
        self.number = number

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        number = int(match["n"])
        if number > len(texts.EXAMPLES):
            raise ValueError(f"no example {number}")
        return cls(number)

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        service = interactions.client_of(interaction).service
        _, prompt = texts.EXAMPLES[self.number - 1]
        await interactions.start_job(interaction, lambda owner: service.admit(owner, prompt))


class HistoryPage(
    Handled, discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=HISTORY_TEMPLATE
):
    """‹ › under /history: another page of the presser's own jobs."""

    def __init__(self, page: int, label: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=views.label(label),
                custom_id=f"hist:{page}",
                style=discord.ButtonStyle.secondary,
            )
        )
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        return cls(int(match["page"]), getattr(item, "label", None) or "")

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        service = interactions.client_of(interaction).service
        user = interactions.owner(interaction).user
        try:
            service.throttle_press(user)
        except InvalidInput as refusal:
            await interactions.tell(interaction, texts.failed(refusal.message))
            return
        content, view = await history_panel(interaction, user, self.page)
        await _own_panel(interaction, content, view)


class UnlinkButton(
    Handled, discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=UNLINK_ID
):
    """Unlink, under /link: part the presser's accounts."""

    def __init__(self) -> None:
        super().__init__(
            discord.ui.Button(
                label=views.label(views.UNLINK),
                custom_id=UNLINK_ID,
                style=discord.ButtonStyle.danger,
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Self:
        return cls()

    async def handle(self, interaction: discord.Interaction[Any]) -> None:
        service = interactions.client_of(interaction).service
        try:
            said = await service.unlink(interactions.owner(interaction).user)
        except InvalidInput as refusal:
            await interactions.tell(interaction, texts.failed(refusal.message))
            return
        await _own_panel(interaction, views.clip(said), None)


async def _own_panel(
    interaction: discord.Interaction[Any], content: str, view: discord.ui.View | None
) -> None:
    """Redraw the presser's own (ephemeral) panel; on any other message, whose custom id may
    be forged, answer privately instead of touching it."""
    message = interaction.message
    if message is not None and message.flags.ephemeral:
        await interaction.response.edit_message(content=content, view=view)
    elif view is None:
        await interaction.response.send_message(content, ephemeral=True)
    else:
        await interaction.response.send_message(content, view=view, ephemeral=True)


def result_view(rows: Iterable[Iterable[Button]]) -> discord.ui.View:
    return _view(ResultButton(b, row=r) for r, row in enumerate(rows) for b in row)


def shown_view(shown: ShowView) -> discord.ui.View | None:
    return result_view(shown.rows) if shown.rows else None


async def history_panel(
    interaction: discord.Interaction[Any], user: UserKey, page: int = 0
) -> tuple[str, discord.ui.View]:
    """The /history message: a page of the user's jobs, a 🔎 button each, and ‹ ›."""
    view = await interactions.client_of(interaction).service.history(user, page)
    items: list[discord.ui.Item[Any]] = [ResultButton(row.show, row=0) for row in view.rows]
    if view.page > 0:
        items.append(HistoryPage(view.page - 1, history_texts.NEWER))
    if view.more:
        items.append(HistoryPage(view.page + 1, history_texts.OLDER))
    for item in items[len(view.rows) :]:
        item.row = 1
    return views.clip(views.history_text(view)), _view(items)


def link_view() -> discord.ui.View:
    return _view([UnlinkButton()])


def examples_view() -> discord.ui.View:
    return _view(ExampleButton(n) for n in range(1, len(texts.EXAMPLES) + 1))


async def queue_panel(
    interaction: discord.Interaction[Any], user: UserKey
) -> tuple[str, discord.ui.View]:
    """The /queue message: the user's jobs, and a cancel button for each."""
    view = QueueView.of(await interactions.client_of(interaction).service.queue(user))
    buttons = _view(ResultButton(button) for button in view.cancels[:MAX_BUTTONS])
    return views.clip(views.queue_text(view)), buttons


async def settings_panel(interaction: discord.Interaction[Any]) -> tuple[str, discord.ui.View]:
    """The /settings message: today's images, what is set, and a menu per setting."""
    service = interactions.client_of(interaction).service
    info = await service.info(interactions.owner(interaction))
    panel = info.settings
    selects = [SettingSelect(row.setting.name, views.setting_options(row)) for row in panel.rows]
    return views.clip(join("\n\n", [panel.text, info.usage])), _view(selects)


def _view(items: Iterable[discord.ui.Item[Any]]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    # Every item is a DynamicItem, dispatched by its custom_id alone. A stopped view is never
    # stored by discord.py: nothing is kept per message, and no view timeout runs (on timeout
    # discord.py removes a view, and removing one can unregister its DynamicItem classes).
    view.stop()
    return view
