"""The operator's knobs the core obeys (read from the environment by ``bot.config``)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.models_table import UPSCALE_SIZES
from bot.core.people import UserKey

# The longest prompt an operator may allow: Discord's text input (its prompt forms, behind R1–R4
# and "Imagine with this image") holds at most 4000 characters, a Telegram message 4096.
MAX_PROMPT_CHARS = 4000


@dataclass(frozen=True)
class Limits:
    """What one user may ask, and the bounds on what they send."""

    max_prompt_chars: int = 2000
    max_image_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    queued_per_user: int = 10
    running_per_user: int = 2
    daily_images_per_user: int = 0
    # Button presses: this many at once, then one more every ``press_interval_seconds``.
    press_burst: int = 8
    press_interval_seconds: float = 3.0


@dataclass(frozen=True)
class Tuning:
    """How the scheduler drives the upstream."""

    account_min_concurrency: int = 3
    account_max_concurrency: int = 20
    retry_min_seconds: float = 5.0
    retry_max_seconds: float = 60.0
    job_deadline_seconds: float = 900.0
    generation_timeout_seconds: float = 300.0
    moderation_fallback: bool = True
    accounts_refresh_seconds: float = 300.0
    # While no road can serve, a job already queued waits this long before it is told so.
    outage_grace_seconds: float = 30.0


@dataclass(frozen=True)
class Defaults:
    """What a request gets when neither the user nor their settings say otherwise."""

    aspect_ratio: str = "1:1"
    count: int = 4
    upscale_resolution: str = UPSCALE_SIZES[0]


@dataclass(frozen=True)
class Access:
    """Who runs the bot and who may use it (``platform:id`` strings; empty means everyone)."""

    admins: frozenset[str] = frozenset()
    allowed_users: frozenset[str] = frozenset()
    allowed_chats: frozenset[str] = frozenset()
    accounts: tuple[str, ...] = ()

    def is_admin(self, user: UserKey) -> bool:
        return str(user) in self.admins

    def admins_by_platform(self) -> dict[str, list[str]]:
        """The admins' ids, by their platform."""
        found: dict[str, list[str]] = {}
        for key in sorted(map(UserKey.parse, self.admins), key=str):
            found.setdefault(key.platform, []).append(key.user_id)
        return found
