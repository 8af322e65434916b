"""Two services sharing one PostgreSQL, as two processes would (each its own store, pool and
leadership session): one leads and runs everything, the other's jobs reach it by NOTIFY, the
caps hold across both, and the lead passes on when the leader goes or loses its session."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from bot.core import history_texts
from bot.core.domain import Request
from bot.core.errors import InvalidInput
from bot.core.people import UserKey
from bot.core.policy import Limits
from bot.core.ports import LeaseLost
from bot.core.scheduler import Entry
from bot.core.service import Service, leadership
from tests.conftest import Sharing, owner
from tests.fakes.flow_server import FakeFlowServer


async def test_a_job_accepted_by_a_follower_is_run_and_answered_by_the_leader(
    sharing: Sharing, flow: FakeFlowServer
) -> None:
    leader, told_by_leader, _ = await sharing()
    follower, told_by_follower, _ = await sharing()
    assert leader.leading
    assert not follower.leading
    submitted = await follower.submit(owner("7"), "a fox")
    # Woken by NOTIFY, not found by a poll: answered in well under a polling period.
    await told_by_leader.wait_answered(submitted.job_id, timeout=2.0)
    # The follower hears it (NOTIFY): whatever it shows of the job waiting goes.
    await told_by_follower.wait_ended_elsewhere(submitted.job_id, timeout=2.0)
    assert told_by_follower.answers(submitted.job_id) == 0
    assert len(flow.images_requests()) == 1


async def test_a_follower_whose_listening_session_is_ended_listens_again(
    sharing: Sharing, postgres_url: str
) -> None:
    await sharing()  # the leader
    follower, told, _ = await sharing()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        [ended] = await listening(admin, besides=())
        await admin.execute("SELECT pg_terminate_backend(%s)", (ended,))
        await listening(admin, besides=(ended,))  # a session of its own again, a moment later
    submitted = await follower.submit(owner("7"), "a fox")
    await told.wait_ended_elsewhere(submitted.job_id, timeout=3.0)


async def listening(admin: psycopg.AsyncConnection[Any], besides: tuple[int, ...]) -> list[int]:
    """The sessions (pids) a follower listens on for jobs ended elsewhere, once there are some
    other than ``besides``."""
    query = "SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN nbb_answered'"
    async with asyncio.timeout(5):
        while True:
            pids = [row[0] for row in await (await admin.execute(query)).fetchall()]
            if set(pids) - set(besides):
                return pids
            await asyncio.sleep(0.01)


async def test_the_caps_hold_across_processes(sharing: Sharing) -> None:
    limits = Limits(queued_per_user=2, daily_images_per_user=3)
    first, _, _ = await sharing(limits=limits)
    second, _, _ = await sharing(limits=limits)
    for service in (first, second):
        service.scheduler.accounts["alice@example.com"].limit = 0.0  # no room: all wait
    outcomes = await asyncio.gather(
        *(s.submit(owner(), f"job {i} --count 1") for i in range(5) for s in (first, second)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 2
    assert all(isinstance(o, InvalidInput) for o in outcomes if isinstance(o, Exception))
    images = await asyncio.gather(
        *(s.submit(owner("5"), f"job {i} --count 2") for i in range(2) for s in (first, second)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, Exception) for o in images) == 1  # 2 + 2 > 3 images


async def test_a_cancel_heard_by_a_follower_reaches_the_leader_at_once(
    sharing: Sharing, flow: FakeFlowServer
) -> None:
    # Only the leader queues and delivers: it hears the cancel (NOTIFY), not at its next
    # sweep (BOT_ACCOUNTS_REFRESH_SECONDS, 300 s here).
    leader, told, store = await sharing()
    follower, _, _ = await sharing()
    leader.scheduler.accounts["alice@example.com"].limit = 0.0  # no room: all wait
    first = await follower.submit(owner("7"), "a fox")
    second = await follower.submit(owner("7"), "a cat")
    async with asyncio.timeout(5):  # adopted by the leader
        while leader.scheduler.position(second.job_id) != 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert await store.link(UserKey("console", "7"), UserKey("discord", "7"))
    await follower.cancel(UserKey("discord", "7"), first.job_id)  # from their other platform
    await told.wait_answered(first.job_id, timeout=2.0)  # said where it was asked
    assert told.failure(first.job_id) == history_texts.cancelled_on("discord")
    assert leader.scheduler.position(second.job_id) == 1
    await follower.cancel(UserKey("console", "7"), second.job_id)  # said by who took it
    await told.wait_ended_elsewhere(second.job_id, timeout=2.0)
    assert leader.scheduler.positions() == {}
    assert told.answers(second.job_id) == 0


async def test_a_job_cancelled_while_the_leader_adopts_it_stays_out_of_its_queue(
    sharing: Sharing, flow: FakeFlowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A job stored then cancelled at once (a Discord first response that came too late): the
    # leader hears both; the cancel lands while the adoption still reads the job's entry.
    leader, told, _ = await sharing()
    follower, _, _ = await sharing()
    leader.scheduler.accounts["alice@example.com"].limit = 0.0  # no room: all wait
    runner = leader._runner  # the interleaving is forced at this one await
    reading = runner.entry

    async def entry_while_cancelled(job_id: int, user: UserKey, request: Request) -> Entry:
        await follower.cancel(user, job_id)
        await told.wait_ended_elsewhere(job_id, timeout=2.0)  # the leader has dropped it
        return await reading(job_id, user, request)

    monkeypatch.setattr(runner, "entry", entry_while_cancelled)
    submitted = await follower.submit(owner("7"), "a fox")
    await told.wait_ended_elsewhere(submitted.job_id, timeout=5.0)
    await asyncio.sleep(0.2)  # the adoption's last step
    assert leader.scheduler.positions() == {}
    assert told.answers(submitted.job_id) == 0


async def submit_until_told(service: Service, text: str) -> int:
    """A job stored as a Discord prompt's is: it starts once its place is told."""
    async with service.admit(owner("7"), text) as ticket:
        return (await ticket.submit(until_told=True)).job_id


