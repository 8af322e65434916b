"""Every sentence a user or an admin reads, in one place.

Each refusal says what went wrong and what to do. Adapters add platform formatting only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.i18n import Text, _, _n, join
from bot.core.models_table import (
    ModelSpec,
    ModelTable,
)
from bot.core.people import DISCORD

FLAGS_HELP = "--ar 16:9, --model pro, --count 2, --seed 42, --size 2K"
# The flag each option is written with in a prompt (the long names work too).
FLAGS = {"model": "--model", "aspect_ratio": "--ar", "count": "--count", "seed": "--seed"}


@dataclass(frozen=True)
class Naming:
    """How a platform names an option in a sentence: a flag typed in the prompt (Telegram, the
    console), or one of the slash command's options (Discord's ``model``, ``aspect_ratio``)."""

    slash: bool

    def option(self, name: str) -> str:
        return _("the {name} option", name=name) if self.slash else FLAGS[name]

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
    (_("🦊 A fox in the snow"), _("a red fox curled up in fresh snow, soft morning light")),
    (_("🏮 A rainy street"), _("a lantern-lit street in the rain at night, cinematic")),
    (
        _("🤖 A robot on the moon"),
        _("a tiny friendly robot watering a flower on the moon, watercolour"),
    ),
)


def greeting(name: str) -> Text:
    """The first words to a newcomer, by name when the platform gives one."""
    if not name:
        return _(
            "Hi there! Describe a picture and I'll draw it.\n"
            "Write your own, or tap an example (it makes images for you):"
        )
    return _(
        "Hi {name}! Describe a picture and I'll draw it.\n"
        "Write your own, or tap an example (it makes images for you):",
        name=quote(name, 40),
    )


def introduction(name: str, how: str, more: str) -> Text:
    """What the bot says once when it joins a group or a server."""
    return _(
        "👋 Hi, I'm {name}: I draw pictures from a description. {how} "
        "Tap an example to try it, or {more} for everything else.",
        name=name,
        how=how,
        more=more,
    )


def chatter(text: str, count: int) -> Text:
    """A short message that may not be a picture: asked before spending images on it."""
    return _n(
        "Shall I draw “{text}”? That makes {count} image.",
        "Shall I draw “{text}”? That makes {count} images.",
        count,
        text=quote(text, 40),
        count=count,
    )


PHOTO_KEPT = _(
    "Got your picture. What should I make of it? Describe it, e.g. “turn it into a "
    "watercolour”, and I'll use the picture."
)
# The example ends the sentence with no full stop: it is copied as it stands, flag and all.
PROMPT_EMPTY = _(
    "Please describe the image you want. For example: a red fox in fresh snow --ar 16:9"
)
IMAGE_EMPTY = _("That image is empty. Please send it again.")
IMAGE_UNREADABLE = _(
    "That file isn't an image I can read. Please send a PNG, JPEG or WebP picture "
    "(GIF, BMP and TIFF are converted)."
)
IMAGE_TOO_INTRICATE = _(
    "That image is built in a way that would take too long to read. Please save it again as an "
    "ordinary PNG or JPEG and send that."
)
JOB_NOT_FOUND = _("That result is no longer available. Please start a new prompt.")
NOT_YOUR_JOB = _("Only the person who asked for that job (or the bot's operator) can cancel it.")
SLOW_DOWN = _("You're pressing buttons too fast. Please wait a few seconds and try again.")
CANCELLED = _("Cancelled.")
CANCELLED_STATUS = _("✖ Cancelled.")  # where the job's progress was shown
CANCELLED_RUNNING = _(
    "Cancelled. It had already started: the image service can't be stopped mid-way, so what it "
    "makes is thrown away."
)
ALREADY_FINISHED = _("That job has already finished, so there is nothing to cancel.")
ON_ITS_WAY = _("That's already on its way.")
UPSCALE_AGAIN = _("That image is upscaled already: here it is again.")
NOTHING_QUEUED = _("You have no jobs waiting or running.")
STARTED = _("🎨 Generating…")
UPSCALING = _("🔍 Upscaling…")

# Failures of accepted jobs.
CONTENT_POLICY = _(
    "The image service refused this prompt under its content policy. Please rephrase it."
)
REFERENCE_REFUSED = _(
    "The image service refused one of your reference images (its filters reject some photos, "
    "e.g. of minors or famous people). Try another image."
)
REFERENCE_NOT_USABLE = _(
    "One of the reference images can't be used any more. Please send it again as a new image."
)
MEDIA_REFUSED = _(
    "The image service sent back something that isn't a picture I can pass on, so nothing was "
    "posted. Please try again; if it keeps happening, tell the bot's operator."
)
BUSY = _("The image service is very busy right now and your job timed out. Please try again later.")
UNAVAILABLE = _("The image service didn't answer properly. Please try again in a few minutes.")
OPERATOR = _(
    "The bot needs its operator's attention right now; they have been told. Please try later."
)
INTERNAL = _(
    "Something went wrong on our side. Please try again; the operator can see the details."
)
NOT_SERVED = _(
    "The image services this bot uses no longer make what this job asked for. Please send it "
    "again (see /help for the models)."
)
CHARACTERS_NEED_FLOW = _(
    "Characters live on Google Flow accounts (useapi.net), which this bot doesn't use: "
    "describe the person in your prompt, or send their picture as a reference."
)
# Only a road that fetches pictures from links (Wireflow) can't take them, where the bot has
# no public address to link them from: the operator's fix is named, and the user's way round.
PICTURES_NOT_TAKEN = _(
    "The image service here fetches pictures only from a web address, and this bot has none "
    "yet: its operator can give it one (BOT_PUBLIC_URL, see the README). Until then, press "
    "✏️ Edit under one of your results to use it as a reference."
)
CANNOT_MIX_REFERENCES = _(
    "That image can't be used together with pictures you send. Use it on its own, or send the "
    "pictures without it."
)
NOT_SAVED = _(
    "Your images were made, but the bot couldn't save them; the operator has been told. "
    "Please try again later."
)


def moderated(how: Naming) -> Text:
    return _(
        "The image service blocked the result of this prompt. Try rephrasing it, or another "
        "model with {option}.",
        option=how.option("model"),
    )


# What of the user's (or the upstream's) own words a sentence quotes at most.
QUOTE_CHARS = 60
DETAIL_CHARS = 300
# A running job's time is shown from this many seconds on ("Generating… 1 s" says nothing).
SHOWN_ELAPSED = 5.0


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``value`` as text, cut to ``limit`` characters and made inert (``echoed``): refusals
    echo what was typed, in groups too ("--model @alice" must not ping her), and a
    4,000-character --model must not make a 4,000-character answer."""
    text = str(value)
    return echoed(text if len(text) <= limit else text[: limit - 1] + "…")


