"""Every sentence a user or an admin reads, in one place.

Each refusal says what went wrong and what to do. Adapters add platform formatting only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.domain import DISCORD
from bot.core.models_table import (
    AUTO,
    MAX_COUNT,
    MAX_SEED,
    MIN_COUNT,
    SIZES,
    ModelSpec,
    ModelTable,
)

FLAGS_HELP = "--ar 16:9, --model pro, --count 2, --seed 42, --size 2K"
# The flag each option is written with in a prompt (the long names work too).
FLAGS = {"model": "--model", "aspect_ratio": "--ar", "count": "--count", "seed": "--seed"}


@dataclass(frozen=True)
class Naming:
    """How a platform names an option in a sentence: a flag typed in the prompt (Telegram, the
    console), or one of the slash command's options (Discord's ``model``, ``aspect_ratio``)."""

    slash: bool

    def option(self, name: str) -> str:
        return f"the {name} option" if self.slash else FLAGS[name]

    def choice(self, name: str, value: str) -> str:
        return f"{name}: {value}" if self.slash else f"{FLAGS[name]} {value}"

    def model(self, spec: ModelSpec) -> str:
        if self.slash:
            return f"model: {spec.label}"
        return f"--model {spec.aliases[0] if spec.aliases else spec.id}"


FLAGS_NAMING = Naming(slash=False)


def naming(platform: str) -> Naming:
    """Discord's users pick options in the slash command; everyone else types flags."""
    return Naming(slash=platform == DISCORD)


# The first hour: what a newcomer is greeted with, and the examples they can tap (each runs as
# their own prompt: label, prompt).
EXAMPLES = (
    ("🦊 A fox in the snow", "a red fox curled up in fresh snow, soft morning light"),
    ("🏮 A rainy street", "a lantern-lit street in the rain at night, cinematic"),
    ("🤖 A robot on the moon", "a tiny friendly robot watering a flower on the moon, watercolour"),
)


def greeting(name: str) -> str:
    return (
        f"Hi {quote(name, 40)}! Describe a picture and I'll draw it.\n"
        "Write your own, or tap an example (it makes images for you):"
    )


def introduction(name: str, how: str, more: str) -> str:
    """What the bot says once when it joins a group or a server."""
    return (
        f"👋 Hi, I'm {name}: I draw pictures from a description. {how} "
        f"Tap an example to try it, or {more} for everything else."
    )


def chatter(text: str, count: int) -> str:
    """A short message that may not be a picture: asked before spending images on it."""
    images = f"{count} image{'s' if count != 1 else ''}"
    return f"Shall I draw “{quote(text, 40)}”? That makes {images}."


PHOTO_KEPT = (
    "Got your picture. What should I make of it? Describe it, e.g. “turn it into a "
    "watercolour”, and I'll use the picture."
)
PROMPT_EMPTY = "Please describe the image you want, for example: a red fox in fresh snow --ar 16:9."
IMAGE_EMPTY = "That image is empty. Please send it again."
IMAGE_UNREADABLE = (
    "That file isn't an image I can read. Please send a PNG, JPEG or WebP picture "
    "(GIF, BMP and TIFF are converted)."
)
IMAGE_TOO_INTRICATE = (
    "That image is built in a way that would take too long to read. Please save it again as an "
    "ordinary PNG or JPEG and send that."
)
JOB_NOT_FOUND = "That result is no longer available. Please start a new prompt."
NOT_YOUR_JOB = "Only the person who asked for that job (or an admin) can cancel it."
SLOW_DOWN = "You're pressing buttons too fast. Please wait a few seconds and try again."
CANCELLED = "Cancelled."
CANCELLED_STATUS = "✖ Cancelled."  # where the job's progress was shown
CANCELLED_RUNNING = (
    "Cancelled. It had already started: the image service can't be stopped mid-way, so what it "
    "makes is thrown away."
)
ALREADY_FINISHED = "That job has already finished, so there is nothing to cancel."
ON_ITS_WAY = "That's already on its way."
UPSCALE_AGAIN = "That image is upscaled already: here it is again."
NOTHING_QUEUED = "You have no jobs waiting or running."
STARTED = "🎨 Generating…"
UPSCALING = "🔍 Upscaling…"

