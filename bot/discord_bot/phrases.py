"""Sentences only Discord users read (the shared ones are in ``bot.core.texts``)."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.core import texts
from bot.core.domain import JobState, QueueItem, UpscaleRequest, UserSettings
from bot.core.models_table import ModelTable
from bot.core.policy import Defaults

CONTEXT_MENU = "Imagine with this image"
NO_IMAGES = (
    "That message has no image attached. Use “Imagine with this image” on a message with a "
    "picture, or attach one to /imagine."
)
DOWNLOAD_FAILED = "I couldn't download that image from Discord. Please attach it again."
PROMPT_LABEL = "Prompt"
PROMPT_PLACEHOLDER = "Describe the new image; options like --ar 16:9 work here too"
RESET = "default"


def help_text(models: ModelTable) -> str:
    return "\n".join(
        [
            "**Nano Banana images**: describe a picture and get up to four.",
            "`/imagine prompt` — options: model, aspect_ratio, count, seed, and image1–image4 "
            "to use your pictures as references.",
            f"Options also work inside the prompt: {texts.FLAGS_HELP}.",
            "Under a result: **U1–U4** upscale that image, **🎲** the same prompt with a new "
            "seed, **R1–R4** a new prompt with that image as reference.",
            f"On any message with a picture: Apps → **{CONTEXT_MENU}**.",
            "`/settings` your defaults · `/queue` your jobs, and cancel those still waiting.",
            f"Models: {texts.model_names(models)}.",
        ]
    )


def reuse_title(index: int) -> str:
    return f"New prompt with image {index}"


def settings_text(current: UserSettings, defaults: Defaults, models: ModelTable) -> str:
    def shown(value: object, fallback: object) -> str:
        return f"**{value}**" if value is not None else f"{fallback} (bot default)"

    return "\n".join(
        [
            "Your defaults for new prompts (options you type still win):",
            f"model: {shown(current.model, models.default.id)}",
            f"aspect ratio: {shown(current.aspect_ratio, defaults.aspect_ratio)}",
            f"images per prompt: {shown(current.count, defaults.count)}",
            f"upscale to: {shown(current.upscale_resolution, defaults.upscale_resolution)}",
        ]
    )


def queue_text(items: Sequence[QueueItem], limit: int) -> str:
    """The user's jobs, as many as fit in ``limit`` characters, then how many more there are."""
    if not items:
        return texts.NOTHING_QUEUED
    lines = [f"**#{item.job.id}** {_what(item)} — {_where(item)}" for item in items]
    text, kept = "\n".join(lines), len(lines)
    while len(text) > limit and kept > 1:
        kept -= 1
        text = "\n".join([*lines[:kept], f"…and {len(lines) - kept} more."])
    return text


def _what(item: QueueItem) -> str:
    request = item.job.request
    if isinstance(request, UpscaleRequest):
        return f"upscale of image {request.index} from #{request.source_job}"
    prompt = request.prompt if len(request.prompt) <= 60 else request.prompt[:59] + "…"
    return f"“{discord.utils.escape_markdown(prompt)}”"


def _where(item: QueueItem) -> str:
    if item.job.state is JobState.RUNNING:
        return texts.UPSCALING if item.job.is_upscale else texts.STARTED
    return texts.queued(item.position)
