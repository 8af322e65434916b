"""The core's views as Discord messages and menus, and the sentences only Discord users read
(the shared ones are in ``bot.core.texts``). Every text is rendered in the reader's language
(``i18n.reader()``) and clipped where it leaves (``clip``, ``label``)."""

from __future__ import annotations

import discord

from bot.core import rules_texts, texts
from bot.core.history_views import HistoryView
from bot.core.i18n import Text, _, _n, join, reader
from bot.core.presenters import (
    HelpView,
    InfoView,
    QueueView,
    ServerPanel,
    SettingRow,
)
from bot.core.stats import StatsView

CONTEXT_MENU = _("Imagine with this image")
MAKE_CHARACTER = _("Make a character")
NAME_LABEL = _("The character's name")
NAME_PLACEHOLDER = _("One word, e.g. Carol: then write @Carol in a prompt")
NO_IMAGES = _(
    "That message has no image attached. Use “Imagine with this image” on a message with a "
    "picture, or attach one to /imagine."
)
DOWNLOAD_FAILED = _("I couldn't download that image from Discord. Please attach it again.")
UPSCALED_ABOVE = _("That image is upscaled already: you'll find it above.")
# A prompt's first response, where another process posted its answer (``notifier.told_where``).
ANSWERED_BELOW = _("⤵ Answered below, in a message that mentions you.")
ANSWERED_BY_DM = _("⤵ Answered in our private chat.")
SERVER_ADMINS_ONLY = _(
    "Only this server's admins (the Manage Server permission) can change the bot's settings here."
)
INTEGRATIONS = _(
    "To choose who may use which command where, see Server Settings → Integrations → this bot."
)
PROMPT_LABEL = _("Prompt")
PROMPT_PLACEHOLDER = _("Describe the new image; options like --ar 16:9 work here too")
RESET = "default"
UNLINK = _("Unlink")
UNLINK_WORD = "off"
# Discord's caps: message content of 2000 characters, 25 options in a select menu.
MAX_CONTENT = 2000
MAX_OPTIONS = 25
MAX_LABEL = 80  # a button's label, a menu option's (100), a text input's (45) cut alike


def clip(text: str) -> str:
    """``text`` in the reader's language, cut to what one message may say (refusals can echo
    what the user typed)."""
    text = reader().render(text)
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"


def label(text: str, limit: int = MAX_LABEL) -> str:
    """A component's label (a button's, a menu option's, a form's) in the reader's language."""
    text = reader().render(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def help_text(view: HelpView) -> Text:
    bold = [(join("", ["**", shown, "**"]), does) for _a, shown, does in view.buttons]
    buttons = join(
        "\n", (join("", ["- ", _("{button}: {does}", button=b, does=d)]) for b, d in bold)
    )
    return _(
        "**Nano Banana images**: describe a picture and get up to four.\n"
        "`/imagine prompt` — options: model, aspect_ratio, count, seed, and image1–image4 "
        "to use your pictures as references.\n"
        "Options also work inside the prompt: {options}.\n"
        "Under a result:\n{buttons}\n"
        "On any message with a picture: Apps → **{context_menu}**.\n"
        "`/character create name image1 [image2]` makes a character (or Apps → "
        "**{make_character}**); write `@name` in a prompt to draw it, `@1`… for image1….\n"
        "`/settings` your defaults · `/queue` your jobs, with a cancel button for each · "
        "`/info` your images today and what is left.\n"
        "`/history` all your jobs · `/show` one again, with its buttons · `/link` join "
        "your Telegram account.\n"
        "Models: {models}.",
        options=view.options,
        buttons=buttons,
        context_menu=CONTEXT_MENU,
        make_character=MAKE_CHARACTER,
        models=view.models,
    )


def reuse_title(index: int) -> Text:
    return _("What should I make of image {index}?", index=index)


def introduction(name: str) -> Text:
    return texts.introduction(name, _("Type /imagine and describe a picture."), "/help")


def setting_options(row: SettingRow) -> list[discord.SelectOption]:
    """A settings menu: the bot's default first (choosing it resets), then the choices."""
    default = next((c.label for c in row.choices if c.value == row.default), row.default)
    reset = discord.SelectOption(
        label=label(_("{value} (bot default)", value=default)),
        value=RESET,
        default=row.value is None,
    )
    return [reset] + [
        discord.SelectOption(label=label(c.label), value=c.value, default=row.value == c.value)
        for c in row.choices[: MAX_OPTIONS - 1]
    ]


def history_text(view: HistoryView) -> str:
    # Rendered before it is escaped: escaping makes a plain string of it.
    return discord.utils.escape_markdown(reader().render(view.text))


def queue_text(view: QueueView, limit: int = MAX_CONTENT) -> str:
    """The user's jobs, as many as fit in ``limit`` characters, then how many more there are."""
    if not view.rows:
        return texts.NOTHING_QUEUED
    # Phase B: measured in English; render each line in the reader's language before cutting.
    lines = [
        join(
            " — ",
            [
                f"**{row.ref}** {discord.utils.escape_markdown(reader().render(row.what))}",
                row.status,
            ],
        )
        for row in view.rows
    ]
    text, kept = join("\n", lines), len(lines)
    while len(text) > limit and kept > 1:
        kept -= 1
        more = len(lines) - kept
        text = join(
            "\n", [*lines[:kept], _n("…and {count} more.", "…and {count} more.", more, count=more)]
        )
    return text


def is_image(attachment: discord.Attachment) -> bool:
    """An attachment that says it is a picture (the core judges the bytes themselves)."""
    return (attachment.content_type or "").startswith("image/") or attachment.width is not None


def info_text(view: InfoView) -> str:
    defaults = join(" · ", (r.plain for r in view.settings.rows))
    queue = queue_text(view.queue, MAX_CONTENT // 2)
    return join("\n\n", [view.usage, queue, _("Your defaults: {defaults}.", defaults=defaults)])


def stats_text(view: StatsView) -> str:
    return join(
        "\n",
        (
            join("\n", [join("", ["**", heading, "**"]), *(join("", ["- ", li]) for li in lines)])
            for heading, lines in view.sections()
        ),
    )


def server_text(panel: ServerPanel) -> str:
    channels = panel.settings.channels
    where = ", ".join(f"<#{c}>" for c in channels) if channels else _("every channel")
    return join(
        "\n",
        [
            _("The bot in this server (for its admins):"),
            rules_texts.server_summary(panel.settings, panel.model),
            _("It answers in: {channels} (threads follow their channel).", channels=where),
            INTEGRATIONS,
        ],
    )


def server_model_options(panel: ServerPanel) -> list[discord.SelectOption]:
    chosen = panel.settings.model
    default = discord.SelectOption(
        label=label(_("{value} (bot default)", value=panel.default_model)),
        value=RESET,
        default=chosen is None,
    )
    return [default] + [
        discord.SelectOption(label=label(c.label), value=c.value, default=chosen == c.value)
        for c in panel.models[: MAX_OPTIONS - 1]
    ]


def server_limit_options(panel: ServerPanel) -> list[discord.SelectOption]:
    current = panel.settings.daily_images
    return [
        discord.SelectOption(
            label=label(
                _n("{count} image a day per member", "{count} images a day per member", n, count=n)
                if n
                else _("no daily limit of the server's own")
            ),
            value=str(n),
            default=n == current,
        )
        for n in panel.limits[:MAX_OPTIONS]
    ]
