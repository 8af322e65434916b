"""Public job ids: how they are made and how a typed one is read."""

from __future__ import annotations

import re
import secrets

# Public job ids, the only ids users see and new buttons carry: 7 characters of a lowercase
# base32 alphabet without look-alikes (no i, l, o, u), the first a letter so that no public id
# reads as a number (the internal ids that buttons posted before carry): 22 × 32⁶ ≈ 2.4e10 ids,
# random, so that they can't be enumerated. The store makes them (``new_public_id``), unique.
PUBLIC_ID_LETTERS = "abcdefghjkmnpqrstvwxyz"
PUBLIC_ID_ALPHABET = "0123456789" + PUBLIC_ID_LETTERS
PUBLIC_ID_LENGTH = 7
PUBLIC_ID = r"[a-hjkmnp-tv-z][0-9a-hjkmnp-tv-z]{6}"
# What people type for the characters left out (Crockford's reading).
_LOOK_ALIKES = str.maketrans("ilo", "110")


def new_public_id() -> str:
    first = secrets.choice(PUBLIC_ID_LETTERS)
    return first + "".join(secrets.choice(PUBLIC_ID_ALPHABET) for _ in range(PUBLIC_ID_LENGTH - 1))


def parse_public_id(text: str) -> str | None:
    """A public id as typed ("#ABC1234", "abc1234"), or None if it can't be one."""
    if not isinstance(text, str) or len(text) > 16:
        return None
    typed = text.strip().removeprefix("#").lower().translate(_LOOK_ALIKES)
    return typed if re.fullmatch(PUBLIC_ID, typed) else None
