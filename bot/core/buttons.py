"""A button's data: ``action:job:index``, all a button carries (the rest is read from the store),
and how data from a client is read, since it may be forged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.core.public_ids import PUBLIC_ID


class Action(StrEnum):
    UPSCALE = "u"
    REROLL = "d"
    REUSE = "r"
    CANCEL = "c"
    SHOW = "s"


# A button's job is a public id, or the internal id a button posted before public ids carries.
_BUTTON = re.compile(rf"([udrcs]):([1-9][0-9]{{0,17}}|{PUBLIC_ID}):([0-9])")


@dataclass(frozen=True)
class Button:
    """``action:job:index`` — all a button carries; the rest is read from the store. ``job`` is
    the job's public id (or an old button's internal id, still honoured)."""

    action: Action
    job: str
    index: int = 0

    @property
    def data(self) -> str:
        return f"{self.action.value}:{self.job}:{self.index}"

    @classmethod
    def parse(cls, data: str) -> Button | None:
        """Button data comes from clients and may be forged: anything malformed is ``None``."""
        match = _BUTTON.fullmatch(data) if isinstance(data, str) and len(data) <= 64 else None
        if match is None:
            return None
        return cls(Action(match[1]), match[2], int(match[3]))
