"""What the Telegram front end shows: texts only Telegram needs, and its inline keyboards.

Shared sentences live in ``bot.core.texts`` and button labels in ``bot.core.presenters``; these
are the Telegram-only ones (commands, the settings and queue keyboards). Settings buttons carry
``set:…``, examples ``ex:<n>``, the chatter question ``draw``, /history's pages ``hist:<n>``,
unlinking ``link:off``, result buttons ``action:job:index``: the prefixes never overlap, so no
parser accepts another's data. How a message names a user is ``mentions``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core import history_texts, settings, texts
from bot.core.buttons import Action, Button
from bot.core.history_views import HistoryView
from bot.core.i18n import Text, _, join
from bot.core.people import Owner
from bot.core.presenters import (
    HelpView,
    InfoView,
    QueueView,
    SettingRow,
    SettingsPanel,
    label,
)
from bot.core.settings import SETTINGS
from bot.core.stats import StatsView

DONE = _("✅ Done.")
INVALID_BUTTON = _("That button is no longer valid.")
SAVED = _("Saved.")
DOWNLOAD_FAILED = _("I couldn't fetch that image from Telegram. Please send it again.")
TEXT_AND_PHOTOS = _(
    "I read text and photos: describe the picture you want, or send a photo with a caption "
    "saying what to make of it."
)
EDIT_TOO_LATE = _(
    "I had already started on the first version, so I kept it. Send the new text as a new "
    "message to draw it."
)
UPSCALED_ABOVE = _("That image is upscaled already: you'll find it above.")
NOT_YOUR_MESSAGE = _("Only the person who wrote that message can answer this.")
OTHERS_PANEL_SENT = _("That panel is someone else's. I've sent you yours in our private chat.")
OTHERS_PANEL_BELOW = _("That panel is someone else's. Yours is below.")
DRAW = _("🎨 Draw it")
BACK = _("‹ Back")
RESET_LABEL = _("↺ Reset to defaults")
ALBUM_CUT = _(
    "I got only the captioned picture of that album: in groups, Telegram shows me no picture "
    "without a caption. Send the album to me in a private chat, or ask a group admin to make "
    "me an admin here."
)
GROUP_ADMINS_ONLY = _("Only this group's admins can change the bot's settings here.")

COMMANDS = (
    ("imagine", _("Make an image: /imagine a fox in snow --ar 16:9")),
    ("settings", _("Your default model, aspect ratio, count and upscale size")),
    ("queue", _("Your waiting and running jobs, with cancel buttons")),
    ("character", _("Your characters: /character create <name> with 1-2 photos, list, delete")),
    ("info", _("Your images today and left, your jobs, your defaults")),
    ("history", _("Your jobs, newest first, each with a button to show it again")),
    ("show", _("A job's images again, with its buttons: /show k3x9q2m")),
    ("link", _("Join this account with your Discord one: history, settings and quota shared")),
    ("help", _("What the bot does, with examples")),
)
# /link off parts linked accounts; its button carries ``link:off``.
UNLINK_WORD = "off"
UNLINK_DATA = "link:off"
UNLINK = _("Unlink")
# /history's page turns carry ``hist:<page>``.
_HISTORY = re.compile(r"hist:([0-9]{1,4})")
# What a group's admins see in their menu besides (Telegram shows it to chat admins only).
ADMIN_COMMANDS = (*COMMANDS, ("group", _("The bot's settings in this group (admins)")))

CHARACTER_USAGE = _(
    "Send 1 or 2 photos captioned /character create <name> (or reply to a photo with it); "
    "then write @<name> in a prompt. /character list shows yours, /character delete <name> "
    "deletes one, /character share <name> lets everyone in this group use it (/character "
    "unshare <name> stops that)."
)

DRAW_DATA = "draw"
RESET = "set:reset"
BACK_DATA = "set:back"
# Settings buttons carry ``set:<key>:<value>`` (save), ``set:open:<key>`` (show its choices),
# ``set:back`` and ``set:reset``; the keys are short to stay far below 64 bytes.
_KEYS = "|".join(s.key for s in SETTINGS)
_SETTING = re.compile(rf"set:(?:({_KEYS}):([A-Za-z0-9._:-]{{1,40}})|open:({_KEYS})|(reset|back))")
_EXAMPLE = re.compile(r"ex:([1-9])")
# What newcomers try before they know /imagine (other image bots' commands).
_IMAGINE_GUESSES = frozenset(
    ("draw", "generate", "gen", "create", "image", "img", "paint", "dream", "art", "picture")
)
# Telegram takes at most 8 buttons in a row.
_PER_ROW = 8


def too_large_to_fetch(size: int, limit: int) -> Text:
    return _(
        "That image is {size:.1f} MB; Telegram lets bots fetch at most {limit:.0f} MB. Please "
        "send a smaller one.",
        size=size / 2**20,
        limit=limit / 2**20,
    )


def language_code(code: str) -> str:
    """A shipped language as ``setMyCommands`` names it: two letters (``pt_BR`` → ``pt``)."""
    return code[:2].lower()


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label(b), callback_data=b.data) for b in row] for row in rows]
    )


def mark_done(markup: InlineKeyboardMarkup, button: Button) -> InlineKeyboardMarkup:
    """The keyboard a result already has, with ``button`` shown as done."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(label(button, done=True), callback_data=key.callback_data)
                if key.callback_data == button.data
                else key
                for key in row
            ]
            for row in markup.inline_keyboard
        ]
    )


