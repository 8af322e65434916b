"""What the operator's admins and each server's admins set, and what they read back: bans,
quotas, blocked words, the pause, a server's settings, the day's figures and the audit log
(``bot.store``'s ``*_controls``). A part of ``ports.Store``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.core.community import AuditEntry, ServerSettings
from bot.core.people import UserKey


@dataclass(frozen=True)
class DayStats:
    """A UTC day's jobs: how many are in each state and ended each way, and who asked most."""

    states: Mapping[str, int]
    outcomes: Mapping[str, int]
    top_users: Sequence[tuple[UserKey, int]]  # images asked for (net of those given back)


class Controls(Protocol):
    """What the operator's admins and each server's admins set, read where it applies (every
    process sharing the store sees a change at once). Every method is one transaction."""

    async def is_banned(self, user: UserKey) -> bool: ...

    async def set_banned(self, user: UserKey, banned: bool) -> bool:
        """Ban or unban; False if the user already was (or wasn't)."""
        ...

    async def quota(self, user: UserKey | None) -> int | None:
        """A user's own daily image limit (``None`` user: the default), if an admin set one."""
        ...

    async def set_quota(self, user: UserKey | None, images: int | None) -> None:
        """Set a user's daily images (``None`` user: the default); ``None`` images: unset."""
        ...

    async def blocked_words(self) -> list[str]: ...

    async def set_blocked(self, phrase: str, blocked: bool) -> bool:
        """Block or unblock a phrase; False if it already was (or wasn't)."""
        ...

    async def seed_blocked(self, phrases: Sequence[str]) -> None:
        """Block the phrases no admin has blocked or unblocked yet (``BOT_BLOCKED_WORDS``)."""
        ...

    async def paused(self) -> bool: ...

    async def set_paused(self, paused: bool) -> bool:
        """Pause or resume the queue; False if it already was (or wasn't)."""
        ...

    async def server_settings(self, platform: str, server: str) -> ServerSettings: ...

    async def save_server_settings(
        self, platform: str, server: str, settings: ServerSettings
    ) -> None: ...

    async def images_in(self, user: UserKey, server: str, day: str) -> int:
        """Images the user asked for in ``server`` on ``day`` (net of those given back)."""
        ...

    async def day_stats(self, day: str, *, top: int) -> DayStats: ...

    async def audit(self, actor: UserKey, action: str, target: str) -> None:
        """Record that ``actor`` did ``action`` to ``target``, now."""
        ...

    async def audit_log(self, limit: int) -> list[AuditEntry]:
        """The latest entries, newest first."""
        ...
