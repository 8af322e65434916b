"""What the core needs from the outside: a store (with the operator's ``Controls`` and what it
remembers of each upstream account, ``AccountMemory``, in it) and, per platform, a way to tell
users; the one thing a front end keeps in the store itself, ``Parking``; and, where several
processes share a store, which of them dispatches (``Leadership``).

``bot.store``'s ``SqliteStore`` and ``PostgresStore`` implement ``Store`` and ``Parking``, and
``bot.store.postgres_lead.PostgresLeader`` implements ``Leadership``; each chat front end
implements ``Notifier``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.core.account_memory import AccountMemory
from bot.core.alerts import HeldAlert
from bot.core.character_records import Character, CharacterImage
from bot.core.controls import Controls
from bot.core.domain import Execution, Job, JobResult, Lineage, Request, ResultImage, UserSettings
from bot.core.monitoring import Outcome
from bot.core.people import Identity, Owner, UserKey
from bot.core.presenters import JobStatus

# Where a platform now holds a result's images, by image index: a reference only that
# platform's front end reads (a Telegram file id, a Discord attachment URL), to post the image
# again without its bytes (``/show``), or to fetch them for another platform.
Posted = Mapping[int, str]


class DeliveryError(Exception):
    """A notifier could not deliver. ``permanent`` means retrying is pointless (chat gone)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Caps:
    """What a person may have at most (their linked accounts together), checked where the job
    is stored (``Store.add_job``), so that processes sharing the store can't pass a cap
    together."""

    queued: int  # jobs waiting
    images: int | None  # images asked for on the day; None: no quota


class CapReached(Exception):
    """``Store.add_job`` refused: the user's queue is full (``queued``), else their day is."""

    def __init__(self, *, queued: bool) -> None:
        super().__init__("the queue is full" if queued else "the day's images are used up")
        self.queued = queued


class Notifier(Protocol):
    """How the core reports back to one platform, each call inside ``i18n.reading`` the
    reader's language. Each call may raise ``DeliveryError``."""

    async def job_progress(self, job: Job, status: JobStatus) -> None:
        """Show ``status`` on the job's status message. A report may be cancelled when the
        job's answer comes: the front end must not let one already sent land after it."""
        ...

    async def job_finished(self, result: JobResult) -> Posted:
        """Post the answer; where its images now are on this platform."""

    async def job_failed(self, job: Job, message: str) -> None: ...

    async def job_ended_elsewhere(self, job: Job) -> None:
        """Another process told the job's end (its answer, or its cancel to whoever cancelled
        it): what still shows the job here as waiting goes (its line on a board, its live
        status)."""

    async def admin_alert(self, admin_id: str, text: str) -> None:
        """Tell one admin (a ``DeliveryError`` if they can't be reached: it is kept for them)."""

    async def fetch_image(self, ref: str) -> bytes:
        """The bytes of an image this platform holds (``Posted``), for another platform."""


