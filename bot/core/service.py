"""The service adapters call: submit prompts, press buttons, cancel, read queues and settings.

It owns the job lifecycle. Every transition is written to the store before anyone is told, and
generation and delivery are separate states, so after a crash ``start()`` re-queues interrupted
generations and re-delivers stored results: every accepted job gets one final answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot.core import texts
from bot.core.domain import (
    Action,
    AdminEvent,
    Button,
    GenerationRequest,
    ImageRef,
    Job,
    JobResult,
    JobState,
    Owner,
    Reference,
    Request,
    ResultImage,
    Submitted,
    Upload,
    UpscaleRequest,
    UserKey,
    UserSettings,
)
from bot.core.errors import InvalidInput
from bot.core.fairness import Slots, Throttle
from bot.core.images import PreparedImage, prepare_reference, sniff_mime
from bot.core.models_table import ModelTable
from bot.core.options import Options, normalise_ratio, resolve, split_flags
from bot.core.options import new_seed as random_seed
from bot.core.policy import Access, Defaults, Limits, Tuning
from bot.core.ports import DeliveryError, Notifier, Store
from bot.core.scheduler import Entry, Scheduler, Slot
from bot.core.upstream import (
    AuthError,
    ContentPolicyError,
    GenerateParams,
    InvalidRequestError,
    MediaRefused,
    ModerationError,
    OperatorError,
    PaymentError,
    ReferenceOwnershipError,
    RejectedError,
    RetryableError,
    SessionExpired,
    Throttled,
    Upstream,
    UpstreamError,
)

log = logging.getLogger(__name__)

DELIVERY_ATTEMPTS = 4
DELIVERY_BACKOFF = 0.5  # seconds before the 2nd attempt; ×4 each time after, at most 30
# A final answer a platform keeps refusing is tried again at each sweep, until the tries
# span this long (counted in this process: a restart tries afresh).
DELIVERY_GIVE_UP = 24 * 3600.0
# At most this many answers are being delivered at once (each holds its images in memory), and
# this many reference images decoded at once (a 50-megapixel image takes hundreds of MB).
DELIVERY_SLOTS = 8
PREPARE_SLOTS = 2
# References being downloaded (and held in memory) at once: one request per user, this many in
# all. A request waits its turn holding its place in the queue, not a download.
DOWNLOAD_SLOTS = 3
# A result the store can't take (a full disk) is kept in memory and written again, from this
# wait doubling, for this long; only then does the job fail. Its images were paid for.
STORE_BACKOFF = 0.5
STORE_GIVE_UP = 300.0
# How long an uploaded asset's id is reused. The upstream doesn't say how long it keeps assets;
# a day saves the repeat uploads that matter (the same picture, prompt after prompt) without
# trusting an id forever. A refused cached id is dropped at once anyway (see _after_refusal).
ASSET_MAX_AGE = 24 * 3600.0


# Fetches a request's reference images (an adapter's download), called when it is their turn.
Fetch = Callable[[], Awaitable[Sequence[bytes]]]


@dataclass(frozen=True)
class QueueItem:
    job: Job
    position: int


@dataclass
class _Progress:
    """What one job's retries have tried so far (in memory: a restart starts afresh)."""

    retries: int = 0
    first_retry_at: float = 0.0
    moderated: int = 0
    switched_model: bool = False
    used_cache: bool = False
    reuploaded: bool = False


@dataclass
class _Held:
    """What a user's submissions still being checked hold, so that concurrent ones can't slip
    past the queue cap or the daily quota between a check and the stored job."""

    jobs: int = 0
    images: int = 0


class Admission:
    """A request that passed every check that needs no image, holding its place in the user's
    queue and day: the adapter acknowledges the user, then ``submit`` fetches the references
    (bounded per user and overall) and stores the job. Valid inside ``async with`` only."""

    def __init__(self, service: Service, owner: Owner, request: Request, uploads: int = 0):
        self._service = service
        self._owner = owner
        self._request = request
        self._uploads = uploads

    async def submit(
        self, *, fetch: Fetch | None = None, route: Mapping[str, str] | None = None
    ) -> Submitted:
        """Store and queue the job; ``route`` adds the adapter's ids (its status message)."""
        owner = replace(self._owner, route=route) if route is not None else self._owner
        request, blobs = self._request, {}
        if self._uploads:
            if fetch is None:
                raise ValueError("this request needs its reference images fetched")
            prepared = await self._service._fetch(owner.user, fetch, self._uploads)
            uploads = tuple(Upload(p.sha256, p.mime) for p in prepared)
            assert isinstance(request, GenerationRequest)
            request = replace(request, references=(*request.references, *uploads))
            blobs = {p.sha256: p.data for p in prepared}
        return await self._service._enqueue(owner, request, blobs)