def examples() -> InlineKeyboardMarkup:
    """One button per example prompt; a tap runs it as the presser's own prompt."""
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(shown, callback_data=f"ex:{n}")]
            for n, (shown, _prompt) in enumerate(texts.EXAMPLES, start=1)
        ]
    )


def example_prompt(data: str) -> str | None:
    match = _EXAMPLE.fullmatch(data)
    if match is None or int(match[1]) > len(texts.EXAMPLES):
        return None
    return texts.EXAMPLES[int(match[1]) - 1][1]


def draw() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(DRAW, callback_data=DRAW_DATA)]])


def help_text(view: HelpView, username: str) -> Text:
    buttons = join(
        "\n",
        (
            join(
                "",
                [
                    "• ",
                    _("{button}: {does} (sent as a file)", button=shown, does=does)
                    if action is Action.UPSCALE
                    else _("{button}: {does}", button=shown, does=does),
                ],
            )
            for action, shown, does in view.buttons
        ),
    )
    return _(
        "I draw images with Google's Nano Banana models.\n\n"
        "Ask me:\n"
        "• /imagine a lighthouse in a storm --ar 16:9\n"
        "• send a photo or an album with the caption /imagine make it a watercolour: "
        "the photos are the references\n"
        "• reply to any photo with /imagine … to use that photo\n"
        "• in a private chat, just write the prompt, or send a photo and then say what to "
        "make of it\n"
        "• send 1-2 photos captioned /character create Carol, then write @Carol in a prompt "
        "(@1, @2… point at the photos you send with it)\n"
        "In groups I answer my commands, mentions (@{username}) and replies to my messages.\n\n"
        "Options: {options}\n"
        "Models: {models}\n"
        "Aspect ratios: {ratios}\n\n"
        "Under each result:\n{buttons}\n"
        "/settings your defaults · /queue your jobs · /info your images today · /history all "
        "your jobs · /show ID one again · /link join your Discord account",
        username=username,
        options=view.options,
        models=view.models,
        ratios=view.ratios,
        buttons=buttons,
    )


def unknown_command(command: str) -> str:
    names = [name for name, _does in COMMANDS] + ["start"]
    close = difflib.get_close_matches(command.lower(), names, n=1, cutoff=0.7)
    if not close and command.lower() in _IMAGINE_GUESSES:
        close = ["imagine"]
    listed = join("\n", (join(" — ", [f"/{name}", does]) for name, does in COMMANDS))
    typed = texts.quote(command, 32)
    if close:
        return _(
            "I don't know /{command}. Did you mean /{guess}? My commands:\n{commands}",
            command=typed,
            guess=close[0],
            commands=listed,
        )
    return _("I don't know /{command}. My commands:\n{commands}", command=typed, commands=listed)


def reuse_request(index: int, mention: str) -> Text:
    if mention:
        return _(
            "{mention}, what should I make of image {index}? Reply to this message with the "
            "prompt.",
            mention=mention,
            index=index,
        )
    return _(
        "What should I make of image {index}? Reply to this message with the prompt.", index=index
    )


