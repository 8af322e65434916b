"""The application commands: /imagine, /settings, /queue, /help and the message context menu.

Built fresh for each client (the model table decides the choices), so that two clients in one
process (a restart in tests) never share command objects.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.core import texts
from bot.core.models_table import MAX_COUNT, MAX_SEED, MIN_COUNT, ModelTable
from bot.core.options import Options
from bot.core.presenters import HelpView
from bot.discord_bot import phrases
from bot.discord_bot.buttons import queue_panel, settings_panel
from bot.discord_bot.client import AppCommand, frontend_of
from bot.discord_bot.modals import PromptModal

# Discord's cap on the choices of one option.
MAX_CHOICES = 25


def build(models: ModelTable) -> list[AppCommand]:
    return [
        _imagine(models),
        app_commands.Command(
            name="settings",
            description="Your default model, size, count and upscale",
            callback=_settings,
        ),
        app_commands.Command(
            name="queue", description="Your waiting and running jobs", callback=_queue
        ),
        app_commands.Command(name="help", description="How to use this bot", callback=_help),
        app_commands.ContextMenu(name=phrases.CONTEXT_MENU, callback=_imagine_with_image),
    ]


def _imagine(models: ModelTable) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="imagine", description="Make images from a description")
    @app_commands.describe(
        prompt=f"What to draw; options work here too: {texts.FLAGS_HELP}",
        model="Which model (default: your /settings)",
        aspect_ratio="Shape of the image",
        count=f"How many images, {MIN_COUNT}–{MAX_COUNT}",
        seed="Same seed + same prompt = a similar image",
        image1="A reference image",
        image2="Another reference image",
        image3="Another reference image",
        image4="Another reference image",
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
        frontend = frontend_of(interaction)
        async with frontend.guarded(interaction):
            attachments = [a for a in (image1, image2, image3, image4) if a is not None]
            options = Options(model=model, aspect_ratio=aspect_ratio, count=count, seed=seed)
            await frontend.start_job(
                interaction,
                lambda owner: frontend.service.admit(
                    owner, prompt, options, references=len(attachments)
                ),
                fetch=lambda: frontend.download(attachments),
            )

    return imagine


async def _imagine_with_image(
    interaction: discord.Interaction[Any], message: discord.Message
) -> None:
    frontend = frontend_of(interaction)
    async with frontend.guarded(interaction):
        # Interactions carry the target message in full: no message-content intent needed.
        attachments = [a for a in message.attachments if _is_image(a)]
        if not attachments:
            await frontend.tell(interaction, phrases.NO_IMAGES)
            return

        async def submit(modal_interaction: discord.Interaction[Any], prompt: str) -> None:
            await frontend.start_job(
                modal_interaction,
                lambda owner: frontend.service.admit(owner, prompt, references=len(attachments)),
                fetch=lambda: frontend.download(attachments),
            )

        await interaction.response.send_modal(
            PromptModal(title=phrases.CONTEXT_MENU, on_prompt=submit)
        )


async def _settings(interaction: discord.Interaction[Any]) -> None:
    frontend = frontend_of(interaction)
    async with frontend.guarded(interaction):
        content, view = await settings_panel(interaction, frontend.owner(interaction).user)
        await interaction.response.send_message(content, view=view, ephemeral=True)


async def _queue(interaction: discord.Interaction[Any]) -> None:
    frontend = frontend_of(interaction)
    async with frontend.guarded(interaction):
        content, view = await queue_panel(interaction, frontend.owner(interaction).user)
        await interaction.response.send_message(content, view=view, ephemeral=True)


async def _help(interaction: discord.Interaction[Any]) -> None:
    frontend = frontend_of(interaction)
    async with frontend.guarded(interaction):
        await interaction.response.send_message(
            phrases.help_text(HelpView.of(frontend.service.models)), ephemeral=True
        )


def _is_image(attachment: discord.Attachment) -> bool:
    # A first sort by what Discord says; the core judges the bytes themselves.
    return (attachment.content_type or "").startswith("image/") or attachment.width is not None
