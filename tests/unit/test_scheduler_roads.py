"""Several roads in one scheduler: a plan's fixed limits (calls in flight, calls started per
minute) beside Flow's adaptive accounts, the next road taking over only when the first can't
serve, and users still taking turns. No clock, no server."""

from __future__ import annotations

from bot.core.people import UserKey
from bot.core.providers import ProviderLimits
from bot.core.scheduler import Entry, Route, Scheduler, Slot
from bot.core.units import MINUTE

FLOW_THEN_GEMINI = (Route("flow"), Route("gemini"))


def user(name: str) -> UserKey:
    return UserKey("telegram", name)


def scheduler(running_per_user: int = 2, **roads: ProviderLimits) -> Scheduler:
    sched = Scheduler(running_per_user=running_per_user, floor=3, ceiling=20)
    for name, limits in roads.items():
        sched.set_road(name, limits)
    return sched


def drain(sched: Scheduler, now: float = 0.0) -> list[Slot]:
    slots = []
    while (slot := sched.take(now)) is not None:
        slots.append(slot)
    return slots


def test_no_minute_sees_more_starts_than_the_plan_allows() -> None:
    sched = scheduler(running_per_user=1, wireflow=ProviderLimits(submits_per_minute=10))
    for i in range(12):
        sched.add(Entry(i, user(str(i)), routes=(Route("wireflow"),)))
    first = drain(sched, now=0.0)
    assert len(first) == 10
    for slot in first:  # they finish at once: room in flight, but no token yet
        sched.release(slot, now=1.0, ok=True)
    assert drain(sched, now=30.0) == []
    # The bucket names when the first token comes back, so the loop sleeps until then.
    assert sched.next_ready_at(30.0) == MINUTE
    assert drain(sched, now=MINUTE - 0.01) == []
    assert [s.entry.job_id for s in drain(sched, now=MINUTE)] == [10, 11]


def test_a_count_of_four_is_four_calls_against_the_plan() -> None:
    sched = scheduler(
        running_per_user=4, gemini=ProviderLimits(concurrency=8, requests_per_minute=20)
    )
    for i in range(3):
        sched.add(Entry(i, user("a"), routes=(Route("gemini", calls=4),)))
    started = drain(sched)
    assert [s.held for s in started] == [4, 4]  # 8 in flight: the third waits
    assert sched.roads["gemini"].in_flight == 8
    assert sched.roads["gemini"].tokens(0.0) == 12
    sched.release(started[0], now=1.0, ok=True)
    [third] = drain(sched, now=1.0)
    assert third.entry.job_id == 2
    assert sched.roads["gemini"].tokens(1.0) == 8


def test_a_job_larger_than_the_plan_holds_all_of_it_rather_than_never_starting() -> None:
    sched = scheduler(nbpro=ProviderLimits(concurrency=1))
    sched.add(Entry(1, user("a"), routes=(Route("nbpro", calls=4),)))
    [slot] = drain(sched)
    assert slot.held == 1
    sched.release(slot, now=1.0, ok=True)
    assert sched.roads["nbpro"].in_flight == 0


def test_a_429_on_a_fixed_plan_leaves_its_limits_alone() -> None:
    sched = scheduler(gemini=ProviderLimits(concurrency=2, requests_per_minute=5))
    sched.add(Entry(1, user("a"), routes=(Route("gemini"),)))
    [slot] = drain(sched)
    sched.release(slot, now=1.0, throttled=True)
    road = sched.roads["gemini"]
    assert (road.concurrency, road.per_minute, road.in_flight) == (2, 5, 0)


def test_the_first_road_keeps_its_jobs_while_it_is_only_full() -> None:
    sched = scheduler(running_per_user=5, gemini=ProviderLimits(concurrency=4))
    sched.set_accounts({"alice@example.com": True})
    sched.accounts["alice@example.com"].limit = 1.0
    for i in range(3):
        sched.add(Entry(i, user("a"), routes=FLOW_THEN_GEMINI))
    started = drain(sched)
    # Flow is healthy: the job waits for it rather than going to the next road.
    assert [(s.entry.job_id, s.provider) for s in started] == [(0, "flow")]


def test_the_next_road_takes_over_when_the_first_cannot_serve() -> None:
    sched = scheduler(running_per_user=5, gemini=ProviderLimits(concurrency=4))
    sched.set_accounts({"alice@example.com": True})
    for i in range(3):
        sched.add(Entry(i, user("a"), routes=FLOW_THEN_GEMINI))
    sched.accounts["alice@example.com"].healthy = False  # a 402 took it out
    started = drain(sched)
    assert [(s.entry.job_id, s.provider, s.account) for s in started] == [
        (0, "gemini", "gemini"),
        (1, "gemini", "gemini"),
        (2, "gemini", "gemini"),
    ]
    assert sched.serves(Entry(9, user("b"), routes=FLOW_THEN_GEMINI))


def test_a_job_pinned_to_an_account_never_moves_to_another_road() -> None:
    sched = scheduler(gemini=ProviderLimits(concurrency=4))
    sched.set_accounts({"alice@example.com": False})
    pinned = Entry(1, user("a"), pinned="alice@example.com", routes=FLOW_THEN_GEMINI)
    sched.add(pinned)
    assert drain(sched) == []
    assert not sched.serves(pinned)


def test_a_job_waits_for_its_characters_home_while_it_serves_and_else_goes_elsewhere() -> None:
    sched = scheduler(running_per_user=9, gemini=ProviderLimits(concurrency=4))
    sched.set_accounts({"alice@example.com": True, "bob@example.com": True})
    sched.accounts["alice@example.com"].limit = 1.0
    for i in range(2):
        sched.add(Entry(i, user("a"), home="alice@example.com", routes=FLOW_THEN_GEMINI))
    assert [s.account for s in drain(sched)] == ["alice@example.com"]  # 1 waits for alice
    sched.accounts["alice@example.com"].healthy = False  # gone: bob makes the character again
    assert [s.account for s in drain(sched)] == ["bob@example.com"]
    sched.add(Entry(2, user("a"), home="alice@example.com", routes=FLOW_THEN_GEMINI))
    sched.accounts["bob@example.com"].healthy = False  # no Flow account: Gemini takes pictures
    assert [s.account for s in drain(sched)] == ["gemini"]


def test_a_job_no_road_serves_is_never_started() -> None:
    sched = scheduler(gemini=ProviderLimits(concurrency=4))
    nowhere = Entry(1, user("a"), routes=())
    sched.add(nowhere)
    assert drain(sched) == []
    assert not sched.serves(nowhere)


def test_users_take_turns_on_a_fixed_plan_too() -> None:
    sched = scheduler(running_per_user=2, nbpro=ProviderLimits(concurrency=2))
    a, b = user("a"), user("b")
    for i in range(5):
        sched.add(Entry(i, a, routes=(Route("nbpro"),)))
    order: list[int] = []
    running = drain(sched)
    sched.add(Entry(100, b, routes=(Route("nbpro"),)))  # arrives while a's backlog waits
    now = 1.0
    while running:
        done = running.pop(0)
        order.append(done.entry.job_id)
        sched.release(done, now=now, ok=True)
        running += drain(sched, now=now)
        now += 1.0
    assert order.index(100) <= 2  # right after a's first two, not after all five
    assert [j for j in order if j < 100] == list(range(5))