class _Fail(Exception):
    """End the job with this message for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Service:
    """The core. ``async with Service(...)`` starts it; adapters ``register`` before that."""

    def __init__(
        self,
        store: Store,
        upstream: Upstream,
        *,
        models: ModelTable,
        limits: Limits | None = None,
        tuning: Tuning | None = None,
        defaults: Defaults | None = None,
        access: Access | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.upstream = upstream
        self.models = models
        self.limits = limits or Limits()
        self.tuning = tuning or Tuning()
        self.defaults = defaults or Defaults()
        self.access = access or Access()
        self._clock = clock
        self._rng = rng or random.Random()
        self._notifiers: dict[str, Notifier] = {}
        self._sched = Scheduler(
            running_per_user=self.limits.running_per_user,
            floor=self.tuning.account_min_concurrency,
            ceiling=self.tuning.account_max_concurrency,
        )
        self._progress: dict[int, _Progress] = {}
        self._incidents: set[tuple[str, str | None]] = set()
        self._listed: set[str] = set()  # accounts the last GET /accounts named (and we use)
        self._down_since: dict[str, float] = {}
        self._intake: dict[UserKey, _Held] = {}
        self._delivering: set[int] = set()
        self._failing_since: dict[int, float] = {}  # first failed delivery round, by job
        self._store_alerted = False
        self._presses = Throttle(self.limits.press_burst, self.limits.press_interval_seconds, clock)
        self._downloads = Slots(per_key=1, overall=DOWNLOAD_SLOTS)
        self._delivery_slots = asyncio.Semaphore(DELIVERY_SLOTS)
        self._prepare_slots = asyncio.Semaphore(PREPARE_SLOTS)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def register(self, platform: str, notifier: Notifier) -> None:
        self._notifiers[platform] = notifier

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Learn the accounts, resume what a previous run left, and start dispatching."""
        await self._refresh_accounts()
        known = {e.job_id for e in self._sched.entries()}  # submitted before start()
        for job in await self.store.unfinished_jobs():
            if job.state is JobState.RUNNING:
                await self.store.requeue(job.id)
            if job.id not in known:
                self._sched.add(await self._entry(job.id, job.owner.user, job.request))
        await self._sweep_stranded()
        await self._redeliver()
        self._spawn(self._dispatch())
        self._spawn(self._refresh_loop())

    async def aclose(self) -> None:
        """Stop at once; running jobs stay ``running`` in the store and resume on next start."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def is_admin(self, user: UserKey) -> bool:
        return str(user) in self.access.admins

    @property
    def scheduler(self) -> Scheduler:
        return self._sched

    # Commands adapters call.

    async def submit(
        self,
        owner: Owner,
        text: str,
        options: Options | None = None,
        images: Sequence[bytes] = (),
        refs: Sequence[ImageRef] = (),
    ) -> Submitted:
        """Check, store and queue a prompt; raises ``InvalidInput`` with the sentence to show."""
        references = len(images) + len(refs)
        async with self.admit(owner, text, options, references=references, refs=refs) as ticket:
            return await ticket.submit(fetch=lambda: _ready(images))

    @contextlib.asynccontextmanager
    async def admit(
        self,
        owner: Owner,
        text: str,
        options: Options | None = None,
        *,
        references: int = 0,
        refs: Sequence[ImageRef] = (),
    ) -> AsyncIterator[Admission]:
        """Check a prompt by all but its images (``references`` of them, ``refs`` included),
        before anything is downloaded; raises ``InvalidInput`` with the sentence to show."""
        self._check_allowed(owner)
        prompt, inline = split_flags(text)
        asked = inline.overridden_by(options) if options else inline
        async with self._reservation(owner.user) as held:
            settings = await self.store.user_settings(owner.user)
            resolved = resolve(
                prompt,
                asked,
                settings,
                reference_count=references,
                table=self.models,
                defaults=self.defaults,
                limits=self.limits,
                rng=self._rng,
            )
            if len({r.account for r in refs}) > 1:
                raise InvalidInput(texts.REFERENCE_NOT_USABLE)
            request = GenerationRequest(
                prompt=resolved.prompt,
                model=resolved.model.id,
                aspect_ratio=resolved.aspect_ratio,
                count=resolved.count,
                seed=resolved.seed,
                references=tuple(refs),
            )
            self._check_runnable(owner.user, request)
            await self._reserve_images(owner.user, held, resolved.count)
            yield Admission(self, owner, request, uploads=references - len(refs))

    async def press(self, owner: Owner, button: Button, prompt: str | None = None) -> Submitted:
        """A button on a result: upscale, reroll, or reuse an image with a new ``prompt``."""
        if button.action is Action.CANCEL:
            self.throttle_press(owner.user)
            job = await self.store.get_job(button.job_id)
            # Cancelling is the owner's (from anywhere) or an admin's; in the job's chat the
            # others are told so, elsewhere the job is as unknown as any other.
            if job is None or not (job.owner.user == owner.user or self._may_press(owner, job)):
                raise InvalidInput(texts.JOB_NOT_FOUND)
            await self.cancel(owner.user, button.job_id)
            return Submitted(button.job_id, 0)
        async with self.admit_press(owner, button, prompt) as ticket:
            return await ticket.submit()

    @contextlib.asynccontextmanager
    async def admit_press(
        self, owner: Owner, button: Button, prompt: str | None = None
    ) -> AsyncIterator[Admission]:
        """Check a press of U, 🎲 or R (with the new ``prompt``: the form R opened) like
        ``admit``. Without a prompt it is a click, and counts towards the presser's rate."""
        if prompt is None:
            self.throttle_press(owner.user)
        job, image = await self._pressed(owner, button)
        assert isinstance(job.request, GenerationRequest)  # _pressed refuses upscales
        if image is not None and button.action is Action.REUSE:
            # A new prompt on that image keeps its model unless the prompt names another.
            _, inline = split_flags(prompt or "")
            keep = None if inline.model else Options(model=job.request.model)
            async with self.admit(owner, prompt or "", keep, references=1, refs=[image.ref]) as t:
                yield t
            return
        self._check_allowed(owner)
        request: Request
        if image is None:
            request = replace(job.request, seed=random_seed(self._rng))
        else:
            spec = self.models.resolve(image.model)
            if spec is None or not spec.can_upscale:
                raise InvalidInput(texts.cannot_upscale(image.model, self.models))
            settings = await self.store.user_settings(owner.user)
            wanted = settings.upscale_resolution or self.defaults.upscale_resolution
            resolution = wanted if wanted in spec.upscale else spec.upscale[0]
            request = UpscaleRequest(job.id, image.index, image.ref, resolution, spec.id)
        async with self._reservation(owner.user) as held:
            self._check_runnable(owner.user, request)
            await self._reserve_images(owner.user, held, request.count)
            yield Admission(self, owner, request)

    async def pressed_job(self, owner: Owner, button: Button) -> Job:
        """The result a click on ``button`` acts on, if ``owner`` may press it there; else the
        refusal an unknown button gets. Adapters ask before they show anything of the job (R's
        form is prefilled with its prompt)."""
        self.throttle_press(owner.user)
        job, _ = await self._pressed(owner, button)
        return job

    def throttle_press(self, user: UserKey) -> None:
        """Count a press against ``user``'s rate, or refuse it: one member's hammering must not
        fill a group with answers."""
        if not self._presses.allow(user):
            raise InvalidInput(texts.SLOW_DOWN)

    async def cancel(self, user: UserKey, job_id: int) -> None:
        job = await self.store.get_job(job_id)
        if job is None:
            raise InvalidInput(texts.JOB_NOT_FOUND)
        if job.owner.user != user and not self.is_admin(user):
            raise InvalidInput(texts.NOT_YOUR_JOB)
        # Out of the scheduler first: a job it has handed out is running, whatever the store says.
        entry = self._sched.remove(job_id)
        if entry is None or not await self.store.cancel_job(job_id):
            if entry is not None:
                self._sched.add(entry, front=True)
            raise InvalidInput(texts.ALREADY_STARTED)
        self._progress.pop(job_id, None)

    async def job(self, job_id: int) -> Job | None:
        """A job as stored (adapters read a result's prompt to prefill a new one)."""
        return await self.store.get_job(job_id)

    async def queue(self, user: UserKey) -> list[QueueItem]:
        return [
            QueueItem(job, self._sched.position(job.id)) for job in await self.store.user_jobs(user)
        ]

    async def settings(self, user: UserKey) -> UserSettings:
        return await self.store.user_settings(user)

    async def update_settings(self, user: UserKey, **changes: str | int | None) -> UserSettings:
        """Validate and save some of a user's defaults; ``None`` resets one to the bot's."""
        current = await self.store.user_settings(user)
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if value is None:
                clean[key] = None
            elif key == "model":
                spec = self.models.resolve(str(value))
                if spec is None:
                    raise InvalidInput(texts.unknown_model(str(value), self.models))
                clean[key] = spec.id
            elif key == "aspect_ratio":
                ratio = normalise_ratio(str(value))
                if ratio not in self.models.all_ratios():
                    raise InvalidInput(texts.bad_ratio(str(value), self.models.all_ratios()))
                clean[key] = ratio
            elif key == "count":
                clean[key] = _count(value)
            elif key == "upscale_resolution":
                if str(value).lower() not in ("2k", "4k"):
                    raise InvalidInput(texts.bad_resolution(str(value), ("2k", "4k")))
                clean[key] = str(value).lower()
            else:
                raise ValueError(f"unknown setting {key!r}")
        updated = replace(current, **clean)
        await self.store.save_user_settings(user, updated)
        return updated

    # Intake.

    def _may_press(self, owner: Owner, job: Job) -> bool:
        """A result's buttons work in the chat it was answered in, for anyone there, and for
        admins anywhere: ids are sequential, so a press from elsewhere is a forged one."""
        return owner.chat == job.owner.chat or self.is_admin(owner.user)

    async def _pressed(self, owner: Owner, button: Button) -> tuple[Job, ResultImage | None]:
        """The finished job a result button acts on, and its image (none for 🎲)."""
        job = await self.store.get_job(button.job_id)
        if job is None or job.state is not JobState.DONE or job.is_upscale:
            raise InvalidInput(texts.JOB_NOT_FOUND)
        if not self._may_press(owner, job):
            raise InvalidInput(texts.JOB_NOT_FOUND)  # exactly as if there were no such job
        if button.action is Action.REROLL:
            return job, None
        images = await self.store.results(job.id)
        image = next((i for i in images if i.index == button.index), None)
        if image is None:
            raise InvalidInput(texts.JOB_NOT_FOUND)
        return job, image

    def _check_runnable(self, user: UserKey, request: Request) -> None:
        """Refuse now what no account will run, rather than after the user's downloads."""
        entry = Entry(job_id=0, user=user, pinned=request.pinned_account)
        if refusal := self._stranded(entry, waited=math.inf):
            raise InvalidInput(refusal)

    def _check_allowed(self, owner: Owner) -> None:
        access = self.access
        if not (access.allowed_users or access.allowed_chats) or self.is_admin(owner.user):
            return
        if str(owner.user) in access.allowed_users or owner.chat in access.allowed_chats:
            return
        raise InvalidInput(texts.NOT_ALLOWED)

    @contextlib.asynccontextmanager
    async def _reservation(self, user: UserKey) -> AsyncIterator[_Held]:
        """Hold a place in the user's queue from the first check until the job is queued."""
        cap = self.limits.queued_per_user
        total = self._intake.setdefault(user, _Held())
        if self._sched.waiting(user) + total.jobs >= cap:
            raise InvalidInput(texts.queue_full(cap))
        mine = _Held(jobs=1)
        total.jobs += 1
        try:
            yield mine
        finally:
            total.jobs -= mine.jobs
            total.images -= mine.images
            if not total.jobs:
                del self._intake[user]

    async def _reserve_images(self, user: UserKey, held: _Held, images: int) -> None:
        """Count ``images`` against the user's day, or refuse."""
        daily = self.limits.daily_images_per_user
        if not daily or self.is_admin(user):
            return
        used = await self.store.images_on(user, _today())
        total = self._intake[user]
        # No await between this check and the reservation: concurrent submissions see it.
        if used + total.images + images > daily:
            raise InvalidInput(texts.daily_quota(daily))
        total.images += images
        held.images += images

    async def _fetch(self, user: UserKey, fetch: Fetch, expected: int) -> list[PreparedImage]:
        """Fetch and check a request's images in the user's download turn."""
        async with self._downloads.hold(user):
            images = await fetch()
            if len(images) != expected:
                raise ValueError(f"fetched {len(images)} images, announced {expected}")
            return [await self._prepare(data) for data in images]

    async def _prepare(self, data: bytes) -> PreparedImage:
        async with self._prepare_slots:
            return await asyncio.to_thread(
                prepare_reference,
                data,
                max_bytes=self.limits.max_image_bytes,
                max_pixels=self.limits.max_image_pixels,
            )

    async def _enqueue(
        self, owner: Owner, request: GenerationRequest | UpscaleRequest, blobs: dict[str, bytes]
    ) -> Submitted:
        entry = await self._entry(0, owner.user, request)
        if refusal := self._stranded(entry, waited=math.inf):
            raise InvalidInput(refusal)  # it changed while the images were fetched
        job = await self.store.add_job(owner, request, blobs, day=_today())
        # Nothing awaits between storing the job and queueing it: no job is stored unqueued.
        entry.job_id = job.id
        self._sched.add(entry)
        self._wake.set()
        log.info("job %d queued for %s (%s)", job.id, owner.user, type(request).__name__)
        return Submitted(job.id, self._sched.position(job.id))

    async def _entry(self, job_id: int, user: UserKey, request: Request) -> Entry:
        preferred: set[str] = set()
        uploads = request.uploads if isinstance(request, GenerationRequest) else ()
        if uploads:
            for account in self._sched.healthy_accounts():
                cached = [
                    await self.store.cached_asset(u.sha256, account, max_age=ASSET_MAX_AGE)
                    for u in uploads
                ]
                if all(cached):
                    preferred.add(account)
        return Entry(
            job_id=job_id,
            user=user,
            pinned=request.pinned_account,
            preferred=frozenset(preferred),
        )

    # Running jobs.

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock()
            while (slot := self._sched.take(now)) is not None:
                self._spawn(self._run(slot))
            ready_at = self._sched.next_ready_at(now)
            timeout = None if ready_at is None else max(0.0, ready_at - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _run(self, slot: Slot) -> None:
        released = False

        def release(*, ok: bool = False, throttled: bool = False) -> None:
            nonlocal released
            if not released:
                released = True
                self._sched.release(slot, now=self._clock(), ok=ok, throttled=throttled)
                self._wake.set()

        job_id = slot.entry.job_id
        try:
            job = await self.store.get_job(job_id)
            if job is None or job.state.final:
                return
            # "Running" is written beside the upstream call, not before it, so the call doesn't
            # wait behind other jobs' writes; it is stored before anything else about the job
            # is written or announced.
            marking = asyncio.ensure_future(self.store.mark_running(job_id, slot.account))
            if not job.attempts:
                self._spawn(self._tell_started(job, marking))
            try:
                try:
                    images, references = await self._execute(job, slot.account)
                finally:
                    attempts = await marking
            except RetryableError as exc:
                release(throttled=isinstance(exc, Throttled) or exc.status == 503)
                await self._retry_later(job, slot, exc)
                return
            except ModerationError:
                release()
                await self._after_moderation(job, slot)
                return
            except (ReferenceOwnershipError, InvalidRequestError) as exc:
                release()
                await self._after_refusal(job, slot, exc)
                return
            except OperatorError as exc:
                release()
                await self._after_operator_error(job, slot, exc)
                return
            release(ok=True)
            if not attempts:  # ended while the call ran (it can't be cancelled then): drop it
                return
            self._progress.pop(job_id, None)
            self._close_incidents(slot.account)
            if not await self._stored(job_id, lambda: self.store.finish_job(job_id, images)):
                await self._fail(job_id, texts.NOT_SAVED)
                await self._deliver(job_id)
                return
            await self._remember_references(job, slot.account, references)
            done = replace(job, state=JobState.DONE, account=slot.account, attempts=attempts)
            # Hand over what is in memory: re-reading the bytes just written would only add I/O.
            await self._deliver(job_id, JobResult(done, tuple(images), self._buttons(done, images)))
            return
        except _Fail as failure:
            release()
            await self._fail(job_id, failure.message)
        except ContentPolicyError:
            release()
            await self._fail(job_id, texts.CONTENT_POLICY)
        except MediaRefused as exc:
            log.warning("job %d: upstream media refused: %s", job_id, exc.detail)
            release()
            await self._fail(job_id, texts.MEDIA_REFUSED)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %d failed unexpectedly", job_id)
            release()
            await self._fail(job_id, texts.INTERNAL)
        finally:
            release()
        await self._deliver(job_id)

    async def _execute(self, job: Job, account: str) -> tuple[list[ResultImage], list[str]]:
        """Run the job on ``account``: its images, and the reference ids it was sent with."""
        request = job.request
        if isinstance(request, UpscaleRequest):
            data = await self.upstream.upscale(
                request.image.media_id, request.resolution, email=account
            )
            image = ResultImage(1, request.image, None, request.model, sniff_mime(data), data)
            return [image], []
        references = [await self._media_id(ref, account, job.id) for ref in request.references]
        generation = await self.upstream.generate(
            GenerateParams(
                prompt=request.prompt,
                model=request.model,
                aspect_ratio=request.aspect_ratio,
                count=request.count,
                seed=request.seed,
                email=account,
                references=references,
            )
        )
        images = [
            ResultImage(
                index=i,
                ref=ImageRef(image.media_id, account),
                seed=image.seed if image.seed is not None else request.seed,
                model=request.model,
                mime=image.mime,
                data=image.data,
            )
            for i, image in enumerate(generation.images, start=1)
        ]
        return images, references

    async def _media_id(self, ref: Reference, account: str, job_id: int) -> str:
        """A reference's id on ``account``, uploading our copy once per account and content."""
        if isinstance(ref, ImageRef):
            return ref.media_id
        cached = await self.store.cached_asset(ref.sha256, account, max_age=ASSET_MAX_AGE)
        if cached:
            self._progress.setdefault(job_id, _Progress()).used_cache = True
            return cached
        data = await self.store.blob(ref.sha256)
        if data is None:
            raise _Fail(texts.REFERENCE_NOT_USABLE)
        try:
            media_id = await self.upstream.upload_asset(account, data, ref.mime)
        except RejectedError as exc:
            log.info("reference upload refused on %s: %s", account, exc.detail)
            raise _Fail(texts.REFERENCE_REFUSED) from exc
        await self.store.cache_asset(ref.sha256, account, media_id)
        return media_id

    async def _remember_references(self, job: Job, account: str, sent: Sequence[str]) -> None:
        """Rewrite uploads as the ids they were sent as, so 🎲 on this result needs no upload."""
        request = job.request
        if isinstance(request, GenerationRequest) and request.uploads:
            refs = tuple(ImageRef(media_id, account) for media_id in sent)
            await self.store.update_request(job.id, replace(request, references=refs))

    async def _retry_later(self, job: Job, slot: Slot, exc: RetryableError) -> None:
        progress = self._progress.setdefault(job.id, _Progress())
        now = self._clock()
        if not progress.retries:
            progress.first_retry_at = now
        progress.retries += 1
        low = self.tuning.retry_min_seconds
        high = min(self.tuning.retry_max_seconds, low * 2**progress.retries)
        delay = max(exc.retry_after or 0.0, self._rng.uniform(low, max(low, high)))
        # Past the deadline, or waiting as long as the server asks would take us past it.
        if now + delay - progress.first_retry_at > self.tuning.job_deadline_seconds:
            log.warning("job %d gave up after %d retries: %s", job.id, progress.retries, exc)
            await self._fail(
                job.id, texts.BUSY if isinstance(exc, Throttled) else texts.UNAVAILABLE
            )
            await self._deliver(job.id)
            return
        log.info(
            "job %d: %s on %s, retry in %.1fs", job.id, type(exc).__name__, slot.account, delay
        )
        await self._requeue(slot, not_before=now + delay)

    async def _after_moderation(self, job: Job, slot: Slot) -> None:
        progress = self._progress.setdefault(job.id, _Progress())
        progress.moderated += 1
        request = job.request
        if progress.moderated == 1:
            # Moderation decisions vary between attempts: the same request often passes.
            await self._requeue(slot)
            return
        fallback = self._fallback_model(request) if not progress.switched_model else None
        if fallback is not None:
            assert isinstance(request, GenerationRequest)
            progress.switched_model = True
            log.info("job %d moderated twice on %s, trying %s", job.id, request.model, fallback)
            await self.store.update_request(job.id, replace(request, model=fallback))
            await self._requeue(slot)
            return
        await self._fail(job.id, texts.MODERATED)
        await self._deliver(job.id)

    def _fallback_model(self, request: GenerationRequest | UpscaleRequest) -> str | None:
        if not self.tuning.moderation_fallback or not isinstance(request, GenerationRequest):
            return None
        spec = self.models.resolve(request.model)
        target = (
            self.models.resolve(spec.moderation_fallback)
            if spec and spec.moderation_fallback
            else None
        )
        if target is None or len(request.references) > target.max_references:
            return None
        if not target.accepts_ratio(request.aspect_ratio, with_references=bool(request.references)):
            return None
        return target.id

    async def _after_refusal(
        self, job: Job, slot: Slot, exc: ReferenceOwnershipError | InvalidRequestError
    ) -> None:
        progress = self._progress.setdefault(job.id, _Progress())
        if progress.used_cache and not progress.reuploaded:
            # The upstream may have forgotten an asset we cached the id of (or moved it to
            # another owner): refused with our cached ids, the request earns one fresh upload.
            progress.reuploaded = True
            uploads = job.request.uploads if isinstance(job.request, GenerationRequest) else ()
            await self.store.forget_assets(slot.account, [u.sha256 for u in uploads])
            await self._requeue(slot)
            return
        if isinstance(exc, ReferenceOwnershipError):
            await self._fail(job.id, texts.REFERENCE_NOT_USABLE)
        else:
            await self._fail(job.id, texts.rejected(exc.detail))
        await self._deliver(job.id)

    async def _after_operator_error(self, job: Job, slot: Slot, exc: OperatorError) -> None:
        accounts = list(self._sched.accounts) if isinstance(exc, AuthError) else [slot.account]
        for email in accounts:
            self._sched.accounts[email].healthy = False
            self._down_since.setdefault(email, self._clock())
        self._alert(exc, slot.account)
        if slot.entry.pinned is None and self._sched.healthy_accounts():
            await self._requeue(slot)
        else:
            await self._fail(job.id, texts.OPERATOR)
            await self._deliver(job.id)
        await self._sweep_stranded()

    async def _requeue(self, slot: Slot, *, not_before: float = 0.0) -> None:
        await self.store.requeue(slot.entry.job_id)
        slot.entry.not_before = not_before
        self._sched.add(slot.entry, front=True)
        self._wake.set()

    async def _sweep_stranded(self) -> None:
        """Fail the queued jobs no account will run, so that none waits forever."""
        if not self._listed and not self._incidents:
            return  # the accounts aren't known yet (the upstream didn't answer): wait
        for entry in self._sched.entries():
            message = self._stranded(entry)
            # The entry may have been cancelled or started while an earlier one was failed.
            if message is None or self._sched.remove(entry.job_id) is None:
                continue
            await self._fail(entry.job_id, message)
            self._spawn(self._deliver(entry.job_id))

    def _stranded(self, entry: Entry, *, waited: float | None = None) -> str | None:
        """Why no account will run this job, or None if one will (or may yet).

        An account that is merely down is given ``job_deadline_seconds`` to come back (a new
        job, ``waited=inf``, is told at once); operator problems and accounts no longer used
        won't mend by waiting.
        """
        healthy = self._sched.healthy_accounts()
        account = entry.pinned
        if account is None:
            if healthy or not self._sched.accounts:
                return None
            down = min(self._clock() - since for since in self._down_since.values())
        elif account in healthy:
            return None
        elif self._listed and account not in self._listed:
            return texts.REFERENCE_NOT_USABLE  # its references live on an account we don't use
        else:
            down = self._clock() - self._down_since.get(account, self._clock())
        if any(key[1] is None or key[1] == account or account is None for key in self._incidents):
            return texts.OPERATOR
        if (down if waited is None else waited) > self.tuning.job_deadline_seconds:
            return texts.UNAVAILABLE
        return None

    async def _fail(self, job_id: int, message: str) -> None:
        self._progress.pop(job_id, None)
        fail = functools.partial(self.store.fail_job, job_id, message)
        if await self._stored(job_id, fail, within=15 * STORE_BACKOFF):
            return
        # Not even the failure can be written: say it all the same. The store still has the job
        # running, so a restart runs it again: twice is better than never.
        job = await self.store.get_job(job_id)
        notifier = self._notifiers.get(job.owner.platform) if job else None
        if job is not None and notifier is not None:
            with contextlib.suppress(Exception):
                await notifier.job_failed(job, message)

    async def _stored(
        self, job_id: int, write: Callable[[], Awaitable[None]], *, within: float | None = None
    ) -> bool:
        """Write, and write again while the store refuses (a full disk), for ``within`` seconds
        (``STORE_GIVE_UP`` unless told); False if it never took it."""
        deadline = self._clock() + (STORE_GIVE_UP if within is None else within)
        delay = STORE_BACKOFF
        while True:
            try:
                await write()
            except Exception as exc:
                self._store_trouble(exc)
                if self._clock() + delay > deadline:
                    log.error("job %d: the store keeps refusing a write: %s", job_id, exc)
                    return False
                log.warning(
                    "job %d: the store refused a write (%s); again in %.1fs", job_id, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
            else:
                self._store_alerted = False
                return True

    # Telling people.

    async def _tell_started(self, job: Job, marked: asyncio.Future[int]) -> None:
        notifier = self._notifiers.get(job.owner.platform)
        try:
            attempts = await asyncio.shield(marked)
            if notifier is not None and attempts:
                await notifier.job_started(job)
        except Exception as exc:  # progress is a courtesy; the final answer is what counts
            log.info("job %d: progress update failed: %s", job.id, exc)

    async def _deliver(self, job_id: int, result: JobResult | None = None) -> None:
        """Give the job's final answer, retrying platform faults; then record it as given.

        A platform that keeps failing leaves the job undelivered, images kept: the periodic
        sweep (``_redeliver``) tries again, until its tries span ``DELIVERY_GIVE_UP``.
        """
        if job_id in self._delivering:
            return
        self._delivering.add(job_id)
        try:
            for attempt in range(DELIVERY_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(min(30.0, DELIVERY_BACKOFF * 4 ** (attempt - 1)))
                async with self._delivery_slots:
                    outcome = await self._deliver_once(job_id, result)
                if outcome is not None:
                    if outcome:
                        await self.store.mark_delivered(job_id)
                        self._failing_since.pop(job_id, None)
                    return
            self._failing_since.setdefault(job_id, self._clock())
            log.warning("job %d: delivery keeps failing; the next sweep tries again", job_id)
        finally:
            self._delivering.discard(job_id)

    async def _deliver_once(self, job_id: int, result: JobResult | None) -> bool | None:
        """True: delivered (or never will be); False: nothing to do; None: try again later."""
        job = result.job if result else await self.store.get_job(job_id)
        if job is None or job.delivered or not job.state.final:
            return False
        notifier = self._notifiers.get(job.owner.platform)
        if notifier is None:
            log.warning("job %d waits for the %s front end to deliver", job_id, job.owner.platform)
            return False
        try:
            if job.state is JobState.DONE:
                if result is None:
                    images = await self.store.results(job_id)
                    result = JobResult(job, tuple(images), self._buttons(job, images))
                await notifier.job_finished(result)
            elif job.state is JobState.FAILED:
                await notifier.job_failed(job, job.error or texts.INTERNAL)
        except DeliveryError as exc:
            if exc.permanent:
                log.warning("job %d is undeliverable: %s", job_id, exc)
                return True
            log.info("job %d delivery failed (%s), retrying", job_id, exc)
            return None
        except Exception:
            log.exception("job %d delivery failed, retrying", job_id)
            return None
        return True

    async def _redeliver(self) -> None:
        """Deliver what a previous run or a failing platform left undelivered."""
        for job in await self.store.undelivered_jobs():
            # Given up after tries, never by age alone: an answer that waited through a long
            # outage (of the platform, or of the bot) gets its tries all the same.
            failing_since = self._failing_since.get(job.id)
            if failing_since is not None and self._clock() - failing_since > DELIVERY_GIVE_UP:
                log.error("job %d: giving up on delivering its answer", job.id)
                await self.store.mark_delivered(job.id)
                self._failing_since.pop(job.id, None)
            elif job.id not in self._delivering:
                self._spawn(self._deliver(job.id))

    def _buttons(self, job: Job, images: Sequence[ResultImage]) -> tuple[tuple[Button, ...], ...]:
        if job.is_upscale or not images:
            return ()
        rows: list[tuple[Button, ...]] = []
        spec = self.models.resolve(images[0].model)
        if spec is not None and spec.can_upscale:
            rows.append(tuple(Button(Action.UPSCALE, job.id, i.index) for i in images))
        rows.append(
            (
                *(Button(Action.REUSE, job.id, i.index) for i in images),
                Button(Action.REROLL, job.id),
            )
        )
        return tuple(rows)

    def _alert(self, exc: OperatorError, account: str) -> None:
        kind = {
            AuthError: "auth",
            PaymentError: "payment",
            SessionExpired: "session",
        }.get(type(exc), "account_missing")
        key = (kind, None if kind == "auth" else account)
        if key in self._incidents:
            return
        self._incidents.add(key)
        event = AdminEvent(kind, key[1], texts.ADMIN_REASONS[kind])
        log.error("operator problem: %s (%s)", event.message, exc.detail)
        self._tell_admins(event)

    def _store_trouble(self, exc: Exception) -> None:
        """Tell the admins, once until a write succeeds again, that the store refuses writes."""
        if not self._store_alerted:
            self._store_alerted = True
            log.error("the store refuses writes: %s", exc)
            self._tell_admins(AdminEvent("store", None, texts.ADMIN_REASONS["store"]))

    def _tell_admins(self, event: AdminEvent) -> None:
        text = texts.admin_alert(event)
        for platform, notifier in self._notifiers.items():
            admins = [
                a.split(":", 1)[1] for a in self.access.admins if a.startswith(f"{platform}:")
            ]
            if admins:
                self._spawn(self._send_alert(notifier, admins, text))

    async def _send_alert(self, notifier: Notifier, admins: list[str], text: str) -> None:
        try:
            await notifier.admin_alert(admins, text)
        except Exception:
            log.exception("could not alert admins")

    def _close_incidents(self, account: str) -> None:
        if self._incidents:
            self._incidents = {k for k in self._incidents if k[1] not in (None, account)}

    # Accounts.

    async def _refresh_accounts(self) -> None:
        """Re-read the accounts and their health (an account out for an operator problem gets
        back in when the API says it is fine: the next job on it is the probe)."""
        try:
            listed = await self.upstream.list_accounts()
        except OperatorError as exc:
            for account in self._sched.accounts.values():
                account.healthy = False
            self._alert(exc, "")
            return
        except UpstreamError as exc:
            log.warning("could not list accounts (%s); keeping what we knew", exc)
            return
        wanted = self.access.accounts
        health = {a.email: a.healthy for a in listed if not wanted or a.email in wanted}
        for email in wanted:
            if email not in health:
                log.warning("USEAPI_ACCOUNTS names %s, which the API does not list", email)
        self._listed = set(health)
        self._sched.set_accounts(health)
        now = self._clock()
        for email, account in self._sched.accounts.items():
            if account.healthy:
                self._down_since.pop(email, None)
            else:
                self._down_since.setdefault(email, now)
        log.info("accounts: %d healthy of %d", len(self._sched.healthy_accounts()), len(health))
        self._wake.set()

    async def _refresh_loop(self) -> None:
        while True:
            healthy = bool(self._sched.healthy_accounts())
            await asyncio.sleep(self.tuning.accounts_refresh_seconds if healthy else 30.0)
            try:
                await self._refresh_accounts()
                await self._sweep_stranded()
                await self._redeliver()
            except Exception:  # one bad round must not end the refreshing for good
                log.exception("account refresh failed")

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # A failed task's exception is otherwise reported only when it is garbage-collected.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background task %s failed", task.get_coro(), exc_info=exc)


async def _ready(images: Sequence[bytes]) -> Sequence[bytes]:
    return images


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _count(value: str | int) -> int:
    try:
        count = int(str(value).strip())
    except ValueError:
        raise InvalidInput(texts.bad_count(value)) from None
    if not 1 <= count <= 4:
        raise InvalidInput(texts.bad_count(value))
    return count
