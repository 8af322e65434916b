"""The application commands: /imagine, /settings, /queue, /info, /history, /show, /link, /help,
/character, the message context menu, /server (``server``) and the operator's /admin group.

Built fresh for each client (the model table decides the choices), so that two clients in one
process (a restart in tests) never share command objects. What a handler raises unexpectedly
ends in the command tree's ``on_error`` (``interactions.on_error``).
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.core import texts
from bot.core.errors import InvalidInput
from bot.core.i18n import _
from bot.core.models_table import MAX_COUNT, MAX_SEED, MIN_COUNT, ModelTable
from bot.core.options import Options
from bot.core.presenters import HelpView
from bot.core.stats import StatsView
from bot.frontends.discord import characters, interactions, server, showing, views
from bot.frontends.discord.buttons import (
    history_panel,
    link_view,
    queue_panel,
    settings_panel,
    shown_view,
)
from bot.frontends.discord.forms import PromptModal

AppCommand = app_commands.Command[Any, ..., Any] | app_commands.ContextMenu | app_commands.Group
# Discord's cap on the choices of one option.
MAX_CHOICES = 25


def build(models: ModelTable) -> list[AppCommand]:
    return [
        _imagine(models),
        app_commands.Command(
            name="settings",
            description=_("Your default model, size, count and upscale"),
            callback=settings,
        ),
        app_commands.Command(
            name="queue", description=_("Your waiting and running jobs"), callback=queue
        ),
        app_commands.Command(
            name="info",
            description=_("Your images today and left, your jobs, your defaults"),
            callback=info,
        ),
        app_commands.Command(
            name="history", description=_("Your jobs, newest first"), callback=history
        ),
        app_commands.Command(
            name="show", description=_("A job's images again, with its buttons"), callback=show
        ),
        app_commands.Command(
            name="link", description=_("Join this account with your Telegram one"), callback=link
        ),
        app_commands.Command(name="help", description=_("How to use this bot"), callback=help_),
        *characters.build(),
        app_commands.ContextMenu(name=views.CONTEXT_MENU, callback=imagine_with_image),
        app_commands.Command(
            name="server",
            description=_("The bot's settings in this server (for its admins)"),
            callback=server.show,
        ),
        _admin(),
    ]


def _imagine(models: ModelTable) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="imagine", description=_("Make images from a description"))
    @app_commands.describe(
        prompt=app_commands.locale_str(
            _("What to draw; options work here too: {options}", options=texts.FLAGS_HELP)
        ),
        model=_("Which model (default: your /settings)"),
        aspect_ratio=_("Shape of the image"),
        count=app_commands.locale_str(
            _("How many images, {low}–{high}", low=MIN_COUNT, high=MAX_COUNT)
        ),
        seed=_("Same seed + same prompt = a similar image"),
        image1=_("A reference image"),
        image2=_("Another reference image"),
        image3=_("Another reference image"),
        image4=_("Another reference image"),
    )
    @app_commands.choices(
        model=[app_commands.Choice(name=m.label, value=m.id) for m in models.models][:MAX_CHOICES],
        aspect_ratio=[app_commands.Choice(name=r, value=r) for r in models.all_ratios()][
            :MAX_CHOICES
        ],
    )
    async def imagine(
        interaction: discord.Interaction[Any],
        prompt: str,
        model: str | None = None,
        aspect_ratio: str | None = None,
        count: app_commands.Range[int, MIN_COUNT, MAX_COUNT] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
    ) -> None:
        """/imagine prompt [model] [aspect_ratio] [count] [seed] [image1…image4]."""
        service = interactions.client_of(interaction).service
        attachments = [a for a in (image1, image2, image3, image4) if a is not None]
        options = Options(model=model, aspect_ratio=aspect_ratio, count=count, seed=seed)
        await interactions.start_job(
            interaction,
            lambda owner: service.admit(owner, prompt, options, references=len(attachments)),
            fetch=lambda: interactions.download(interaction, attachments),
        )

    return imagine


async def imagine_with_image(
    interaction: discord.Interaction[Any], message: discord.Message
) -> None:
    """Apps → "Imagine with this image": a form for the prompt, the message's images as refs."""
    service = interactions.client_of(interaction).service
    # Interactions carry the target message in full: no message-content intent needed.
    attachments = [a for a in message.attachments if views.is_image(a)]
    if not attachments:
        await interactions.tell(interaction, views.NO_IMAGES)
        return

    async def submit(modal_interaction: discord.Interaction[Any], prompt: str) -> None:
        await interactions.start_job(
            modal_interaction,
            lambda owner: service.admit(owner, prompt, references=len(attachments)),
            fetch=lambda: interactions.download(modal_interaction, attachments),
        )

    modal = PromptModal(
        title=views.CONTEXT_MENU, on_prompt=submit, limit=service.limits.max_prompt_chars
    )
    await interaction.response.send_modal(modal)


async def settings(interaction: discord.Interaction[Any]) -> None:
    """/settings: the user's defaults, a menu each."""
    content, view = await settings_panel(interaction)
    await interaction.response.send_message(content, view=view, ephemeral=True)


