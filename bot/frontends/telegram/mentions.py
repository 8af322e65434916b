"""How a Telegram message names a user: text mentions (their offsets counted in UTF-16, as
Telegram counts them), plain names in captions, and whose panel a message is.

A panel (/settings, /queue) in a group names its owner with a text mention, which Telegram keeps
with the message: a press reads the owner from there, not from anything the client sends.
"""

from __future__ import annotations

from telegram import MaybeInaccessibleMessage, Message, MessageEntity, User

from bot.core import texts
from bot.core.i18n import _, reader


def addressed(user: User | None, text: str) -> tuple[str, list[MessageEntity]]:
    """``text`` addressed to ``user`` with a text mention (a panel in a group names its owner
    so; None: a private chat, where the chat is the owner)."""
    if user is None:
        return text, []
    # Rendered here: the mention's offset and length count the words as sent.
    name = texts.as_name(user.first_name) if user.first_name else reader().render(_("you"))
    return f"{name}: {reader().render(text)}", mentioning(user, name, 0)


def mentioning(user: User, name: str, at: int) -> list[MessageEntity]:
    """A text mention of ``user`` as ``name``, at the UTF-16 offset ``at``."""
    return [MessageEntity(MessageEntity.TEXT_MENTION, at, _utf16(name), user=user)]


def mentioned(user: User, text: str, name: str) -> tuple[str, list[MessageEntity]]:
    """``text`` rendered, with ``name`` in it a mention of ``user`` (wherever its words put it)."""
    shown = reader().render(text)
    at = shown.find(name) if name else -1
    return shown, mentioning(user, name, _utf16(shown[:at])) if at >= 0 else []


def owner_of(message: MaybeInaccessibleMessage) -> int | None:
    """Whose panel a message is: the private chat's user, or the user a group panel names."""
    if message.chat.type == "private":
        return message.chat.id
    if not isinstance(message, Message):
        return None
    first = next(iter(message.entities), None)
    if first is None or first.type != MessageEntity.TEXT_MENTION or first.user is None:
        return None
    return first.user.id if first.offset == 0 else None


def name_of(user: User | None) -> str:
    """How a caption names a user: their @username, else their first name (plain text, never
    a mention entity, and never looking like someone's @username)."""
    if user is None:
        return ""
    return f"@{user.username}" if user.username else texts.as_name(user.first_name)


def _utf16(text: str) -> int:
    """A length as Telegram counts entity offsets: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2
