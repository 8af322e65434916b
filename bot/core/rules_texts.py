"""What a community's rules say to its members: the operator's allowlists and bans, a server's
switch, channels and buttons, blocked words, the daily images and a member's day (``/info``),
and what a server's panel shows its admins. Kept by ``bot.core.service.rules``; every other
sentence a user reads is in ``texts``, what the operator reads in ``admin_texts``.
"""

from __future__ import annotations

from bot.core.community import ServerSettings
from bot.core.i18n import Text, _, _n, join
from bot.core.people import TELEGRAM
from bot.core.texts import quote

NOT_ALLOWED = _(
    "This bot is open to some chats and people only, and its operator hasn't opened it to this one."
)
BANNED = _("You can't use this bot any more: its operator has blocked you.")
CHANNEL_OFF = _(
    "In this server the bot answers in some channels only, and this isn't one of them; the "
    "server's admins choose which with /server."
)
NOT_YOUR_BUTTONS = _(
    "Here only the person who asked for these images can use their buttons (the admins chose "
    "so). Ask for your own with /imagine."
)
CANCELLED_BY_ADMIN = _("The bot's operator cancelled this job.")
# Server controls (/server on Discord, /group on Telegram), for that server's admins.
SERVER_ONLY = _("Use this in a server or group: its settings are that server's or group's.")


def usage(used: int, limit: int, here: tuple[int, int] | None = None) -> Text:
    """Today's images against the daily limit (0: none), and this server's own, if it has one."""
    lines: list[str] = []
    if limit:
        lines.append(
            _n(
                "Today you've asked for {used} of your {limit} image; {left} left.",
                "Today you've asked for {used} of your {limit} images; {left} left.",
                limit,
                used=used,
                limit=limit,
                left=max(0, limit - used),
            )
        )
    else:
        lines.append(
            _n(
                "Today you've asked for {used} image; you have no daily limit.",
                "Today you've asked for {used} images; you have no daily limit.",
                used,
                used=used,
            )
        )
    if here is not None:
        used_here, limit_here = here
        lines.append(
            _(
                "In this server: {used} of {limit} per member; {left} left.",
                used=used_here,
                limit=limit_here,
                left=max(0, limit_here - used_here),
            )
        )
    lines.append(
        _(
            "Days end at midnight UTC; failed jobs, and those cancelled while they wait, "
            "don't count."
        )
    )
    return join(" ", lines)


def server_summary(settings: ServerSettings, model: str) -> Text:
    """A server's settings but its channels (which only a platform can name)."""
    if settings.daily_images:
        limit = _n(
            "{count} a day", "{count} a day", settings.daily_images, count=settings.daily_images
        )
    else:
        limit = _("no limit of its own")
    return _(
        "Bot: {on} · default model: {model} · images per member: {limit} · others may press a "
        "member's buttons: {shared}.",
        on=_("on") if settings.enabled else _("off"),
        model=model,
        limit=limit,
        shared=_("yes") if settings.shared_buttons else _("no"),
    )


def switched_off(platform: str) -> Text:
    if platform == TELEGRAM:
        return _("The bot is switched off in this group; its admins can switch it on with /group.")
    return _("The bot is switched off in this server; its admins can switch it on with /server.")


def blocked(phrase: str) -> Text:
    return _(
        "“{phrase}” is on this bot's list of blocked words. Please rephrase your prompt.",
        phrase=quote(phrase),
    )


def server_quota(limit: int) -> Text:
    return _n(
        "You've reached this server's limit of {limit} image a day per member. It resets at "
        "midnight UTC.",
        "You've reached this server's limit of {limit} images a day per member. It resets at "
        "midnight UTC.",
        limit,
        limit=limit,
    )
