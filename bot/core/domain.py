"""The domain's vocabulary: requests, jobs, results and the buttons on them.

Everything here is plain data that survives a restart: a job holds ids to answer to, never a live
platform object, and a button holds only ``action:job:index``.
"""

from __future__ import annotations

import re
import secrets
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
        """An image a provider made ties the job to the account that holds it."""
        return next((r.account for r in self.references if isinstance(r, ImageRef)), None)

    @property
    def home_account(self) -> str | None:
        """Where its characters live (on Flow): the job waits for it while it serves."""
        return self.characters[0].account if self.characters else None

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
    public_id: str = ""
    parent: Lineage | None = None

    @property
    def is_upscale(self) -> bool:
        return isinstance(self.request, UpscaleRequest)


@dataclass(frozen=True)
class ResultImage:
    """One generated (or upscaled) image; ``data`` is kept until it is delivered, and after
    that only where no handle stands for it (``ref.media_id`` empty): R needs the bytes. Brought
    back by /show, it holds its bytes, or ``posted``: where the platform it is shown on holds
    it already (``bot.core.ports.Posted``)."""

    index: int
    ref: ImageRef
    seed: int | None
    model: str
    mime: str
    data: bytes | None = None
    posted: str | None = None


class Action(StrEnum):
    UPSCALE = "u"
    REROLL = "d"
    REUSE = "r"
    CANCEL = "c"
    SHOW = "s"


@dataclass(frozen=True)
class Lineage:
    """The result a job was made from: that job, the button pressed on it and its image (0 for
    🎲). Read back with the parent's public id and owner."""

    job_id: int
    action: Action
    index: int = 0
    public_id: str = ""
    owner: UserKey | None = None


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


@dataclass(frozen=True)
class JobResult:
    """A finished job: its images and the rows of buttons that apply to them."""

    job: Job
    images: tuple[ResultImage, ...]
    buttons: tuple[tuple[Button, ...], ...] = ()


@dataclass(frozen=True)
class Brought:
    """A job's answer brought back by /show (its images as references the platform it is shown
    on holds, or as bytes); ``missing``: some of its images could not be brought."""

    result: JobResult
    missing: bool


@dataclass(frozen=True)
class UserSettings:
    """A user's own defaults; ``None`` means "use the bot's default"."""

    model: str | None = None
    aspect_ratio: str | None = None
    count: int | None = None
    upscale_resolution: str | None = None
    language: str | None = None  # an i18n.LANGUAGES code, or settings.AUTO


@dataclass(frozen=True)
class Submitted:
    job_id: int
    position: int
    paused: bool = False  # the operator paused the queue: it waits until they resume it
    public_id: str = ""
    images: int = 1  # pictures it asks for


@dataclass(frozen=True)
class QueueItem:
    """One of a user's open jobs, and its place in the queue (0: not waiting here)."""

    job: Job
    position: int
    paused: bool = False  # the operator paused the queue


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
