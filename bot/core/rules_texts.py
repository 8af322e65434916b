"""What a community's rules say to its members: the operator's allowlists and bans, a server's
switch, channels and buttons, blocked words, the daily images and a member's day (``/info``),
and what a server's panel shows its admins. Kept by ``bot.core.service.rules``; every other
sentence a user reads is in ``texts``, what the operator reads in ``admin_texts``.
"""

from __future__ import annotations

from bot.core.community import ServerSettings
from bot.core.domain import (
    DISCORD,
    TELEGRAM,
)
from bot.core.texts import quote

NOT_ALLOWED = (
    "This bot is open to some chats and people only, and its operator hasn't opened it to this one."
)
BANNED = "You can't use this bot any more: its operator has blocked you."
CHANNEL_OFF = (
    "In this server the bot answers in some channels only, and this isn't one of them; the "
    "server's admins choose which with /server."
)
NOT_YOUR_BUTTONS = (
    "Here only the person who asked for these images can use their buttons (the admins chose "
    "so). Ask for your own with /imagine."
)
# What a server is called, and the command its admins set the bot up with, on each platform.
SERVER_WORDS = {DISCORD: ("server", "/server"), TELEGRAM: ("group", "/group")}
CANCELLED_BY_ADMIN = "The bot's operator cancelled this job."
# Server controls (/server on Discord, /group on Telegram), for that server's admins.
SERVER_ONLY = "Use this in a server or group: its settings are that server's or group's."


def usage(used: int, limit: int, here: tuple[int, int] | None = None) -> str:
    """Today's images against the daily limit (0: none), and this server's own, if it has one."""
    if limit:
        line = f"Today you've asked for {used} of your {limit} images; {max(0, limit - used)} left."
    else:
        line = f"Today you've asked for {used} image{'s' * (used != 1)}; you have no daily limit."
    if here is not None:
        used_here, limit_here = here
        left = max(0, limit_here - used_here)
        line += f" In this server: {used_here} of {limit_here} per member; {left} left."
    return (
        f"{line} Days end at midnight UTC; failed jobs, and those cancelled while they wait, "
        "don't count."
    )


def server_summary(settings: ServerSettings, model: str) -> str:
    """A server's settings but its channels (which only a platform can name)."""
    limit = f"{settings.daily_images} a day" if settings.daily_images else "no limit of its own"
    return (
        f"Bot: {'on' if settings.enabled else 'off'} · default model: {model} · images per "
        f"member: {limit} · others may press a member's buttons: "
        f"{'yes' if settings.shared_buttons else 'no'}."
    )


def switched_off(platform: str) -> str:
    word, command = SERVER_WORDS.get(platform, ("server", "/server"))
    return f"The bot is switched off in this {word}; its admins can switch it on with {command}."


def blocked(phrase: str) -> str:
    return f"“{quote(phrase)}” is on this bot's list of blocked words. Please rephrase your prompt."


def server_quota(limit: int) -> str:
    return (
        f"You've reached this server's limit of {limit} images a day per member. It resets at "
        "midnight UTC."
    )
