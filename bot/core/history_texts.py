"""The sentences of /show, /history and /link (every platform's): finding a past job, what
became of it, and joining one's accounts."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core import texts
from bot.core.i18n import Text, _, join

# /show, /history and lineage.
SHOW_HOW = _(
    "Send /show and a job's id, e.g. /show k3x9q2m: the id is at the top of each result, and "
    "/history lists yours."
)
WAITING = _("⏳ It's waiting in the queue.")
HISTORY_END = _("There are no older jobs.")
PRUNED = _("Its prompt and images were deleted: the bot keeps them only for a while.")
IMAGES_UNAVAILABLE = _("Its images can't be brought here right now. Please try again later.")
HISTORY_EMPTY = _("You have no jobs yet. Describe a picture to make your first one.")
HISTORY_SENT = _("Your history is yours alone: I've sent it to you in our private chat.")


def no_such_job(typed: str) -> Text:
    """The answer for an id that names no job, and for a job the asker may not see here."""
    return _(
        "I can't find a job “{typed}” that you can see here. Check the id at the top of the "
        "result, or find it in /history.",
        typed=texts.quote(typed, 20),
    )


def history_private(username: str) -> Text:
    return _(
        "Your history is yours alone: open a private chat with @{username}, press Start and "
        "send /history there.",
        username=username,
    )


# /link: one person on both platforms.
LINK_MINUTES = 10
LINK_PRIVATE = _("Send /link to me in a private chat: the code it gives is for you alone.")
LINK_BAD_CODE = _(
    "That code isn't valid: it may be mistyped, used already or older than {minutes} "
    "minutes. Send /link on your other account for a new one.",
    minutes=LINK_MINUTES,
)
LINK_TOO_MANY = _("Too many wrong codes. Please wait a few minutes, then ask for a new code.")
LINK_SAME_PLATFORM = _(
    "That code comes from this same platform. Send it from your account on the other one."
)
LINK_TAKEN = _("One of these accounts is linked already. Send /link off on it to unlink it first.")
NOT_LINKED = _("This account isn't linked to another one. Send /link to get a code.")
UNLINKED = _("Unlinked: each account has its own history, settings and daily images again.")
# Product names, with no article: sentences put them after "your" and "on". The console has
# no /link (it is the operator's, on one machine), so it is never named here.
_PLATFORM_NAMES = {"telegram": "Telegram", "discord": "Discord"}


def platform_name(platform: str) -> str:
    return _PLATFORM_NAMES.get(platform, platform)


def cancelled_on(platform: str) -> Text:
    """Where a job was asked, when its owner cancelled it from their account on ``platform``."""
    return _("Cancelled on {platform}.", platform=platform_name(platform))


def link_code(code: str, elsewhere: str) -> Text:
    return _(
        "Your link code: {code}\nSend /link {code} to this bot on {platform} within {minutes} "
        "minutes: the two accounts then share their history, settings and daily images.",
        code=code,
        platform=elsewhere,
        minutes=LINK_MINUTES,
    )


def linked(others: Sequence[str]) -> Text:
    return _(
        "This account is linked with {accounts}: they share history, settings and daily images. "
        "Send /link off to unlink them.",
        accounts=join(", ", others),
    )


# The turns of /history's pages.
NEWER = _("‹ Newer")
OLDER = _("Older ›")