# Failures of accepted jobs.
CONTENT_POLICY = (
    "The image service refused this prompt under its content policy. Please rephrase it."
)
REFERENCE_REFUSED = (
    "The image service refused one of your reference images (its filters reject some photos, "
    "e.g. of minors or famous people). Try another image."
)
REFERENCE_NOT_USABLE = (
    "One of the reference images can't be used any more. Please send it again as a new image."
)
MEDIA_REFUSED = (
    "The image service sent back something that isn't a picture I can pass on, so nothing was "
    "posted. Please try again; if it keeps happening, tell the bot's operator."
)
BUSY = "The image service is very busy right now and your job timed out. Please try again later."
UNAVAILABLE = "The image service didn't answer properly. Please try again in a few minutes."
OPERATOR = (
    "The bot needs its operator's attention right now; they have been told. Please try later."
)
INTERNAL = "Something went wrong on our side. Please try again; the operator can see the details."
NOT_SERVED = (
    "The image services this bot uses no longer make what this job asked for. Please send it "
    "again (see /help for the models)."
)
CHARACTERS_NEED_FLOW = (
    "Characters live on Google Flow accounts (useapi.net), which this bot doesn't use: "
    "describe the person in your prompt, or send their picture as a reference."
)
PICTURES_NOT_TAKEN = (
    "The image service here can't use pictures you send: it only builds on images it made. "
    "Press R under one of your results to use it as a reference."
)
CANNOT_MIX_REFERENCES = (
    "That image can't be used together with pictures you send. Use it on its own, or send the "
    "pictures without it."
)
NOT_SAVED = (
    "Your images were made, but the bot couldn't save them; the operator has been told. "
    "Please try again later."
)


def moderated(how: Naming) -> str:
    return (
        "The image service blocked the result of this prompt. Try rephrasing it, or another "
        f"model with {how.option('model')}."
    )


# What of the user's (or the upstream's) own words a sentence quotes at most.
QUOTE_CHARS = 60
DETAIL_CHARS = 300


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``value`` as text, cut to ``limit`` characters: refusals echo what was typed, and a
    4,000-character --model must not make a 4,000-character answer."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rejected(detail: str) -> str:
    # Upstream ids (user:…-email:…-image:…) mean nothing to a user.
    plain = quote(re.sub(r"user:\S+", "an image", detail), DETAIL_CHARS).rstrip(".")
    return f"The image service rejected these options: {plain}. Please adjust them."


def prompt_too_long(length: int, limit: int) -> str:
    return f"Your prompt is {length} characters long; the limit is {limit}. Please shorten it."


def unknown_model(name: str, table: ModelTable) -> str:
    return f"There is no model called “{quote(name)}”. Choose one of: {model_names(table)}."


def model_names(table: ModelTable) -> str:
    return ", ".join(f"{m.id} ({m.aliases[0]})" if m.aliases else m.id for m in table.models)


def bad_count(raw: object) -> str:
    return f"The count must be a whole number from {MIN_COUNT} to {MAX_COUNT}, not “{quote(raw)}”."


def bad_seed(raw: object) -> str:
    return f"The seed must be a whole number from 0 to {MAX_SEED}, not “{quote(raw)}”."


def bad_ratio(raw: str, allowed: Sequence[str], closest: str | None = None) -> str:
    hint = f" The closest is {closest}." if closest else ""
    return (
        f"“{quote(raw)}” isn't an aspect ratio this model makes.{hint} "
        f"Use one of: {', '.join(allowed)}."
    )


def auto_needs_reference(how: Naming = FLAGS_NAMING) -> str:
    return (
        f"{how.choice('aspect_ratio', AUTO)} takes its shape from a reference image: attach an "
        "image or pick a ratio."
    )


def auto_not_supported(model: str, table: ModelTable, how: Naming = FLAGS_NAMING) -> str:
    able = [m.id for m in table.models if m.auto_aspect]
    others = " or ".join(able) or "another model"
    return f"{model} can't use {how.choice('aspect_ratio', AUTO)}. Pick a ratio, or use {others}."


def too_many_references(count: int, model: str, limit: int) -> str:
    if limit == 0:
        return f"{model} doesn't take reference images. Remove them or pick another model."
    return f"You sent {count} reference images; {model} takes at most {limit}. Please send fewer."


