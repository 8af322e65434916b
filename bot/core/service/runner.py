"""Running jobs: the dispatch loop hands each job its turn, road and unit (``bot.core.scheduler``),
one attempt runs it there, and an attempt that raised is handed to ``endings`` (what follows).

"Running" is stored beside the upstream call and the result before anyone is told, so after a
crash the next leader re-queues interrupted generations (``leadership.Lead``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from bot.core import texts
from bot.core.context import current_job
from bot.core.domain import GenerationRequest, Job, JobState, Request, ResultImage
from bot.core.errors import InvalidInput
from bot.core.models_table import ModelTable
from bot.core.monitoring import Outcome, Recorder
from bot.core.people import UserKey
from bot.core.policy import Tuning
from bot.core.ports import Store
from bot.core.presenters import JobStatus
from bot.core.providers import Rendering
from bot.core.scheduler import Entry, Scheduler, Slot
from bot.core.service.accounts import Accounts
from bot.core.service.character_making import Making
from bot.core.service.delivery import Delivery, result_of
from bot.core.service.endings import Endings
from bot.core.service.identities import Identities
from bot.core.service.progress import Progress
from bot.core.service.references import References
from bot.core.service.render import Prepared, Renderer
from bot.core.service.retries import Tries, over_capacity
from bot.core.service.roads import Roads
from bot.core.service.tasks import Tasks
from bot.core.upstream import RetryableError

log = logging.getLogger(__name__)


@dataclass
class _Made:
    """What an attempt that came back with images made, its pictures not yet fetched."""

    prepared: Prepared  # the request as the road took it
    rendering: Rendering
    attempts: int  # 0: the job ended while the call ran


@dataclass
class _Held:
    ok: bool = False
    throttled: bool = False


class Runner:
    def __init__(
        self,
        store: Store,
        roads: Roads,
        scheduler: Scheduler,
        *,
        models: ModelTable,
        tuning: Tuning,
        clock: Callable[[], float],
        rng: random.Random,
        accounts: Accounts,
        delivery: Delivery,
        progress: Progress,
        tasks: Tasks,
        wake: asyncio.Event,
        recorder: Recorder,
        making: Making,
    ) -> None:
        self._references = References(store, scheduler, roads.links)
        self._renderer = Renderer(store, roads, models, self._references, making)
        self._identities = Identities(store)
        self._store = store
        self._roads = roads
        self._scheduler = scheduler
        self._models = models
        self._clock = clock
        self._accounts = accounts
        self._delivery = delivery
        self._progress = progress
        self._tasks = tasks
        self._wake = wake
        self._recorder = recorder
        self._tries: dict[int, Tries] = {}
        self._endings = Endings(
            store, roads, scheduler, models=models, tuning=tuning, clock=clock, rng=rng,
            accounts=accounts, delivery=delivery, progress=progress,
            references=self._references, wake=wake, tries=self._tries,
            sweep_stranded=self.sweep_stranded,
        )  # fmt: skip
        self.leads: Callable[[], bool] = lambda: False  # only the leader runs (``Lead``)

    async def entry(self, job_id: int, user: UserKey, request: Request) -> Entry:
        """The job as the scheduler sees it: its person (caps count every account they linked),
        the roads that can serve it, in order, the unit its references pin it to (its characters'
        home), and those that hold all its uploads already."""
        person = (await self._identities.of(user)).key
        preferred = await self._references.preferred(request)
        routes = self._roads.routes(request, self._models)
        home = request.home_account if isinstance(request, GenerationRequest) else None
        return Entry(
            job_id,
            person,
            pinned=request.pinned_account,
            preferred=preferred,
            routes=routes,
            home=home,
        )

    def queue(self, entry: Entry, job: Job) -> int:
        """Queue the stored ``job`` if this process leads; its place (0: the leader adopts it)."""
        if not self.leads():
            return 0
        self._scheduler.add(entry)
        self._wake.set()
        position = self._scheduler.position(job.id)
        paused = self._scheduler.paused
        self._progress.waiting(job, JobStatus(job.is_upscale, position, paused=paused))
        return position

    def answer_in(self, entry: Entry, job: Job, position: int) -> float | None:
        """Seconds until the job queued at ``position`` is likely answered: its kind's recent
        runs, once for each round of calls before it starts and once for its own (None: not
        known, or not while this process doesn't run it or the queue is paused)."""
        typical = self._progress.durations.typical(job)
        rounds = self._scheduler.rounds_before(entry, position) if position > 0 else None
        return None if typical is None or rounds is None else typical * (rounds + 1)

    def adopt(self, entry: Entry, job: Job, *, until_told: bool = False) -> None:
        """Queue a job a previous run or another process stored, whose status message says
        who knows what; ``until_told``: it waits for ``told``."""
        if self.leads():
            if until_told:
                entry.not_before = math.inf
            self._scheduler.add(entry)
            self._wake.set()
            self._progress.waiting(job, None)

    def told(self, job_id: int) -> None:
        """A job queued ``until_told`` may start: here, or where the leader holds it (the store
        tells it)."""
        if self.leads():
            self._scheduler.told(job_id)
            self._wake.set()
        else:
            self._tasks.spawn(self._store.told(job_id))

    def drop_cancelled(self, job_id: int) -> None:
        self._scheduler.remove(job_id)
        self._tries.pop(job_id, None)
        self._progress.done(job_id)

    def queued(self) -> set[int]:
        return {entry.job_id for entry in self._scheduler.entries()}

    async def cancel(self, job_id: int, reason: str | None = None) -> str:
        """End a waiting or running job (a running call can't be stopped: what it makes is thrown
        away, see ``_succeeded``); the sentence saying so. Any process may cancel: the store
        decides, and the process running the job reads it there. ``reason``: what the job's owner
        is told where it was asked (an admin cancelled it, or they did on another platform)."""
        entry = self._scheduler.remove(job_id)
        job = await self._store.get_job(job_id)
        if job is None or not await self._store.cancel_job(job_id, reason):
            if entry is not None:
                self._scheduler.add(entry, front=True)
            raise InvalidInput(texts.ALREADY_FINISHED)
        self.drop_cancelled(job_id)
        self._recorder.job_ended(Outcome.CANCELLED)
        if reason is not None:
            self._tasks.spawn(self._delivery.deliver(job_id))
        return texts.CANCELLED_RUNNING if job.state is JobState.RUNNING else texts.CANCELLED

    async def sweep_stranded(self) -> None:
        """Fail the queued jobs no account will run, so that none waits forever."""
        if not self._accounts.known:
            return  # the accounts aren't known yet (the upstream didn't answer): wait
        for entry in self._scheduler.entries():
            stranded = self._accounts.stranded(entry)
            # The entry may have been cancelled or started while an earlier one was failed.
            if stranded is None or self._scheduler.remove(entry.job_id) is None:
                continue
            self._tries.pop(entry.job_id, None)
            await self._delivery.record_failure(entry.job_id, stranded.message, stranded.outcome)
            self._tasks.spawn(self._delivery.deliver(entry.job_id))

    # Running.

    async def dispatch(self) -> None:
        """Start every job that may start, then sleep until something changes."""
        while True:
            self._wake.clear()
            now = self._clock()
            while (slot := self._scheduler.take(now)) is not None:
                self._tasks.spawn(self._run(slot))
            ready_at = self._scheduler.next_ready_at(now)
            timeout = None if ready_at is None else max(0.0, ready_at - now)
            # Not asyncio.wait_for: on Python 3.11 it may swallow a cancellation (gh-86296).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _run(self, slot: Slot) -> None:
        """One attempt of a job on its slot's account, its pictures fetched once the slot is
        given back (a download uses the upstream's storage, not its generation capacity), then
        what its ending calls for. A crash while fetching leaves the job "running": the next
        leader runs it again, as one that crashed during the call (``leadership.Lead``)."""
        current_job.set(slot.entry.job_id)  # this task's log lines are about this job
        job: Job | None = None
        try:
            with self._holding(slot) as held:
                job = await self._store.get_job(slot.entry.job_id)
                if job is None or job.state.final:
                    return
                made = await self._attempt(job, slot)
                held.ok = True
            images = await self._renderer.fetch(job, slot, made.prepared, made.rendering)
            await self._succeeded(job, slot, made, images)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._ended(slot.entry.job_id, job, slot, exc)

    @contextlib.contextmanager
    def _holding(self, slot: Slot) -> Iterator[_Held]:
        """The slot, given back the moment the upstream is done with it (whatever happened),
        with what the attempt says about the account's capacity."""
        held = _Held()
        try:
            yield held
        except RetryableError as exc:
            held.throttled = over_capacity(exc)
            raise
        finally:
            self._scheduler.release(slot, now=self._clock(), ok=held.ok, throttled=held.throttled)
            self._accounts.learned.changed()
            self._wake.set()

    async def _attempt(self, job: Job, slot: Slot) -> _Made:
        # "Running" is written beside the upstream call, not before it, so the call doesn't
        # wait behind other jobs' writes; it is stored before anything else about the job is
        # written or announced.
        marking = asyncio.ensure_future(self._store.mark_running(job.id, slot.account))
        self._tasks.spawn(self._progress.started(job.id, slot.sent_at, marking))
        try:
            prepared = await self._renderer.prepare(job, slot)
            if prepared.used_cache:
                self._tries.setdefault(job.id, Tries()).used_cache = True
            rendering = await self._renderer.render(job, slot, prepared)
        finally:
            attempts = await marking
        return _Made(prepared, rendering, attempts)

    async def _succeeded(
        self, job: Job, slot: Slot, made: _Made, images: list[ResultImage]
    ) -> None:
        if not self.leads():
            return  # the next leader runs it again: this process must not store it as well
        self._progress.durations.note(job, self._clock() - slot.sent_at)
        self._tries.pop(job.id, None)
        self._accounts.close_incidents(slot.account, slot.sent_at)
        finished: list[bool] = []

        async def finish() -> None:
            finished.append(await self._store.finish_job(job.id, images))

        if made.attempts and not await self._delivery.stored(job.id, finish):
            await self._delivery.fail(job.id, texts.NOT_SAVED)
            return
        if not made.attempts or not finished[-1]:
            log.info("job %d was cancelled while it ran: its images are thrown away", job.id)
            return
        self._recorder.job_ended(Outcome.DONE)
        await self._references.remember(job, slot.account, slot.provider, made.prepared.handles)
        done = replace(job, state=JobState.DONE, account=slot.account, attempts=made.attempts)
        # Hand over what is in memory: re-reading the bytes just written would only add I/O.
        await self._delivery.deliver(job.id, result_of(done, images, self._models))

    async def _ended(self, job_id: int, job: Job | None, slot: Slot, exc: Exception) -> None:
        if not self.leads():
            return  # the next leader runs it again, and decides
        await self._endings.end(job_id, job, exc, slot)
