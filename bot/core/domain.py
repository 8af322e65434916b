"""The domain's vocabulary: requests, jobs, results and the buttons on them.

Everything here is plain data that survives a restart: a job holds ids to answer to, never a live
platform object, and a button holds only ``action:job:index``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

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
class Owner:
    """Who asked, and where the answer goes: plain ids, and the adapter's own routing ids."""

    platform: str
    user_id: str
    chat_id: str
    reply_to: str | None = None
    route: Mapping[str, str] = field(default_factory=dict)

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


@dataclass(frozen=True)
class ImageRef:
    """An image a provider made: its handle there (Flow's ``mediaGenerationId``, a Wireflow
    result URL; empty where the provider keeps nothing and only the bytes we kept serve), the
    capacity unit that made it (a Flow account, else the provider's name) and the provider."""

    media_id: str
    account: str
    provider: str = "flow"


@dataclass(frozen=True)
class Upload:
    """A user's image we hold (by content hash) until the job has uploaded it."""

    sha256: str
    mime: str


Reference = ImageRef | Upload


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


@dataclass(frozen=True)
class GenerationRequest:
    """A render. ``fixed_seed``: the seed was asked for (``--seed``, or U re-rendering an image
    at a larger size), so only a road that takes seeds may serve it."""

    prompt: str
    model: str
    aspect_ratio: str
    count: int
    seed: int
    references: tuple[Reference, ...] = ()
    characters: tuple[CharacterRef, ...] = ()
    size: str = "1K"
    fixed_seed: bool = False

    @property
    def pinned_account(self) -> str | None:
        """A reference or character a provider already holds ties the job to its account."""
        held = (
            *(r.account for r in self.references if isinstance(r, ImageRef)),
            *(c.account for c in self.characters),
        )
        return next(iter(held), None)

    @property
    def uploads(self) -> tuple[Upload, ...]:
        return tuple(r for r in self.references if isinstance(r, Upload))


@dataclass(frozen=True)
class UpscaleRequest:
    source_job: int
    index: int
    image: ImageRef
    resolution: str
    model: str

    @property
    def pinned_account(self) -> str:
        return self.image.account

    @property
    def count(self) -> int:
        """Images it makes: an upscale counts as one towards the daily quota."""
        return 1


Request = GenerationRequest | UpscaleRequest


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Execution:
    """A job's render on an asynchronous provider (Wireflow), stored before anyone waits for
    it: the ``key`` it is (or will be) submitted under, and once submitted its ``ids``. After a
    restart the job resumes waiting for ``ids`` instead of submitting again."""

    provider: str
    key: str
    ids: tuple[str, ...] = ()


@dataclass
class Job:
    id: int
    owner: Owner
    request: Request
    state: JobState = JobState.QUEUED
    account: str | None = None
    attempts: int = 0
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    delivered: bool = False
    pruned: bool = False  # past BOT_RETENTION_DAYS: prompt and images gone, the row kept
    execution: Execution | None = None

    @property
    def is_upscale(self) -> bool:
        return isinstance(self.request, UpscaleRequest)


@dataclass(frozen=True)
class ResultImage:
    """One generated (or upscaled) image; ``data`` is kept until it is delivered, and after
    that only where no handle stands for it (``ref.media_id`` empty): R needs the bytes."""

    index: int
    ref: ImageRef
    seed: int | None
    model: str
    mime: str
    data: bytes | None = None


class Action(StrEnum):
    UPSCALE = "u"
    REROLL = "d"
    REUSE = "r"
    CANCEL = "c"


_BUTTON = re.compile(r"([udrc]):([1-9][0-9]{0,17}):([0-9])")


@dataclass(frozen=True)
class Button:
    """``action:job:index`` — all a button carries; the rest is read from the store."""

    action: Action
    job_id: int
    index: int = 0

    @property
    def data(self) -> str:
        return f"{self.action.value}:{self.job_id}:{self.index}"

    @classmethod
    def parse(cls, data: str) -> Button | None:
        """Button data comes from clients and may be forged: anything malformed is ``None``."""
        match = _BUTTON.fullmatch(data) if isinstance(data, str) and len(data) <= 64 else None
        if match is None:
            return None
        return cls(Action(match[1]), int(match[2]), int(match[3]))


@dataclass(frozen=True)
class JobResult:
    """A finished job: its images and the rows of buttons that apply to them."""

    job: Job
    images: tuple[ResultImage, ...]
    buttons: tuple[tuple[Button, ...], ...] = ()


@dataclass(frozen=True)
class UserSettings:
    """A user's own defaults; ``None`` means "use the bot's default"."""

    model: str | None = None
    aspect_ratio: str | None = None
    count: int | None = None
    upscale_resolution: str | None = None


@dataclass(frozen=True)
class Submitted:
    job_id: int
    position: int


@dataclass(frozen=True)
class QueueItem:
    """One of a user's open jobs, and its place in the queue (0: not waiting here)."""

    job: Job
    position: int


@dataclass(frozen=True)
class AdminEvent:
    """An operator problem, raised once per incident."""

    kind: str
    account: str | None
    message: str


@dataclass(frozen=True)
class HeldAlert:
    """An admin alert not given yet (the admin never wrote to the bot, or closed their DMs):
    kept in the store and sent when the admin next writes to the bot."""

    admin: UserKey
    text: str
    since: float  # seconds since the epoch