def pictures_need_model(model: str, able: Sequence[str], how: Naming = FLAGS_NAMING) -> str:
    return (
        f"{model} can't use pictures you send here. Use {' or '.join(able)} "
        f"({how.option('model')}), or leave the pictures out."
    )


def reference_needs_model(able: Sequence[str], how: Naming = FLAGS_NAMING) -> str:
    return (
        f"That image can only be used with {' or '.join(able)}: choose one with "
        f"{how.option('model')}."
    )


def bad_size(raw: object) -> str:
    return f"“{quote(raw)}” isn't an image size. Use one of: {', '.join(SIZES)}."


def size_not_offered(model: str, sizes: Sequence[str]) -> str:
    return f"{model} renders at {', '.join(sizes)} here. Choose one of those with --size."


def seed_not_supported(model: str, how: Naming = FLAGS_NAMING) -> str:
    return (
        f"{model} can't take a seed here. Leave out {how.option('seed')}, or choose another model."
    )


def too_many_images(model: str, limit: int) -> str:
    return f"{model} makes at most {limit} images at a time here. Use --count {limit} or fewer."


def unknown_option(flag: str, suggestion: str | None = None) -> str:
    if suggestion:
        return f"I don't know the option {quote(flag)}. Did you mean {suggestion}?"
    return f"I don't know the option {quote(flag)}. The options are {FLAGS_HELP}."


def option_needs_value(flag: str) -> str:
    return f"The option {quote(flag)} needs a value, e.g. {FLAGS_HELP}."


def image_too_large(size: int, limit: int) -> str:
    return (
        f"That image is {size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB. "
        "Please send a smaller one."
    )


def image_too_many_pixels(width: int, height: int, limit: int) -> str:
    shown = f" ({width}×{height})" if width and height else ""
    return (
        f"That image is too large{shown}; the limit is {limit / 1e6:.0f} megapixels. "
        "Please send a smaller one."
    )


def image_too_long(width: int, height: int, limit: int) -> str:
    return (
        f"That image is {width}×{height} pixels; no side may be longer than {limit} pixels. "
        "Please crop or resize it."
    )


def queue_full(limit: int) -> str:
    return f"You already have {limit} jobs waiting. Please wait for some to finish."


def daily_quota(limit: int) -> str:
    return f"You've reached today's limit of {limit} images. It resets at midnight UTC."


def cannot_upscale(model: str, table: ModelTable) -> str:
    able = [m.id for m in table.models if m.can_upscale]
    return f"Images from {model} can't be upscaled. Use {' or '.join(able) or 'another model'}."


def how_to_upscale(model: str, able: ModelSpec, how: Naming) -> str:
    """Under a result without upscale buttons: how to get them."""
    return f"{model} can't upscale; for ⬆️ Upscale buttons, use {how.model(able)}."


def bad_resolution(resolution: str, allowed: Iterable[str]) -> str:
    return f"Upscaling to {quote(resolution)} isn't available. Choose one of: {', '.join(allowed)}."


def queued(position: int, *, paused: bool = False) -> str:
    if paused:
        return "⏸ Queued — the operator has paused the queue; your job starts once they resume it."
    # Position 1 may still wait (the user's own jobs running, or the upstream full): say "next".
    # 0: not in this process's queue (another process leads and queues it), so no place known.
    if not position:
        return "⏳ Queued."
    return (
        "⏳ Queued — you're next." if position == 1 else f"⏳ Queued — {position - 1} ahead of you."
    )


def unmentioned(text: str) -> str:
    """``text`` (a prompt a caption quotes) with no @ that a platform reads as a mention: a
    word joiner after each, which no one sees."""
    return text.replace("@", "@\N{WORD JOINER}")


def failed(message: str) -> str:
    return f"❌ {message}"


# Each road by its name, and the setting holding its key.
ROAD_NAMES = {
    "flow": ("useapi.net (Google Flow)", "USEAPI_TOKEN"),
    "gemini": ("the Gemini API", "GEMINI_API_KEY"),
    "nbpro": ("nano-banana-pro.net", "NBPRO_API_KEY"),
    "wireflow": ("Wireflow", "WIREFLOW_API_KEY"),
}


def via(road: str) -> str:
    """After a caption: the road that made the images."""
    return f" · via {ROAD_NAMES.get(road, (road, ''))[0]}"
