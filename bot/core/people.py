"""Who asks and where the answer goes: the platforms, a platform's user (``platform:id``), a
person's linked users, and a job's owner with the ids to answer to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# The platforms a user comes from: ``Owner.platform``, and the first half of ``platform:id``.
DISCORD = "discord"
TELEGRAM = "telegram"
CONSOLE = "console"


@dataclass(frozen=True)
class UserKey:
    """A platform's user, written ``platform:id`` wherever an operator types one."""

    platform: str
    user_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @classmethod
    def parse(cls, text: str) -> UserKey:
        platform, _, user_id = text.partition(":")
        return cls(platform, user_id)


@dataclass(frozen=True)
class Identity:
    """One person: the platform users joined by ``/link`` (just one, until they link). ``key``
    is the one their settings live under and their caps and quota count against."""

    key: UserKey
    users: tuple[UserKey, ...]

    @classmethod
    def alone(cls, user: UserKey) -> Identity:
        return cls(user, (user,))

    @property
    def linked(self) -> bool:
        return len(self.users) > 1


@dataclass(frozen=True)
class Owner:
    """Who asked, and where the answer goes: plain ids, and the adapter's own routing ids.
    ``name`` is how a caption names them ("@bob"), as their platform shows it."""

    platform: str
    user_id: str
    chat_id: str
    reply_to: str | None = None
    route: Mapping[str, str] = field(default_factory=dict)
    server: str | None = None  # the Discord server or Telegram group asked in; None: privately
    parent: str | None = None  # the channel a Discord thread is in: the thread follows it
    name: str = ""

    @property
    def user(self) -> UserKey:
        return UserKey(self.platform, self.user_id)

    @property
    def chat(self) -> str:
        return f"{self.platform}:{self.chat_id}"

    @property
    def place(self) -> str:
        """Where shared characters live: the server the chat is in (``route["guild"]``, on a
        platform with servers), else the chat itself."""
        server = self.route.get("guild")
        return f"{self.platform}:server:{server}" if server else self.chat

    @property
    def channel(self) -> str:
        """The channel whose settings apply here: a thread's parent, else the chat itself."""
        return self.parent or self.chat_id