async def test_a_job_a_follower_stored_until_told_waits_in_the_leader_for_its_told(
    sharing: Sharing, flow: FakeFlowServer
) -> None:
    # The follower's first response may come too late and cancel it: the leader must not have
    # asked the upstream meanwhile (paid, and counted against the user's day).
    leader, told, _ = await sharing()
    follower, _, _ = await sharing()
    job_id = await submit_until_told(follower, "a fox")
    async with asyncio.timeout(5):  # adopted by the leader
        while leader.scheduler.position(job_id) != 1:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # room to start, had it been free to
    assert not flow.images_requests()
    follower.told(job_id)
    await told.wait_answered(job_id, timeout=5.0)


async def test_a_job_told_while_the_leader_adopts_it_does_not_wait(
    sharing: Sharing, flow: FakeFlowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    leader, told, _ = await sharing()
    follower, _, _ = await sharing()
    runner = leader._runner  # the interleaving is forced at this one await
    reading = runner.entry

    async def entry_while_told(job_id: int, user: UserKey, request: Request) -> Entry:
        follower.told(job_id)
        async with asyncio.timeout(5):  # the leader has heard it
            while leader._lead._adopting.get(job_id):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        return await reading(job_id, user, request)

    monkeypatch.setattr(runner, "entry", entry_while_told)
    job_id = await submit_until_told(follower, "a fox")
    await told.wait_answered(job_id, timeout=5.0)  # not TOLD_WITHIN (30 s) later


async def test_a_held_job_whose_told_never_comes_starts_all_the_same(
    sharing: Sharing, flow: FakeFlowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The follower stopped between storing the job and telling its place: never stuck queued.
    monkeypatch.setattr(leadership, "TOLD_WITHIN", 0.3)
    _, told, _ = await sharing()
    follower, _, _ = await sharing()
    job_id = await submit_until_told(follower, "a fox")
    await told.wait_answered(job_id, timeout=5.0)


async def test_the_follower_takes_over_when_the_leader_stops(
    sharing: Sharing, flow: FakeFlowServer
) -> None:
    leader, _, _ = await sharing()
    follower, told, _ = await sharing()
    flow.hold()  # the leader's generation never answers
    submitted = await follower.submit(owner("7"), "a fox")
    async with asyncio.timeout(5):
        while not flow.held:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await leader.aclose()  # its session ends: the lock goes with it
    flow.release()
    await told.wait_answered(submitted.job_id, timeout=5.0)
    assert follower.leading


async def test_a_leader_whose_session_is_ended_steps_down(
    sharing: Sharing, postgres_url: str
) -> None:
    leader, _, _ = await sharing(lease=1.5)
    follower, told, _ = await sharing(lease=1.5)
    # What the server does to a leader that stopped renewing its lease (idle_session_timeout).
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND objid = %s",
            (0x6E62_6C64 & 0xFFFFFFFF,),
        )
    with pytest.raises(LeaseLost):
        async with asyncio.timeout(3):
            await leader.deposed()
    assert not leader.leading
    async with asyncio.timeout(3):
        while not follower.leading:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    submitted = await follower.submit(owner("7"), "a fox")
    await told.wait_answered(submitted.job_id, timeout=3.0)


async def test_a_flood_accepted_by_a_follower_does_not_hold_back_another_users_job(
    sharing: Sharing, flow: FakeFlowServer
) -> None:
    leader, told, _ = await sharing()
    follower, _, _ = await sharing()
    account = leader.scheduler.accounts["alice@example.com"]
    account.floor = account.ceiling = 1  # one generation at a time: the order is the queue's
    account.limit = 1.0
    flow.hold()
    first = await follower.submit(owner("1"), "flood 0")
    async with asyncio.timeout(5):
        while not flow.held:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    flood = [await follower.submit(owner("1"), f"flood {i}") for i in range(1, 4)]
    cat = await follower.submit(owner("2"), "a cat")  # asked last, by someone not yet served
    async with asyncio.timeout(5):  # the leader has it waiting (position 0: not waiting)
        while not leader.scheduler.position(cat.job_id):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    flow.release()
    await told.wait_answered(first.job_id, cat.job_id, *(f.job_id for f in flood))
    order = [str(r.json["prompt"]) for r in flow.images_requests()]  # type: ignore[index]
    # The user served longest ago goes next, whichever process took the job.
    assert order == ["flood 0", "a cat", "flood 1", "flood 2", "flood 3"]
