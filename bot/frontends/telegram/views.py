"""What the Telegram front end shows: texts only Telegram needs, and its inline keyboards.

Shared sentences live in ``bot.core.texts``; these are the Telegram-only ones (commands, the
settings and queue keyboards). Settings buttons carry ``set:<key>:<value>`` and result buttons
``action:job:index``: the prefixes never overlap, so neither parser accepts the other's data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core import settings, texts
from bot.core.domain import Action, Button
from bot.core.presenters import HelpView, QueueRow, QueueView, SettingsPanel
from bot.core.settings import SETTINGS

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

RESET = "set:reset"
# Settings buttons carry ``set:<key>:<value>``; the keys are short to stay far below 64 bytes.
_SETTING = re.compile(
    rf"set:(?:({'|'.join(s.key for s in SETTINGS)}):([A-Za-z0-9._:-]{{1,40}})|(reset))"
)


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in rows]
    )


def help_text(view: HelpView, username: str) -> str:
    buttons = ", ".join(
        f"{label} {does}" + (" (sent as a file)" if action is Action.UPSCALE else "")
        for action, label, does in view.buttons
    )
    return (
        "I draw images with Google's Nano Banana models.\n\n"
        "Ask me:\n"
        "• /imagine a lighthouse in a storm --ar 16:9\n"
        "• send a photo or an album with the caption /imagine make it a watercolour: "
        "the photos are the references\n"
        "• reply to any photo with /imagine … to use that photo\n"
        "• in a private chat, just write the prompt, or caption a photo with it\n"
        f"In groups I answer my commands, mentions (@{username}) and replies to my messages.\n\n"
        f"Options: {view.options}\n"
        f"Models: {view.models}\n"
        f"Aspect ratios: {view.ratios}\n\n"
        f"Under each result: {buttons}.\n"
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
    setting = settings.keyed(match[1])
    assert setting is not None  # the pattern admits only the keys
    return setting.name, match[2]


def settings_view(panel: SettingsPanel) -> tuple[str, InlineKeyboardMarkup]:
    """The text and keyboard of /settings, marking what applies now."""
    rows: list[list[InlineKeyboardButton]] = []
    for row in panel.rows:
        key = row.setting.key
        rows += _rows(
            [
                InlineKeyboardButton(
                    f"✓ {c.short}" if c.value == row.current else c.short,
                    callback_data=f"set:{key}:{c.value}",
                )
                for c in row.choices
                if parse_setting(f"set:{key}:{c.value}")  # an operator's odd model id: none
            ]
        )
    rows.append([InlineKeyboardButton("↺ Reset to defaults", callback_data=RESET)])
    count = int(panel["count"].current)
    text = (
        f"Your defaults: {panel['model'].current} · {panel['aspect_ratio'].current} · "
        f"{count} image{'s' * (count > 1)} · upscale to {panel['upscale_resolution'].current}.\n"
        "Rows: model, aspect ratio, count, upscale size. Tap to change; "
        "options in a prompt still win."
    )
    return text, InlineKeyboardMarkup(rows)


def _rows(buttons: list[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    # An operator's model table can be long; Telegram takes at most 8 buttons in a row.
    return [buttons[i : i + 8] for i in range(0, len(buttons), 8)]


def queue_view(view: QueueView) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text of /queue and one cancel button per job that can still be cancelled."""
    if not view.rows:
        return texts.NOTHING_QUEUED, None
    lines = [f"#{row.job_id} {row.what} — {_state(row)}" for row in view.rows]
    cancels = [[Button(Action.CANCEL, job_id)] for job_id in view.cancellable]
    return "Your jobs:\n" + "\n".join(lines), keyboard(cancels)


def _state(row: QueueRow) -> str:
    if row.position:
        return f"queued, position {row.position}"
    return "running" if row.running else "queued"
