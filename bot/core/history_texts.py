"""The sentences of /show, /history and /link (every platform's): finding a past job, what
became of it, and joining one's accounts."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core import texts

# /show, /history and lineage.
SHOW_HOW = (
    "Send /show and a job's id, e.g. /show k3x9q2m: the id is at the top of each result, and "
    "/history lists yours."
)
WAITING = "⏳ It's waiting in the queue."
HISTORY_END = "There are no older jobs."
PRUNED = "Its prompt and images were deleted: the bot keeps them only for a while."
IMAGES_UNAVAILABLE = "Its images can't be brought here right now. Please try again later."
HISTORY_EMPTY = "You have no jobs yet. Describe a picture to make your first one."
HISTORY_SENT = "Your history is yours alone: I've sent it to you in our private chat."


def no_such_job(typed: str) -> str:
    """The answer for an id that names no job, and for a job the asker may not see here."""
    return (
        f"I can't find a job “{texts.quote(typed, 20)}” that you can see here. Check the id at "
        "the top of the result, or find it in /history."
    )


def history_private(username: str) -> str:
    return (
        f"Your history is yours alone: open a private chat with @{username}, press Start and "
        "send /history there."
    )


# /link: one person on both platforms.
LINK_MINUTES = 10
LINK_PRIVATE = "Send /link to me in a private chat: the code it gives is for you alone."
LINK_BAD_CODE = (
    f"That code isn't valid: it may be mistyped, used already or older than {LINK_MINUTES} "
    "minutes. Send /link on your other account for a new one."
)
LINK_TOO_MANY = "Too many wrong codes. Please wait a few minutes, then ask for a new code."
LINK_SAME_PLATFORM = (
    "That code comes from this same platform. Send it from your account on the other one."
)
LINK_TAKEN = "One of these accounts is linked already. Send /link off on it to unlink it first."
NOT_LINKED = "This account isn't linked to another one. Send /link to get a code."
UNLINKED = "Unlinked: each account has its own history, settings and daily images again."
_PLATFORM_NAMES = {"telegram": "Telegram", "discord": "Discord", "console": "the console"}


def platform_name(platform: str) -> str:
    return _PLATFORM_NAMES.get(platform, platform)


def link_code(code: str, elsewhere: str) -> str:
    return (
        f"Your link code: {code}\nSend /link {code} to this bot on {elsewhere} within "
        f"{LINK_MINUTES} minutes: the two accounts then share their history, settings and "
        "daily images."
    )


def linked(others: Sequence[str]) -> str:
    return (
        f"This account is linked with {', '.join(others)}: they share history, settings and "
        "daily images. Send /link off to unlink them."
    )
