"""What the Telegram front end shows: texts only Telegram needs, and its inline keyboards.

Shared sentences live in ``bot.core.texts``; these are the Telegram-only ones (commands, the
settings and queue keyboards). Settings buttons carry ``set:<key>:<value>`` and result buttons
``action:job:index``: the prefixes never overlap, so neither parser accepts the other's data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core import texts
from bot.core.domain import Action, Button, GenerationRequest, Job, QueueItem, UserSettings
from bot.core.models_table import ModelTable
from bot.core.policy import Defaults

RECEIVED = "⏳ …"
DONE = "✅ Done."
INVALID_BUTTON = "That button is no longer valid."
SAVED = "Saved."
DOWNLOAD_FAILED = "I couldn't fetch that image from Telegram. Please send it again."

COMMANDS = (
    ("imagine", "Make an image: /imagine a fox in snow --ar 16:9"),
    ("settings", "Your default model, aspect ratio, count and upscale size"),
    ("queue", "Your waiting jobs, with cancel buttons"),
    ("help", "What the bot does, with examples"),
)

# Settings buttons: short keys keep the data far below Telegram's 64 bytes.
SETTING_KEYS = {"m": "model", "ar": "aspect_ratio", "n": "count", "up": "upscale_resolution"}
RESET = "set:reset"
_SETTING = re.compile(r"set:(?:(m|ar|n|up):([A-Za-z0-9._:-]{1,40})|(reset))")
UPSCALE_CHOICES = ("2k", "4k")


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in rows]
    )


def help_text(models: ModelTable, username: str) -> str:
    return (
        "I draw images with Google's Nano Banana models.\n\n"
        "Ask me:\n"
        "• /imagine a lighthouse in a storm --ar 16:9\n"
        "• send a photo or an album with the caption /imagine make it a watercolour: "
        "the photos are the references\n"
        "• reply to any photo with /imagine … to use that photo\n"
        "• in a private chat, just write the prompt, or caption a photo with it\n"
        f"In groups I answer my commands, mentions (@{username}) and replies to my messages.\n\n"
        f"Options: {texts.FLAGS_HELP}\n"
        f"Models: {texts.model_names(models)}\n"
        f"Aspect ratios: {', '.join(models.all_ratios())}\n\n"
        "Under each result: U1–U4 upscale that image (sent as a file), 🎲 the same prompt with "
        "a new seed, R1–R4 a new prompt with that image as reference.\n"
        "/settings your defaults · /queue your waiting jobs"
    )


def reuse_request(index: int, mention: str) -> str:
    ask = f"reply to this message with the prompt for image {index}."
    return f"{mention}, {ask}" if mention else ask.capitalize()


def parse_setting(data: str) -> tuple[str, str | None] | None:
    """``set:m:pro`` → ``("model", "pro")``; ``set:reset`` → ``("reset", None)``; else None."""
    match = _SETTING.fullmatch(data) if len(data) <= 64 else None
    if match is None:
        return None
    if match[3]:
        return "reset", None
    return SETTING_KEYS[match[1]], match[2]


def settings_view(
    current: UserSettings, models: ModelTable, defaults: Defaults
) -> tuple[str, InlineKeyboardMarkup]:
    """The text and keyboard of /settings, marking what applies now."""
    model = models.resolve(current.model or "") or models.default
    ratio = current.aspect_ratio or defaults.aspect_ratio
    count = current.count or defaults.count
    upscale = current.upscale_resolution or defaults.upscale_resolution

    def choice(label: str, key: str, value: str, chosen: bool) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            f"✓ {label}" if chosen else label, callback_data=f"set:{key}:{value}"
        )

    model_choices = [
        choice(m.aliases[0] if m.aliases else m.id, "m", m.id, m.id == model.id)
        for m in models.models
        if parse_setting(f"set:m:{m.id}")  # an operator's odd model id gets no button
    ]
    rows = [
        *_rows(model_choices),
        *_rows([choice(r, "ar", r, r == ratio) for r in models.all_ratios()]),
        [choice(str(n), "n", str(n), n == count) for n in range(1, 5)],
        [choice(u, "up", u, u == upscale) for u in UPSCALE_CHOICES],
        [InlineKeyboardButton("↺ Reset to defaults", callback_data=RESET)],
    ]
    text = (
        f"Your defaults: {model.id} · {ratio} · {count} image{'s' * (count > 1)} · "
        f"upscale to {upscale}.\nRows: model, aspect ratio, count, upscale size. Tap to change; "
        "options in a prompt still win."
    )
    return text, InlineKeyboardMarkup(rows)


def _rows(buttons: list[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    # An operator's model table can be long; Telegram takes at most 8 buttons in a row.
    return [buttons[i : i + 8] for i in range(0, len(buttons), 8)]


def queue_view(items: Sequence[QueueItem]) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text of /queue and one cancel button per job that can still be cancelled."""
    if not items:
        return texts.NOTHING_QUEUED, None
    lines = [_queue_line(item) for item in items]
    cancellable = [Button(Action.CANCEL, i.job.id) for i in items if i.position > 0]
    return "Your jobs:\n" + "\n".join(lines), keyboard([[b] for b in cancellable])


def _queue_line(item: QueueItem) -> str:
    job = item.job
    state = f"queued, position {item.position}" if item.position > 0 else str(job.state)
    return f"#{job.id} {_describe(job)} — {state}"


def _describe(job: Job) -> str:
    request = job.request
    if isinstance(request, GenerationRequest):
        prompt = request.prompt
        return f"“{prompt[:40]}…”" if len(prompt) > 40 else f"“{prompt}”"
    return f"upscale of #{request.source_job} image {request.index}"