def parse_setting(data: str) -> tuple[str, str | None] | None:
    """``set:m:pro`` → ``("model", "pro")``; ``set:open:m`` → ``("open", "model")``;
    ``set:reset`` → ``("reset", None)``; ``set:back`` → ``("back", None)``; else None."""
    match = _SETTING.fullmatch(data) if len(data) <= 64 else None
    if match is None:
        return None
    if match[4]:
        return match[4], None
    if match[3]:
        opened = settings.keyed(match[3])
        assert opened is not None  # the pattern admits only the keys
        return "open", opened.name
    setting = settings.keyed(match[1])
    assert setting is not None
    return setting.name, match[2]


def settings_view(
    panel: SettingsPanel, opened: str | None = None, usage: str | None = None
) -> tuple[str, InlineKeyboardMarkup]:
    """/settings: a labelled row per setting ("Model: nano-banana-pro"); a tap on one shows its
    choices (``opened``), with the one that applies now ticked. ``usage``: the user's day."""
    shown = join("\n\n", [panel.text, usage]) if usage else panel.text
    if opened is None:
        rows = [
            [InlineKeyboardButton(row.summary, callback_data=f"set:open:{row.setting.key}")]
            for row in panel.rows
        ]
        rows.append([InlineKeyboardButton(RESET_LABEL, callback_data=RESET)])
        return shown, InlineKeyboardMarkup(rows)
    row = panel[opened]
    text = join("\n\n", [shown, row.setting.choose])
    return text, InlineKeyboardMarkup(
        [*_choices(row), [InlineKeyboardButton(BACK, callback_data=BACK_DATA)]]
    )


def _choices(row: SettingRow) -> list[list[InlineKeyboardButton]]:
    key = row.setting.key
    buttons = [
        InlineKeyboardButton(
            join(" ", ["✓", c.short]) if c.value == row.current else c.short,
            callback_data=f"set:{key}:{c.value}",
        )
        for c in row.choices
        if parse_setting(f"set:{key}:{c.value}")  # an operator's odd model id: none
    ]
    return in_rows(buttons)


def history_view(view: HistoryView) -> tuple[str, InlineKeyboardMarkup | None]:
    """/history: a line per job, a 🔎 button each, and ‹ › to turn the page."""
    rows = [
        [InlineKeyboardButton(label(row.show), callback_data=row.show.data)] for row in view.rows
    ]
    turns = []
    if view.page > 0:
        turns.append(
            InlineKeyboardButton(history_texts.NEWER, callback_data=f"hist:{view.page - 1}")
        )
    if view.more:
        turns.append(
            InlineKeyboardButton(history_texts.OLDER, callback_data=f"hist:{view.page + 1}")
        )
    if turns:
        rows.append(turns)
    return view.text, InlineKeyboardMarkup(rows) if rows else None


def parse_history(data: str) -> int | None:
    """``hist:2`` → 2 (the page); else None."""
    match = _HISTORY.fullmatch(data) if len(data) <= 64 else None
    return int(match[1]) if match else None


def unlink() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(UNLINK, callback_data=UNLINK_DATA)]])


def queue_view(view: QueueView, here: Owner) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text of /queue and a cancel button per job, in the words every platform uses, as
    said where ``here`` asks: in a group others read it, so a prompt asked elsewhere stays there."""
    if here.server is not None:
        view = view.said_in(here.chat)
    if not view.rows:
        return texts.NOTHING_QUEUED, None
    lines = [join(" — ", [join(" ", [row.ref, row.what]), row.status]) for row in view.rows]
    text = join("\n", [_("Your jobs:"), *lines])
    return text, keyboard([[b] for b in view.cancels])


def info_text(view: InfoView, here: Owner) -> str:
    jobs, _keys = queue_view(view.queue, here)
    defaults = join(" · ", (r.plain for r in view.settings.rows))
    return join("\n\n", [view.usage, jobs, _("Your defaults: {defaults}.", defaults=defaults)])


def stats_text(view: StatsView) -> str:
    return join(
        "\n\n",
        (
            join(
                "\n",
                [_("{heading}:", heading=heading), *(join("", ["• ", line]) for line in lines)],
            )
            for heading, lines in view.sections()
        ),
    )


def in_rows(buttons: list[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + _PER_ROW] for i in range(0, len(buttons), _PER_ROW)]
