"""The domain's vocabulary: requests, jobs and their results.

Everything here is plain data that survives a restart: a job holds ids to answer to, never a live
platform object. Who asks is ``people``; a button's data, ``buttons``; public ids, ``public_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.buttons import Action, Button
from bot.core.character_records import CharacterRef
from bot.core.people import Owner, UserKey


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


@dataclass(frozen=True)
class Lineage:
    """The result a job was made from: that job, the button pressed on it and its image (0 for
    🎲). Read back with the parent's public id and owner."""

    job_id: int
    action: Action
    index: int = 0
    public_id: str = ""
    owner: UserKey | None = None


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
    # Seconds until its answer is likely, when the upstream's recent answers tell (None: unknown).
    answer_in: float | None = None


@dataclass(frozen=True)
class QueueItem:
    """One of a user's open jobs, and its place in the queue (0: not waiting here)."""

    job: Job
    position: int
    paused: bool = False  # the operator paused the queue