def rejected(detail: str) -> Text:
    # Upstream ids (user:…-email:…-image:…) mean nothing to a user: an ellipsis stands for each,
    # in any language (``detail`` is the upstream's own words, quoted; the bot adds none to them).
    plain = quote(re.sub(r"user:\S+", "…", detail), DETAIL_CHARS).rstrip(".")
    return _(
        "The image service rejected these options: {detail}. Please adjust them.", detail=plain
    )


def model_names(table: ModelTable) -> str:
    return ", ".join(f"{m.id} ({m.aliases[0]})" if m.aliases else m.id for m in table.models)


def queued(position: int, *, paused: bool = False) -> Text:
    if paused:
        return _(
            "⏸ Queued — the operator has paused the queue; your job starts once they resume it."
        )
    # Position 1 may still wait (the user's own jobs running, or the upstream full): say "next".
    # 0: not in this process's queue (another process leads and queues it), so no place known.
    if not position:
        return _("⏳ Queued.")
    if position == 1:
        return _("⏳ Queued — you're next.")
    return _n(
        "⏳ Queued — {ahead} ahead of you.",
        "⏳ Queued — {ahead} ahead of you.",
        position - 1,
        ahead=position - 1,
    )


def queued_for_all(position: int, *, paused: bool = False) -> Text:
    """A job's place as said where a whole chat reads it, whoever asked (a busy chat's list
    of jobs): ``queued``'s words, addressed to no one."""
    if paused:
        return _("⏸ Queued — the operator has paused the queue; it starts once they resume it.")
    if not position:
        return _("⏳ Queued.")
    if position == 1:
        return _("⏳ Queued — next.")
    return _n(
        "⏳ Queued — {ahead} ahead.",
        "⏳ Queued — {ahead} ahead.",
        position - 1,
        ahead=position - 1,
    )


# What turns the words around it, or after it, in a line someone reads (bidirectional controls).
_TURNING = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_NOT_ECHOED = re.compile(f"[{_TURNING}]")
_AT = re.compile("@(?!\N{WORD JOINER})")  # an @ not made inert yet (echoed twice, once)
# What would let a name someone chose pass for a handle (any at sign, which Telegram also turns
# into a ping) or turn the words around it.
_NOT_IN_NAMES = re.compile(f"[@\uff20\ufe6b{_TURNING}]")


def as_name(chosen: str) -> str:
    """A name its owner chose freely (a Telegram first name), as a caption shows it: never an
    @handle, which only a platform's own unique usernames may look like."""
    return _NOT_IN_NAMES.sub("", chosen).strip() or "?"


def echoed(text: str) -> str:
    """``text`` (a prompt a caption or a listing quotes) made inert: no @ that a platform reads
    as a mention (a word joiner after each, which no one sees), and no bidirectional control
    (one turned a board line's end around to say another job's state); the same made inert
    again."""
    return _AT.sub("@\N{WORD JOINER}", _NOT_ECHOED.sub("", text))


def running(upscale: bool, elapsed: float, typical: float | None) -> Text:
    """A running job's status: for how long it has run (once that says something), and how
    long such a job takes lately (once that is known)."""
    parts: list[str] = [UPSCALING if upscale else STARTED]
    if elapsed >= SHOWN_ELAPSED:
        parts.append(duration(elapsed))
    if typical is not None:
        parts.append(_("(usually about {duration})", duration=duration(typical)))
    return join(" ", parts)


def duration(seconds: float) -> Text:
    whole = max(1, round(seconds))
    if whole < 100:
        return _("{seconds} s", seconds=whole)
    return _("{minutes} min {seconds:02d} s", minutes=whole // 60, seconds=whole % 60)


def failed(message: str) -> Text:
    return _("❌ {reason}", reason=message)


# Each road by its name, and the setting holding its key. Names are product names with no
# article ("Gemini API", not "the Gemini API"): sentences put them after prepositions, where
# an article would have to change with the language's case.
ROAD_NAMES = {
    "flow": ("useapi.net (Google Flow)", "USEAPI_TOKEN"),
    "gemini": ("Gemini API", "GEMINI_API_KEY"),
    "nbpro": ("nano-banana-pro.net", "NBPRO_API_KEY"),
    "wireflow": ("Wireflow", "WIREFLOW_API_KEY"),
}


def via(road: str) -> Text:
    """After a caption: the road that made the images."""
    return _(" · via {road}", road=ROAD_NAMES.get(road, (road, ""))[0])
