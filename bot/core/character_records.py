"""A character as it is kept (its pictures, the Flow character made of them) and as a request
names it, and how character names compare.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from bot.core.people import UserKey


@dataclass(frozen=True)
class CharacterImage:
    """One of a character's pictures, kept (checked, re-encoded) to re-create it elsewhere;
    ``data`` is None where only its hash was read."""

    sha256: str
    mime: str
    data: bytes | None = None


@dataclass(frozen=True)
class Character:
    """A user's named character: its pictures, and the Flow character made of them (``handle``)
    on the account that holds it."""

    id: int
    owner: UserKey
    name: str
    account: str
    handle: str
    images: tuple[CharacterImage, ...]


def name_key(name: str) -> str:
    """How character names compare: "Carol", "CAROL" and "carol" are one name (and so are
    "é" typed as one character or as "e" and its accent)."""
    return unicodedata.normalize("NFC", name).casefold()


@dataclass(frozen=True)
class CharacterRef:
    """A character as a request uses it: enough to send it, and its id to find it again."""

    id: int
    name: str
    handle: str
    account: str
    images: int  # pictures it holds: they count towards the model's reference budget
