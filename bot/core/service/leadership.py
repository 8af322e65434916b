"""Leading: of the processes sharing a store, the one that dispatches (``ports.Leadership``).

The leader alone queues, runs and delivers, so per-user fairness, the per-user running cap and
each account's adaptive limit live in one scheduler, as they do in a single process; the others
accept jobs into the store and wait to take over, hearing meanwhile of each job whose end another
process told (the one that heard its prompt stops showing it waiting). Taking over is resuming,
as after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.core.cancellation import cancel_until_done
from bot.core.domain import JobState
from bot.core.ports import Leadership, LeaseLost, Store
from bot.core.service.delivery import Delivery
from bot.core.service.runner import Runner
from bot.core.service.tasks import Tasks

log = logging.getLogger(__name__)
# A job another process stored until its place is told (a Discord prompt's first response) waits
# at most this long for ``told`` here: that response goes right after the job is stored, so a
# process that has not said so by then stopped meanwhile, and the job starts all the same.
TOLD_WITHIN = 30.0


class SoleLeader:
    """``Leadership`` for a store only this process uses (SQLite): it leads from the start, for
    good, and no other process stores jobs."""

    async def try_lead(self) -> bool:
        return True

    async def lead(self) -> None:
        return None

    async def hold(
        self,
        added: Callable[[int, bool], None],
        ended: Callable[[int], None],
        told: Callable[[int], None],
    ) -> None:
        await asyncio.Event().wait()  # the lease never ends

    async def follow(self, ended: Callable[[int], None]) -> None:
        await asyncio.Event().wait()  # no other process tells a job's end

    def holds(self) -> bool:
        return True


class Lead:
    """This process's part: lead now or once the leader is gone, adopt what other processes
    store while leading, and say when the lead is lost."""

    def __init__(
        self,
        leadership: Leadership,
        store: Store,
        runner: Runner,
        delivery: Delivery,
        tasks: Tasks,
    ) -> None:
        self._leadership = leadership
        self._store = store
        self._runner = runner
        self._delivery = delivery
        self._tasks = tasks
        self.leading = False
        self._resumed: set[int] = set()
        # Stored elsewhere, being read to join the queue: whether it waits to be told.
        self._adopting: dict[int, bool] = {}
        self._lost: LeaseLost | None = None
        self._deposed = asyncio.Event()

    async def claim(self) -> None:
        """Lead from now if no live process does (before anything is told: only the leader
        runs, delivers and alerts the admins)."""
        if await self._leadership.try_lead():
            self._lead_here()

    async def start(self) -> None:
        """Take over the queue if leading, else wait for the lead in the background."""
        if self.leading:
            await self._take_over()
        else:
            log.info("another process leads: accepting jobs, ready to take over")
            self._tasks.spawn(self._await())

    async def deposed(self) -> None:
        await self._deposed.wait()
        assert self._lost is not None
        raise self._lost

    async def _await(self) -> None:
        # Meanwhile the leader tells the ends of the jobs whose prompts this process heard.
        following = self._tasks.spawn(self._leadership.follow(self._followed))
        try:
            await self._leadership.lead()
        finally:
            await cancel_until_done([following])
        log.info("this process leads now: taking over the queue")
        self._lead_here()
        await self._take_over()

    def _lead_here(self) -> None:
        self._runner.leads = self._delivery.leads = self.holds
        self.leading = True

    async def _take_over(self) -> None:
        await self._resume()
        await self._runner.sweep_stranded()
        await self._delivery.redeliver()
        self._tasks.spawn(self._runner.dispatch())
        self._tasks.spawn(self._hold())

    async def _resume(self) -> None:
        """Queue again what a previous run (or leader) left queued or running."""
        unfinished = await self._store.unfinished_jobs()
        known = self._runner.queued()  # accepted here since: queued already
        for job in unfinished:
            if job.state is JobState.RUNNING:
                await self._store.requeue(job.id)
            if job.id not in known:
                self._runner.adopt(
                    await self._runner.entry(job.id, job.owner.user, job.request), job
                )
        # Jobs stored after the leadership began listening are announced as well: once only.
        self._resumed = {job.id for job in unfinished}

    async def _hold(self) -> None:
        try:
            await self._leadership.hold(self._adopt, self._drop, self._told)
        except LeaseLost as exc:
            self._step_down(exc)

    def holds(self) -> bool:
        """Whether this process leads still; checked before each result is stored or told, so
        that a process paused past its lease stops before it does either (the next leader
        does them)."""
        if self.leading and not self._leadership.holds():
            self._step_down(LeaseLost("the lease was not renewed in time"))
        return self.leading

    def _step_down(self, lost: LeaseLost) -> None:
        if self._lost is None:
            log.critical("%s", lost)
            self._lost = lost
        self.leading = False
        self._deposed.set()

    def _adopt(self, job_id: int, held: bool) -> None:
        if job_id not in self._resumed:
            self._adopting[job_id] = held
            self._tasks.spawn(self._queue_stored(job_id))

    def _told(self, job_id: int) -> None:
        if job_id in self._adopting:
            self._adopting[job_id] = False  # told while its entry is read: it need not wait
        self._runner.told(job_id)

    def _followed(self, job_id: int) -> None:
        self._tasks.spawn(self._ended_elsewhere(job_id))

    async def _ended_elsewhere(self, job_id: int) -> None:
        """A job whose end another process told: what shows it waiting here goes. A job
        cancelled without its end told yet is told by the leader: its answer's note comes."""
        job = await self._store.get_job(job_id)
        if job is not None and job.delivered:
            await self._delivery.ended_elsewhere(job)

    def _drop(self, job_id: int) -> None:
        self._adopting.pop(job_id, None)  # an adoption under way must not queue it after all
        self._tasks.spawn(self._end_stored(job_id))

    async def _end_stored(self, job_id: int) -> None:
        """A job another process cancelled: out of the queue here (no slot, no place counted,
        no progress told), and its end told where it was asked, which only the leader does."""
        self._runner.drop_cancelled(job_id)
        job = await self._store.get_job(job_id)
        if job is None:
            return
        if job.delivered:  # the process that took the cancel said so
            await self._delivery.ended_elsewhere(job)
        else:  # cancelled from another platform, or by an admin: its owner is told here
            await self._delivery.deliver(job_id)

    async def _queue_stored(self, job_id: int) -> None:
        """Queue a job another process stored, unless it has left the queue meanwhile (read
        as queued, it may be cancelled while its entry is read: ``_drop`` says so)."""
        try:
            job = await self._store.get_job(job_id)
            if job is None or job.state is not JobState.QUEUED:
                return
            entry = await self._runner.entry(job.id, job.owner.user, job.request)
            if job_id in self._adopting:
                held = self._adopting[job_id]
                self._runner.adopt(entry, job, until_told=held)
                if held:
                    self._tasks.spawn(self._start_untold(job_id))
        finally:
            self._adopting.pop(job_id, None)

    async def _start_untold(self, job_id: int) -> None:
        """A held job whose ``told`` never came (its process stopped first) starts all the same."""
        await asyncio.sleep(TOLD_WITHIN)
        self._runner.told(job_id)