async def info(interaction: discord.Interaction[Any]) -> None:
    """/info: the user's images today and left, their jobs, their defaults."""
    service = interactions.client_of(interaction).service
    view = await service.info(interactions.owner(interaction))
    await interaction.response.send_message(views.clip(views.info_text(view)), ephemeral=True)


async def queue(interaction: discord.Interaction[Any]) -> None:
    """/queue: the user's waiting and running jobs, with a cancel button for each."""
    content, view = await queue_panel(interaction, interactions.owner(interaction).user)
    await interaction.response.send_message(content, view=view, ephemeral=True)


@app_commands.describe(job=_("The job's id, at the top of each result and in /history"))
async def show(interaction: discord.Interaction[Any], job: str) -> None:
    """/show job: that job's images again, here, with buttons that work here."""
    service = interactions.client_of(interaction).service
    await showing.show(interaction, lambda owner: service.show(owner, job), shown_view)


async def history(interaction: discord.Interaction[Any]) -> None:
    """/history: your jobs, newest first (privately), a 🔎 button each, and ‹ ›."""
    content, view = await history_panel(interaction, interactions.owner(interaction).user)
    await interaction.response.send_message(content, view=view, ephemeral=True)


@app_commands.describe(code=_("The code /link gave you on Telegram; or off, to unlink"))
async def link(interaction: discord.Interaction[Any], code: str | None = None) -> None:
    """/link [code]: a code to join this account with your Telegram one (or the link you
    have); with the code from Telegram, join them; off parts them. Answered privately."""
    service = interactions.client_of(interaction).service
    user = interactions.owner(interaction).user
    try:
        if code is not None and code.strip().lower() == views.UNLINK_WORD:
            await interactions.tell(interaction, await service.unlink(user))
            return
        shown = await service.link(user, code)
    except InvalidInput as refusal:
        await interactions.tell(interaction, texts.failed(refusal.message))
        return
    if shown.linked:
        await interaction.response.send_message(
            views.clip(shown.text), view=link_view(), ephemeral=True
        )
    else:
        await interactions.tell(interaction, shown.text)


async def help_(interaction: discord.Interaction[Any]) -> None:
    """/help: what the bot does, the options, the buttons and the models."""
    models = interactions.client_of(interaction).service.models
    await interaction.response.send_message(
        views.clip(views.help_text(HelpView.of(models))), ephemeral=True
    )


USER = _("platform:id, e.g. telegram:123456789 (an id alone is a Discord user)")


def _admin() -> app_commands.Group:
    """/admin: one group, a subcommand each; every one is a line for the core's grammar, which
    refuses anyone but BOT_ADMINS with the same sentence."""
    group = app_commands.Group(name="admin", description=_("Run the bot (its operators only)"))

    @group.command(name="stats", description=_("Today's jobs, the queue, the accounts, top users"))
    async def stats(interaction: discord.Interaction[Any]) -> None:
        await _admin_line(interaction, "stats")

    @group.command(name="ban", description=_("Refuse everything a user asks; cancel their jobs"))
    @app_commands.describe(user=USER)
    async def ban(interaction: discord.Interaction[Any], user: str) -> None:
        await _admin_line(interaction, f"ban {user}")

    @group.command(name="unban", description=_("Let a banned user use the bot again"))
    @app_commands.describe(user=USER)
    async def unban(interaction: discord.Interaction[Any], user: str) -> None:
        await _admin_line(interaction, f"unban {user}")

    @group.command(name="quota", description=_("A user's daily images, or everyone's default"))
    @app_commands.describe(
        user=app_commands.locale_str(_("{user}, or default", user=USER)),
        images=_("Images a day, 0 for no limit, or default"),
    )
    async def quota(interaction: discord.Interaction[Any], user: str, images: str = "") -> None:
        await _admin_line(interaction, f"quota {user} {images}")

    @group.command(name="block", description=_("Refuse prompts with this word or phrase"))
    async def block(interaction: discord.Interaction[Any], words: str) -> None:
        await _admin_line(interaction, f"block {words}")

    @group.command(name="unblock", description=_("Allow a blocked word or phrase again"))
    async def unblock(interaction: discord.Interaction[Any], words: str) -> None:
        await _admin_line(interaction, f"unblock {words}")

    @group.command(name="pause", description=_("Keep accepting jobs, but start none"))
    async def pause(interaction: discord.Interaction[Any]) -> None:
        await _admin_line(interaction, "pause")

    @group.command(name="resume", description=_("Start jobs again"))
    async def resume(interaction: discord.Interaction[Any]) -> None:
        await _admin_line(interaction, "resume")

    @group.command(
        name="cancel", description=_("Cancel a user's unfinished jobs, running ones too")
    )
    @app_commands.describe(user=USER)
    async def cancel(interaction: discord.Interaction[Any], user: str) -> None:
        await _admin_line(interaction, f"cancel {user}")

    return group


async def _admin_line(interaction: discord.Interaction[Any], line: str) -> None:
    """Run an /admin command; its answer (or refusal) is for the one who asked alone."""
    service = interactions.client_of(interaction).service
    try:
        answer = await service.admin(interactions.owner(interaction).user, line)
    except InvalidInput as refusal:
        await interactions.tell(interaction, texts.failed(refusal.message))
        return
    text = views.stats_text(answer) if isinstance(answer, StatsView) else answer
    await interactions.tell(interaction, text)
