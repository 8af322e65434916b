"""Live progress: what the status message of each waiting or running job says, and when it
changes (``Notifier.job_progress``).

Calm by rule, so that a platform's budget goes to answers:

- a new state (waiting, running) is told once it has lasted ``SETTLE`` seconds, and not while
  the job is expected to end within ``FLICKER`` of now (its model's recent median says so): a
  job answered within a second or two never shows "generating";
- the same state is told again every ``PACE`` seconds, and only if what it says changed (the
  place in the queue counting down, the time it has run); such refreshes come to at most
  ``REFRESHES`` a second in all, the jobs told first first (a thousand jobs waiting would
  otherwise take a hundred edits a second, more than a platform allows, and the time that
  keeps the upstream busy);
- one report per job at a time, and none once its final answer is on its way (``done``).

The front end shows the first status itself (``Admitted.status``, or the position ``submit``
returns); from then on this keeps it true.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

from bot.core.domain import Job
from bot.core.i18n import Language, reading
from bot.core.people import UserKey
from bot.core.ports import Notifier
from bot.core.presenters import JobStatus
from bot.core.scheduler import Scheduler
from bot.core.service.tasks import Tasks

log = logging.getLogger(__name__)

SETTLE = 2.0
FLICKER = 1.0
PACE = 10.0
REFRESHES = 5.0
# Reports due are told in passes at most this often (a few a second, however long the queue):
# a report may come this much late, never early.
GATHER = 0.25
# A model's typical duration is the median of its last RECENT successful runs, from TYPICAL_AFTER.
RECENT = 20
TYPICAL_AFTER = 3


class Durations:
    """How long runs of each model took lately (from the call upstream to its answer)."""

    def __init__(self) -> None:
        self._recent: dict[str, deque[float]] = {}

    def note(self, job: Job, seconds: float) -> None:
        self._recent.setdefault(_kind(job), deque(maxlen=RECENT)).append(seconds)

    def typical(self, job: Job) -> float | None:
        recent = self._recent.get(_kind(job), ())
        return statistics.median(recent) if len(recent) >= TYPICAL_AFTER else None


def _kind(job: Job) -> str:
    return f"{'upscale' if job.is_upscale else 'generate'}:{job.request.model}"


@dataclass
class _Live:
    job: Job
    shown: JobStatus  # what its status message says
    shown_at: float
    since: float  # when its present state began
    known: bool = True  # False: a previous run left the message saying who knows what
    started_at: float | None = None  # running since (None: waiting)
    telling: asyncio.Task[None] | None = None


class Progress:
    def __init__(
        self,
        scheduler: Scheduler,
        clock: Callable[[], float],
        tasks: Tasks,
        notifiers: Mapping[str, Notifier],
        language_of: Callable[[UserKey], Awaitable[Language]],
    ) -> None:
        self._scheduler = scheduler
        self._clock = clock
        self._tasks = tasks
        self._notifiers = notifiers
        self._language_of = language_of  # each status is told in its reader's language
        self._live: dict[int, _Live] = {}
        self._wake = asyncio.Event()
        self._next: float | None = None  # when the loop looks again
        self._refreshes = REFRESHES  # refreshes that may be told now (a bucket, ``REFRESHES``/s)
        self._refilled = clock()
        self.durations = Durations()

    # What happens to jobs.

    def waiting(self, job: Job, shown: JobStatus | None) -> None:
        """``job`` is queued and its status message says ``shown`` (None: unknown, after a
        restart)."""
        now = self._clock()
        if shown is None:  # told what it is once it has waited SETTLE
            told = _Live(job, JobStatus(job.is_upscale), now - PACE + SETTLE, now, known=False)
        else:
            told = _Live(job, shown, now, now)
        self._live[job.id] = told
        self._due_by(told.shown_at + PACE)

    async def started(self, job_id: int, at: float, marked: asyncio.Future[int]) -> None:
        """The job's call upstream began at ``at``; it runs once "running" is stored
        (``marked``: the attempts, 0 if the job had ended)."""
        try:
            attempts = await asyncio.shield(marked)
        except Exception:  # the attempt itself answers for a store that failed
            return
        if attempts and (live := self._live.get(job_id)) is not None:
            live.since = live.started_at = at
            self._due_by(at + SETTLE)

    def requeued(self, job_id: int) -> None:
        """The job waits again (a retry)."""
        if (live := self._live.get(job_id)) is not None:
            live.since, live.started_at = self._clock(), None
            self._due_by(live.since + SETTLE)

    def done(self, job_id: int) -> None:
        """The job's final answer is on its way (or it was cancelled): tell nothing more, and
        drop a report not yet made (the front end keeps one already sent from landing after)."""
        live = self._live.pop(job_id, None)
        if live is not None and live.telling is not None:
            live.telling.cancel()

    def now(self, job_ids: Collection[int]) -> dict[int, JobStatus]:
        """What the status of each of ``job_ids`` this process queues or runs is now, told or
        not: for a front end that says it when a message goes (a busy chat's board). A job
        that left the queue runs (its "running" may not be stored yet)."""
        now, positions = self._clock(), self._scheduler.positions()
        found = {}
        for job_id in job_ids:
            if (live := self._live.get(job_id)) is None:
                continue
            if live.started_at is None and job_id not in positions:
                found[job_id] = JobStatus(live.job.is_upscale, elapsed=0.0)
            else:
                found[job_id] = self._status(live, now, positions)
        return found

    # Telling.

    async def run(self) -> None:
        """Tell each status that is due, then sleep until the next one is."""
        while True:
            self._wake.clear()
            now = self._clock()
            self._next = self._tell_due(now)
            timeout = None if self._next is None else max(GATHER, self._next - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _due_by(self, at: float) -> None:
        if self._next is None or at < self._next:
            self._next = at
            self._wake.set()

    def _tell_due(self, now: float) -> float | None:
        """Tell what is due by ``now``; when the next report is due."""
        positions: dict[int, int] | None = None
        following: float | None = None
        elapsed, self._refilled = now - self._refilled, now
        self._refreshes = min(REFRESHES, self._refreshes + elapsed * REFRESHES)
        for live in self._live.values():
            due = self._due(live)
            refresh = live.known and live.shown.running == (live.started_at is not None)
            if live.telling is not None and not live.telling.done():
                due = max(due, now + GATHER)  # one report at a time: look again soon
            elif due <= now and refresh and self._refreshes < 1:
                due = now + GATHER  # the budget for refreshes is spent: its turn comes
            elif due <= now:
                if live.started_at is None and positions is None:
                    positions = self._scheduler.positions()
                status = self._status(live, now, positions or {})
                changed = status.text != live.shown.text or not live.known
                if changed and (status.running or status.position):
                    live.telling = self._tasks.spawn(self._tell(live.job, status))
                    live.known = True
                    if refresh:
                        self._refreshes -= 1
                live.shown, live.shown_at = status, now
                due = self._due(live)
            following = due if following is None else min(following, due)
        return following

    def _due(self, live: _Live) -> float:
        if live.shown.running == (live.started_at is not None):
            return live.shown_at + PACE  # the same state: refreshed at the pace
        due = live.since + SETTLE
        typical = self.durations.typical(live.job)
        if live.started_at is not None and typical is not None:
            elapsed = due - live.started_at
            if typical - FLICKER <= elapsed < typical + FLICKER:
                due = live.started_at + typical + FLICKER  # about to end: only if it's late
        return due

    def _status(self, live: _Live, now: float, positions: dict[int, int]) -> JobStatus:
        """What the status should say now (position 0: it waits in another process's queue,
        or no longer waits, and there is nothing to say)."""
        upscale = live.job.is_upscale
        if live.started_at is not None:
            typical = self.durations.typical(live.job)
            return JobStatus(upscale, elapsed=now - live.started_at, typical=typical)
        position = positions.get(live.job.id, 0)
        return JobStatus(upscale, position=position, paused=self._scheduler.paused)

    async def _tell(self, job: Job, status: JobStatus) -> None:
        notifier = self._notifiers.get(job.owner.platform)
        if notifier is None:
            return
        try:
            with reading(await self._language_of(job.owner.user)):
                await notifier.job_progress(job, status)
        except Exception as exc:  # progress is a courtesy; the final answer is what counts
            log.info("job %d: progress update failed: %s", job.id, exc)
