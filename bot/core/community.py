"""What running a community adds to the domain: a server's (or group's) settings, chosen by its
admins, and the record of what the operator's admins did.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSettings:
    """What a server's (or a Telegram group's) admins chose for the bot there."""

    enabled: bool = True
    channels: tuple[str, ...] = ()  # the channels it answers in; empty: every channel
    model: str | None = None  # the members' default model, under their own settings
    daily_images: int = 0  # images a member may ask for here per UTC day; 0: no such limit
    shared_buttons: bool = True  # anyone in the chat may press a result's buttons


@dataclass(frozen=True)
class AuditEntry:
    """One thing an admin did: who (``platform:id``), when (epoch seconds), what, to whom."""

    at: float
    actor: str
    action: str
    target: str
