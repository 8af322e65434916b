"""Operator problems for the admins: an incident told when it starts and ends, and an alert
held until the admin can be written to.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.people import UserKey


@dataclass(frozen=True)
class AdminEvent:
    """An operator problem, told once when it starts and once when it is over."""

    kind: str
    account: str | None
    message: str
    resolved: bool = False


@dataclass(frozen=True)
class HeldAlert:
    """An admin alert not given yet (the admin never wrote to the bot, or closed their DMs):
    kept in the store and sent when the admin next writes to the bot."""

    admin: UserKey
    text: str
    since: float  # seconds since the epoch