class Store(Controls, AccountMemory, Protocol):
    """Durable state. Every method is one transaction; states are written before announced."""

    async def add_job(
        self,
        owner: Owner,
        request: Request,
        blobs: Mapping[str, bytes],
        *,
        day: str,
        caps: Caps | None = None,
        parent: Lineage | None = None,
        held: bool = False,
    ) -> Job:
        """Store a queued job with a new public id (and the bytes of its uploads, and the result
        it was made from); charge its images to the user's ``day`` (given back if it fails or is
        cancelled). With ``caps``, first check them in the
        same transaction: ``CapReached`` if one is reached. ``held``: the leader, if another
        process, waits for ``told`` before it starts the job."""
        ...

    async def told(self, job_id: int) -> None:
        """A job stored ``held`` may start: its owner was told its place (for a leader in
        another process; this one's scheduler is told directly)."""
        ...

    async def get_job(self, job_id: int) -> Job | None: ...

    async def job_by_public_id(self, public_id: str) -> Job | None: ...

    async def history(self, users: Sequence[UserKey], *, offset: int, limit: int) -> list[Job]:
        """The jobs of any of ``users``, in every state, newest first."""
        ...

    async def add_shown(self, job_id: int, chat: str) -> None:
        """Remember that /show posted the job in ``chat`` (``platform:id``)."""
        ...

    async def shown_in(self, job_id: int, chat: str) -> bool: ...

    async def save_posted(self, job_id: int, platform: str, refs: Posted) -> None:
        """Where ``platform`` holds the job's images now (the images kept only)."""
        ...

    async def posted(self, job_id: int) -> dict[int, dict[str, str]]:
        """Where each of the job's images is held, by index, then by platform."""
        ...

    async def unfinished_jobs(self) -> list[Job]:
        """Queued and running jobs, oldest first (what a restart must resume)."""
        ...

    async def undelivered_jobs(self) -> list[Job]:
        """Finished jobs whose final answer has not been delivered yet."""
        ...

    async def user_jobs(self, user: UserKey) -> list[Job]:
        """A user's queued and running jobs, oldest first."""
        ...

    async def mark_running(self, job_id: int, account: str) -> int:
        """Set running on ``account``; the new attempt count, or 0 if the job had ended."""
        ...

    async def requeue(self, job_id: int) -> None: ...

    async def update_request(self, job_id: int, request: Request) -> None: ...

    async def save_execution(self, job_id: int, execution: Execution | None) -> None:
        """Keep what an asynchronous provider was sent (``Job.execution``), before waiting."""
        ...

    async def finish_job(self, job_id: int, images: Sequence[ResultImage]) -> bool:
        """Store the results (with their bytes) and mark the job done, atomically; False if the
        job had ended meanwhile (cancelled while it ran)."""
        ...

    async def fail_job(self, job_id: int, message: str, outcome: Outcome = Outcome.FAILED) -> bool:
        """End an open job with ``message`` for its owner, and give its images back; False if
        it had ended already."""
        ...

    async def cancel_job(self, job_id: int, reason: str | None = None) -> bool:
        """Cancel a queued or running job (a queued one gives its images back: a running one is
        made all the same); False if it had ended. Without a ``reason`` its owner cancelled it
        and has seen so (no answer is due); with one (an admin's), that is the job's answer,
        still to deliver."""
        ...

    async def upscales_of(self, source_job: int) -> list[Job]:
        """The upscale jobs of ``source_job``'s images, in any state, oldest first."""
        ...

    async def mark_delivered(self, job_id: int) -> None:
        """Record the final answer as given, and drop image bytes no button needs: those of
        images with a handle, and the pictures a job no longer sends."""
        ...

    async def results(self, job_id: int) -> list[ResultImage]: ...

    async def blob(self, sha256: str) -> bytes | None: ...

    async def user_settings(self, user: UserKey) -> UserSettings: ...

    async def save_user_settings(self, user: UserKey, settings: UserSettings) -> None: ...

    async def images_on(self, user: UserKey, day: str) -> int:
        """Images the user asked for on ``day`` (``YYYY-MM-DD``, UTC), net of those given back."""
        ...

    async def probe_write(self) -> None:
        """Write and roll back; raises with a sentence saying what to do if the store can't."""
        ...

    async def hold_alert(self, admin: UserKey, text: str) -> None:
        """Keep an alert ``admin`` could not be given, until they can."""
        ...

    async def take_alerts(self, admin: UserKey) -> list[str]:
        """Remove and return the alerts kept for ``admin``, oldest first."""
        ...

    async def held_alerts(self) -> list[HeldAlert]:
        """Every alert kept for an admin, oldest first."""
        ...

    async def add_character(
        self,
        owner: UserKey,
        name: str,
        account: str,
        handle: str,
        images: Sequence[CharacterImage],
    ) -> Character | None:
        """Keep a new character with its pictures; None if ``owner`` has one of that name
        (names compare by ``name_key``)."""

    async def characters(self, owner: UserKey) -> list[Character]:
        """``owner``'s characters by name, their images without the bytes."""

    async def character(self, character_id: int) -> Character | None: ...

    async def shared_characters(self, place: str) -> list[Character]:
        """The characters shared in ``place`` (``Owner.place``), by name."""

    async def share_character(self, place: str, character_id: int, name: str) -> bool:
        """Share a character in ``place`` under ``name``; False if a shared one has it there."""

    async def unshare_character(self, place: str, character_id: int) -> bool: ...

    async def character_images(self, character_id: int) -> list[CharacterImage]:
        """A character's pictures, with their bytes."""

    async def move_character(self, character_id: int, account: str, handle: str) -> None:
        """Made again on ``account`` as ``handle``; its old handle joins ``character_deletions``."""

    async def delete_character(self, owner: UserKey, character_id: int) -> bool:
        """Delete ``owner``'s character and its pictures (False: no such one), and keep its
        handle (same transaction) until ``character_deleted``: its upstream copy is gone."""

    async def character_deletions(self) -> list[tuple[str, str]]:
        """The (handle, account) of deleted characters whose upstream copy is still there."""

    async def character_deleted(self, handle: str) -> None: ...

    async def language(self, user: UserKey) -> str | None:
        """The language ``user`` reads (a code of ``i18n.LANGUAGES``), if known."""

    async def save_language(self, user: UserKey, code: str) -> None: ...

    async def identity(self, user: UserKey) -> Identity:
        """The person ``user`` is: the users /link joined to it (itself alone, unlinked)."""
        ...

    async def link(self, first: UserKey, second: UserKey) -> bool:
        """Join two users as one person (under ``first``); False if either is linked."""
        ...

    async def unlink(self, user: UserKey) -> list[UserKey]:
        """Part the users joined with ``user``; those parted."""
        ...

    async def add_link_code(self, user: UserKey, code_hash: str, *, ttl: float) -> None:
        """A code for ``user`` (its hash), valid ``ttl`` seconds; their earlier ones go."""
        ...

    async def take_link_code(self, code_hash: str) -> UserKey | None:
        """Use a code up: whose it was, if it was still valid."""
        ...

    async def link_tries(self, user: UserKey, *, within: float) -> int:
        """Wrong codes ``user`` sent in the last ``within`` seconds."""
        ...

    async def add_link_try(self, user: UserKey, *, within: float) -> None:
        """Count a wrong code (and forget those older than ``within`` seconds)."""
        ...


