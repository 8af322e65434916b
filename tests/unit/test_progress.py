"""Live progress at a calm pace, however many jobs wait: without a server, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools

from bot.core import i18n
from bot.core.domain import GenerationRequest, Job
from bot.core.people import UserKey
from bot.core.presenters import JobStatus
from bot.core.scheduler import Entry, Scheduler
from bot.core.service import progress
from bot.core.service.progress import Progress
from bot.core.service.tasks import Tasks
from tests.conftest import owner
from tests.fakes.notifier import RecordingNotifier


async def english(user: UserKey) -> i18n.Language:
    """Every reader's language here: the operator's (no store to ask)."""
    return i18n.default()


async def reports_per_ten_seconds(jobs: int, seconds: float) -> list[int]:
    """Progress reports told in each 10 s while ``jobs`` wait, the queue moving every 5 s."""
    now = 0.0
    scheduler = Scheduler(running_per_user=2, floor=3, ceiling=20)  # no account: all wait
    told = RecordingNotifier()
    tasks = Tasks()
    live = Progress(scheduler, lambda: now, tasks, {"console": told}, english)
    request = GenerationRequest("a fox", "nano-banana-2", "1:1", 1, 5)
    for i in range(1, jobs + 1):
        scheduler.add(Entry(i, owner(str(i)).user))
        live.waiting(Job(i, owner(str(i)), request), JobStatus(False, position=i))
    counts, head = [0], 1
    while now < seconds:
        now += 0.25
        if now % 5 == 0:  # the job at the head of the queue starts
            scheduler.remove(head)
            head += 1
        live._tell_due(now)
        await asyncio.sleep(0)
        if now % 10 == 0:
            counts.append(len(told.progress))
    await tasks.cancel_all()
    return [after - before for before, after in itertools.pairwise(counts)]


async def test_a_short_queue_counts_down_every_pace() -> None:
    # At 10 s jobs 3 to 5 are told their new places, at 20 s job 5 (the others have started).
    assert await reports_per_ten_seconds(5, 20.0) == [3, 1]


async def test_a_long_queue_counts_down_within_a_budget() -> None:
    told = await reports_per_ten_seconds(400, 100.0)
    assert sum(told) > 0
    assert max(told) <= progress.REFRESHES * 10  # not 400 every 10 s (40 a second)


async def test_where_jobs_are_now_is_said_whatever_was_told() -> None:
    # Nothing told yet (a state is told once it lasted SETTLE): the places are those of now,
    # and a job that left the queue runs, its "running" not stored yet.
    scheduler = Scheduler(running_per_user=2, floor=3, ceiling=20)  # no account: all wait
    live = Progress(scheduler, lambda: 0.0, Tasks(), {}, english)
    request = GenerationRequest("a fox", "nano-banana-2", "1:1", 1, 5)
    for i in (1, 2, 3):
        scheduler.add(Entry(i, owner("1").user))
        live.waiting(Job(i, owner("1"), request), JobStatus(False, position=1))
    scheduler.remove(1)
    now = live.now([1, 2, 3, 4])
    assert sorted(now) == [1, 2, 3]  # job 4 is not this process's
    assert now[1].running
    assert [now[2].position, now[3].position] == [1, 2]
