"""Whether a message (or a caption) asks the bot for an image, with which prompt, and from whom.

Telegram's rules for bots in groups, kept even when privacy mode is off: the bot reacts to its
commands, to mentions of it and to replies to its own messages; in a private chat every message
is for the bot.
"""

from __future__ import annotations

import re

from telegram import Message

from bot.core.people import TELEGRAM, Owner

# "/imagine", "/imagine@this_bot"; Telegram commands are at most 32 characters.
COMMAND = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,32}))?(?=\s|$)")


def command_argument(text: str) -> str:
    """What follows ``/command`` or ``/command@bot`` (PTB has already checked whose it is)."""
    command = COMMAND.match(text)
    return text[command.end() :].strip() if command else text.strip()


def addressed_prompt(text: str, *, private: bool, to_bot: bool, username: str) -> str | None:
    """The prompt in ``text`` if it asks this bot for an image, else None (not for us)."""
    command = COMMAND.match(text)
    if command is not None:
        ours = command[1].lower() == "imagine" and (
            command[2] is None or command[2].lower() == username.lower()
        )
        return command_argument(text) if ours else None
    mention = re.compile(rf"(?<![\w@])@{re.escape(username)}\b", re.IGNORECASE)
    if mention.search(text):
        return " ".join(mention.sub(" ", text).split())
    return text.strip() if private or to_bot else None


def replies_to_bot(message: Message, bot_id: int) -> bool:
    target = message.reply_to_message
    return target is not None and target.from_user is not None and target.from_user.id == bot_id


def sender_id(message: Message) -> int:
    """Who a message is from: the chat it was sent as, when Telegram hides the user behind a
    placeholder (a group's anonymous admins, channels), so that those are not all one user."""
    if message.sender_chat is not None:
        return message.sender_chat.id
    return message.from_user.id if message.from_user is not None else message.chat_id


def owner_in(chat_id: int, user_id: int, answer_to: int | None = None) -> Owner:
    """Who asks where. A group is its own server (its admins set the bot up there, /group):
    Telegram gives groups and channels negative ids, and private chats their user's id."""
    return Owner(
        TELEGRAM,
        str(user_id),
        str(chat_id),
        str(answer_to) if answer_to is not None else None,
        server=str(chat_id) if chat_id < 0 else None,
    )
