"""The status message of a job: one message, saying where the job is (``progress`` keeps it
true) until the answer takes its place (``delivery``). ``StatusBook`` knows where it is, also
for a restarted process. Its edits go out in the
order made (``outbound``), so a late progress report never lands on top of the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from bot.core.i18n import Text, _, join
from bot.core.people import Owner
from bot.core.presenters import JobStatus
from bot.frontends.telegram import views

StatusKey = tuple[int, int]  # (chat id, message id)
log = logging.getLogger(__name__)
# A new message that fails for a passing reason (network, Telegram's 5xx, a flood wait longer
# than the rate limiter's retries) is tried this often, from this wait, doubling.
SEND_ATTEMPTS = 3
SEND_BACKOFF = 0.5
# What Telegram says when a message can't take an edit any more: deleted, too old, or no text
# to edit (the answer took its place).
_GONE = ("message to edit not found", "message can't be edited", "no text in the message")
# Under what a job's own status message says: its chat's calls may leave it none to count its
# place down with (``allowance``), and its answer takes its place.
RESULT_HERE = _("This message becomes your result when it's ready.")
# A job's own status message may stand as it went until the picture takes its place (a
# one-image job brings no call for its start: ``allowance``): "next" is said so that it stays
# true once the job runs.
UNDER_WAY = _("⏳ Your job is next, or already under way.")


def key_of(owner: Owner) -> StatusKey | None:
    """The job's status message, if it got one."""
    message_id = owner.route.get("status")
    return (int(owner.chat_id), int(message_id)) if message_id else None


def saying(said: str) -> Text:
    """What a job's own status message says: ``said`` (where the job is), and where its
    result comes."""
    return join("\n", [said, RESULT_HERE])


def own(shown: JobStatus) -> Text:
    """What a job's own status message says of ``shown``: its place, or that it runs; "next"
    in words that stay true while it runs."""
    waiting_next = not shown.running and not shown.paused and shown.position == 1
    return saying(UNDER_WAY if waiting_next else shown.text)


def answer_to(owner: Owner) -> int | None:
    """The message the job's answer replies to."""
    return int(owner.reply_to) if owner.reply_to else None


def gone(exc: BadRequest) -> bool:
    """Telegram refused an edit because the message can't take it (not for what it said)."""
    reason = exc.message.lower()
    return any(words in reason for words in _GONE)


def reply_to(message_id: int | None) -> ReplyParameters | None:
    # The user may delete the message we answer; the answer must still arrive.
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


async def edit(
    bot: Bot, key: StatusKey, text: str, markup: InlineKeyboardMarkup | None = None
) -> bool:
    """Edit a status message; False if it can't be (gone). An unchanged text is not an error."""
    try:
        await bot.edit_message_text(text, chat_id=key[0], message_id=key[1], reply_markup=markup)
    except BadRequest as exc:
        if "message is not modified" in exc.message.lower():
            return True
        if gone(exc):
            return False
        raise
    return True


async def show(
    bot: Bot, key: StatusKey | None, text: str, chat_id: int, answer_to: int | None
) -> None:
    """Put a final sentence on the status message, or reply anew if that message is gone."""
    if key is not None and await edit(bot, key, text):
        return
    await send(bot, chat_id, text, answer_to)


async def send(bot: Bot, chat_id: int, text: str, answer_to: int | None) -> Message:
    """A new message replying to ``answer_to``, tried again after failures that may pass; the
    last failure is raised. Refusals (bot blocked, chat gone) are raised at once."""
    attempt = 0
    while True:
        try:
            return await bot.send_message(chat_id, text, reply_parameters=reply_to(answer_to))
        except TelegramError as exc:
            attempt += 1
            if attempt == SEND_ATTEMPTS or not passing(exc):
                raise
            log.info("sending to chat %d failed (%s), attempt %d", chat_id, exc, attempt)
            await asyncio.sleep(SEND_BACKOFF * 2 ** (attempt - 1))


async def clear(bot: Bot, key: StatusKey) -> None:
    """Remove the status message once the answer is there, or mark it done if that fails."""
    try:
        await bot.delete_message(*key)
    except TelegramError:  # e.g. older than 48 hours: bots may no longer delete it
        with contextlib.suppress(TelegramError):
            await edit(bot, key, views.DONE)


def passing(exc: TelegramError) -> bool:
    """A failure that may pass: the network, Telegram's 5xx, a flood wait."""
    # BadRequest is a NetworkError in PTB, but Telegram refused the request itself.
    return isinstance(exc, NetworkError | RetryAfter) and not isinstance(exc, BadRequest)