class Parking(Protocol):
    """Values a front end parks in the store to find again after a restart (album items, the
    prompt an R button asked for), by kind and key. Every method is one transaction."""

    async def add_pending(self, kind: str, key: str, value: str) -> None: ...

    async def take_pending(self, kind: str, key: str) -> list[str]:
        """Remove and return the values parked under ``key``, oldest first."""
        ...

    async def peek_pending(self, kind: str, key: str) -> list[str]:
        """The values parked under ``key``, oldest first, left in place."""
        ...

    async def move_pending(self, kind: str, key: str, to_kind: str) -> list[str]:
        """Re-park the values under ``key`` as ``to_kind``, at once; return them, oldest first
        (a claim that leaves them in the store until the claimer is done)."""
        ...

    async def pending_keys(self, kind: str, older_than: float) -> list[str]:
        """Keys with a value parked more than ``older_than`` seconds ago."""
        ...


class LeaseLost(Exception):
    """This process stopped leading: its lease ran out, another process may lead now."""

    def __str__(self) -> str:
        return f"this process lost the lead ({super().__str__()}); start it again"


class Leadership(Protocol):
    """Which one of the processes sharing a store dispatches: the leader, under a lease that it
    renews and that ends with it. The others accept jobs and wait to take over."""

    async def try_lead(self) -> bool:
        """Lead now if no live process does; True if this process leads."""
        ...

    async def lead(self) -> None:
        """Wait until this process leads."""
        ...

    async def hold(
        self,
        added: Callable[[int, bool], None],
        ended: Callable[[int], None],
        told: Callable[[int], None],
    ) -> None:
        """Renew the lease until cancelled, calling ``added`` with the id of each job another
        process stores (and whether it was stored ``held``), ``told`` with each held one whose
        place was told, ``ended`` with each it cancels; raises ``LeaseLost`` when the lease is
        gone."""
        ...

    async def follow(self, ended: Callable[[int], None]) -> None:
        """Until cancelled (while another process leads), call ``ended`` with the id of each
        job whose end another process told: answered, or cancelled."""
        ...

    def holds(self) -> bool:
        """Whether the lease is surely still this process's (renewed recently enough, by its
        own clock: after a pause it may have run out before ``hold`` can tell)."""
        ...
