"""Fairness and adaptive concurrency, without a clock or a server."""

from __future__ import annotations

import math
import random

import pytest

from bot.core.people import UserKey
from bot.core.scheduler import Entry, Scheduler, Slot
from bot.core.units import AccountLimit


def users(*names: str) -> list[UserKey]:
    return [UserKey("telegram", n) for n in names]


def scheduler(accounts: dict[str, int], running_per_user: int = 2) -> Scheduler:
    sched = Scheduler(running_per_user=running_per_user, floor=3, ceiling=20)
    sched.set_accounts(dict.fromkeys(accounts, True))
    for email, limit in accounts.items():
        sched.accounts[email].limit = float(limit)
    return sched


def drain(sched: Scheduler, now: float = 0.0) -> list[Slot]:
    slots = []
    while (slot := sched.take(now)) is not None:
        slots.append(slot)
    return slots


def test_three_single_jobs_finish_before_the_heavy_users_fourth() -> None:
    a, b, c, d = users("a", "b", "c", "d")
    sched = scheduler({"x": 3})
    for i in range(8):
        sched.add(Entry(i, a))
    for job, user in ((100, b), (101, c), (102, d)):
        sched.add(Entry(job, user))
    order: list[int] = []
    running = drain(sched)
    while running:
        done = running.pop(0)  # jobs finish in the order they started
        order.append(done.entry.job_id)
        sched.release(done, now=1.0, ok=True)
        running += drain(sched)
    assert order.index(100) < order.index(3)
    assert order.index(101) < order.index(3)
    assert order.index(102) < order.index(3)
    assert [j for j in order if j < 100] == list(range(8))  # a user's own jobs keep their order


def test_a_newcomer_gets_the_next_slot_after_a_busy_user() -> None:
    a, b = users("a", "b")
    sched = scheduler({"x": 3}, running_per_user=3)
    for i in range(6):
        sched.add(Entry(i, a))
    first = drain(sched)
    assert [s.entry.job_id for s in first] == [0, 1, 2]
    sched.add(Entry(10, b))  # arrives while a's backlog waits
    assert sched.position(10) == 1
    sched.release(first[0], now=1.0, ok=True)
    # The success also grew the limit by one: two slots, and the newcomer takes the first.
    assert [s.entry.job_id for s in drain(sched, now=1.0)] == [10, 3]


def test_running_per_user_cap_leaves_room_for_others() -> None:
    a, b = users("a", "b")
    sched = scheduler({"x": 10}, running_per_user=2)
    for i in range(5):
        sched.add(Entry(i, a))
    assert len(drain(sched)) == 2
    sched.add(Entry(10, b))
    assert [s.entry.job_id for s in drain(sched)] == [10]


def test_position_counts_round_robin_turns() -> None:
    a, b = users("a", "b")
    sched = scheduler({"x": 3})
    for i in range(3):
        sched.add(Entry(i, a))
    sched.add(Entry(10, b))
    assert sched.position(0) == 1
    assert sched.position(10) == 2
    assert sched.position(1) == 3
    assert sched.position(2) == 4
    assert sched.position(999) == 0


def test_pinned_jobs_wait_for_their_account_while_another_has_room() -> None:
    (a,) = users("a")
    sched = scheduler({"x": 3, "y": 3}, running_per_user=10)
    for i in range(4):
        sched.add(Entry(i, a, pinned="x"))
    slots = drain(sched)
    assert [s.account for s in slots] == ["x", "x", "x"]
    assert sched.accounts["y"].room == 3  # y could take it, but its references live on x
    assert sched.position(3) == 1  # still waiting for x


def test_unpinned_jobs_spread_over_accounts_with_room() -> None:
    (a,) = users("a")
    sched = scheduler({"x": 5, "y": 5, "z": 5}, running_per_user=10)
    for i in range(6):
        sched.add(Entry(i, a))
    slots = drain(sched)
    # No account is full (5 each): the jobs go where there is most room, two each.
    assert sorted(s.account for s in slots) == ["x", "x", "y", "y", "z", "z"]


def test_uploads_prefer_the_account_that_already_has_them() -> None:
    (a,) = users("a")
    sched = scheduler({"x": 3, "y": 5})
    sched.add(Entry(1, a, preferred=frozenset({"x"})))
    assert drain(sched)[0].account == "x"


def test_backoff_delays_only_that_job() -> None:
    a, b = users("a", "b")
    sched = scheduler({"x": 3})
    sched.add(Entry(1, a, not_before=5.0))
    sched.add(Entry(2, b))
    assert [s.entry.job_id for s in drain(sched, now=1.0)] == [2]
    assert sched.next_ready_at(1.0) == 5.0
    assert [s.entry.job_id for s in drain(sched, now=5.0)] == [1]


def test_unhealthy_accounts_take_no_work() -> None:
    (a,) = users("a")
    sched = scheduler({"x": 3})
    sched.accounts["x"].healthy = False
    sched.add(Entry(1, a))
    assert drain(sched) == []
    assert sched.healthy_accounts() == []


def test_aimd_slow_start_then_careful_probing_then_fast_again() -> None:
    account = AccountLimit("x", floor=3, ceiling=20)
    assert account.limit == 3
    account.last_full = 0.0  # the limit was reached when these three were sent
    for _ in range(3):
        account.on_success(sent_at=0.0, now=1.0)
    assert account.limit == 6  # slow start: every answer of a full round adds one
    account.on_success(sent_at=1.5, now=2.5)
    assert account.limit == 6  # sent after the account was last full: proves nothing
    account.in_flight = 4
    account.on_throttle(now=3.0)
    assert account.limit == 3  # cut to what the upstream held: 3 others in flight
    account.last_full = 3.0
    # Within two round trips of a throttle: about +1 per round trip.
    account.on_success(sent_at=3.0, now=3.5)
    assert account.limit == pytest.approx(3 + 1 / 3)
    account.on_success(sent_at=3.0, now=6.0)
    assert account.limit == pytest.approx(4 + 1 / 3)  # calm again: probe fast


@pytest.mark.parametrize("held", range(3, 10))  # from ten up, a refusal cuts a tenth
def test_after_a_refusal_the_next_probe_comes_one_round_trip_later_not_two(held: int) -> None:
    # A capacity rise is found by the first probe sent after it: probing every second round
    # trip, the rise waited one round or two depending on the parity of the probes' cycle.
    account = AccountLimit("x", floor=3, ceiling=20, limit=float(held + 1), round_trip=1.0)
    for _ in range(held + 1):
        account.start(1, 0.0)
    account.on_throttle(now=0.01, sent_at=0.0)  # the probe, refused at once
    account.end(0.0, 1)
    assert account.limit == held
    for _ in range(held):  # the round's answers, each slot taken again at once
        account.end(0.0, 1)
        account.on_success(sent_at=0.0, now=1.0)
        account.start(1, 1.0)
    assert account.room == 1  # the next probe goes with the next round


def test_aimd_cuts_to_measured_capacity_within_bounds() -> None:
    account = AccountLimit("x", floor=3, ceiling=20, limit=20.0)
    account.in_flight = 9
    account.on_throttle(now=1.0)
    assert account.limit == 8  # capacity fell: follow it at once, not 10% per round trip
    account.limit, account.in_flight = 10.0, 11
    account.on_throttle(now=2.0)
    assert account.limit == 9  # at least 10% off even when more was in flight
    account.in_flight = 1
    account.on_throttle(now=3.0)
    assert account.limit == 3  # never below the floor
    full = AccountLimit("y", floor=3, ceiling=20, limit=19.5, last_full=1.0)
    full.on_success(sent_at=1.0, now=2.0)
    full.on_success(sent_at=1.0, now=2.0)
    assert full.limit == 20.0  # never above the ceiling


def test_release_feeds_the_account_limit() -> None:
    (a,) = users("a")
    sched = scheduler({"x": 3}, running_per_user=5)
    for i in range(3):
        sched.add(Entry(i, a))
    slots = drain(sched)
    sched.release(slots[0], now=1.0, ok=True)
    assert sched.accounts["x"].limit == 4
    sched.release(slots[1], now=1.0, throttled=True)
    assert sched.accounts["x"].limit == 3
    assert sched.in_flight == 1


def test_a_job_refused_for_capacity_takes_the_next_slot_that_frees_not_a_timer() -> None:
    a, b, c = users("a", "b", "c")
    sched = scheduler({"x": 4}, running_per_user=2)
    sched.accounts["x"].limit = 5.0  # probing one over the upstream's capacity of 4
    for i, user in enumerate((a, a, b, b, c)):
        sched.add(Entry(i, user))
    sched.add(Entry(9, c))  # another user's job, waiting when the probe is refused
    running = drain(sched)
    assert len(running) == 5
    probe = running[-1]
    sched.release(probe, now=0.1, throttled=True)
    assert sched.accounts["x"].limit == 4  # cut to what the upstream held
    sched.retry(probe, pause_until=60.0)
    assert drain(sched, now=0.2) == []  # no slot has freed: the account is full
    sched.release(running[0], now=1.0, ok=True)
    # The next slot that frees goes to the refused job, long before its pause is over (and
    # before the job that waited behind it).
    assert [s.entry.job_id for s in drain(sched, now=1.0)] == [probe.entry.job_id]


def test_a_slot_freed_while_a_refusal_was_on_its_way_back_goes_to_the_refused_job() -> None:
    # The end of a round at 1 s a call: the answers come back together, and the refusal of
    # the probe started beside them is noted after one of them (the store writes it first).
    a, b, c, d, e = users("a", "b", "c", "d", "e")
    sched = scheduler({"x": 4}, running_per_user=1)
    sched.accounts["x"].limit = 5.0
    for i, user in enumerate((a, b, c, d, e)):
        sched.add(Entry(i, user))
    running = drain(sched, now=0.0)
    probe = running[-1]
    sched.release(running[0], now=1.0, ok=True)  # its answer came back before the refusal
    sched.release(probe, now=1.01, throttled=True)
    assert sched.accounts["x"].limit == 4  # the upstream held four: the answered one too
    sched.retry(probe, pause_until=2.0)
    # A slot is free, and freed after the probe was sent: the refused job takes it now,
    # not after its pause (with no job left behind it, that slot would stay idle).
    assert [s.entry.job_id for s in drain(sched, now=1.02)] == [probe.entry.job_id]


def test_a_job_refused_on_one_account_goes_at_once_to_another_with_room() -> None:
    (a,) = users("a")
    sched = scheduler({"x": 3, "y": 3})
    sched.add(Entry(1, a, preferred=frozenset({"x"})))
    [slot] = drain(sched)
    assert slot.account == "x"
    sched.release(slot, now=0.1, throttled=True)
    sched.retry(slot, pause_until=60.0)
    [again] = drain(sched, now=0.1)
    assert again.account == "y"


def test_a_refused_job_waits_out_its_pause_when_no_slot_frees() -> None:
    (a,) = users("a")
    sched = scheduler({"x": 3})
    sched.add(Entry(1, a))
    [slot] = drain(sched)
    sched.release(slot, now=0.1, throttled=True)  # a 503 with nothing else running there
    sched.retry(slot, pause_until=1.0)
    assert sched.accounts["x"].room == 3  # room, but nothing has freed since the refusal
    assert drain(sched, now=0.5) == []
    assert sched.next_ready_at(0.5) == 1.0
    assert [s.entry.job_id for s in drain(sched, now=1.0)] == [1]


def test_a_slot_given_back_by_another_refusal_is_not_a_free_slot() -> None:
    a, b = users("a", "b")
    sched = scheduler({"x": 3})
    sched.add(Entry(1, a))
    sched.add(Entry(2, b))
    first, second = drain(sched)
    sched.release(first, now=0.1, throttled=True)
    sched.retry(first, pause_until=5.0)
    sched.release(second, now=0.2, throttled=True)  # the upstream refuses everything
    sched.retry(second, pause_until=5.0)
    assert drain(sched, now=0.3) == []  # neither hammers it again before its pause
    assert sorted(s.entry.job_id for s in drain(sched, now=5.0)) == [1, 2]


def test_one_job_s_position_agrees_with_everyone_s_as_turns_are_taken() -> None:
    """``position`` counts without a pass over every job: the same answer as ``positions``,
    whoever was served when."""
    rng = random.Random(11)
    people = users(*"abcdef")
    sched = scheduler({"x": 2}, running_per_user=1)
    running: list[Slot] = []
    for job in range(300):
        roll = rng.random()
        if roll < 0.6:
            sched.add(Entry(job, rng.choice(people)))
        elif roll < 0.8 and (slot := sched.take(0.0)) is not None:
            running.append(slot)
        elif running:
            sched.release(running.pop(rng.randrange(len(running))), now=0.0, ok=True)
        everyone = sched.positions()
        assert {j: sched.position(j) for j in everyone} == everyone


def test_an_account_nobody_measured_probes_from_its_ceiling_when_the_queue_is_deep() -> None:
    people = users(*"abcdefgh")
    sched = Scheduler(running_per_user=2, floor=3, ceiling=6)
    sched.set_accounts({"x": True})
    for i in range(6):  # enough to fill the ceiling waits
        sched.add(Entry(i, people[i]))
    probe = drain(sched)
    assert len(probe) == 6  # not the floor's 3
    # The upstream held four: the two it refused come back at once, and the limit is cut to
    # what it held, once per round trip (not ten percent per refusal).
    sched.release(probe[-1], now=0.05, throttled=True)
    sched.release(probe[-2], now=0.06, throttled=True)
    assert sched.accounts["x"].limit == 4


def test_a_shallow_queue_or_a_learned_limit_starts_where_it_is() -> None:
    people = users(*"abcdefgh")
    shallow = Scheduler(running_per_user=2, floor=3, ceiling=6)
    shallow.set_accounts({"x": True})
    for i in range(5):
        shallow.add(Entry(i, people[i]))
    assert len(drain(shallow)) == 3  # the floor: a probe would find out nothing worth it
    learned = Scheduler(running_per_user=2, floor=3, ceiling=6)
    learned.set_accounts({"x": True})
    learned.accounts["x"].resume(4.0)
    for i in range(8):
        learned.add(Entry(i, people[i]))
    assert len(drain(learned)) == 4  # a previous run's limit is the start, not a guess


def refused_at_four() -> AccountLimit:
    """An account whose probe at five was refused in 10 ms while four were held there (one
    round trip: 1 s), so a call out 0.125 s (an eighth of the round trip) was surely taken."""
    account = AccountLimit("x", floor=3, ceiling=20, limit=5.0, round_trip=1.0)
    for sent_at in (0.3, 0.4, 0.5, 0.6, 0.6):
        account.start(1, sent_at)
    assert account.evident_at(0.6) is None  # no refusal yet: nothing tells a refusal's time
    account.on_throttle(now=0.61, sent_at=0.6)
    account.end(0.6, 1)
    assert (account.limit, account.known, account.admitted_after()) == (4, 4, 0.125)
    account.limit = 5.0  # the careful growth reached the next probe
    return account


def test_a_probe_the_upstream_took_raises_the_limit_at_once_not_a_round_trip_later() -> None:
    account = refused_at_four()
    account.start(1, 0.7)  # the probe; the first four are held till 1.3–1.6
    assert account.evident_at(0.7) == pytest.approx(0.825)
    account.settle(0.8)
    assert account.limit == 5  # not refused yet, but not proved taken either
    account.settle(0.825)
    assert account.limit == 6  # five held at once: one more than at the refusal
    account.start(1, 0.825)
    account.settle(0.95)
    assert account.limit == 8  # six proved: two more (slow start, per proof)
    account.start(1, 0.95)
    account.start(1, 0.95)
    account.settle(1.075)
    assert account.limit == 12  # eight held
    assert account.evident_at(1.075) is None  # nothing more out to prove until more start


def test_an_answer_on_its_way_is_not_taken_for_a_slot_still_held() -> None:
    account = refused_at_four()
    # The first call's answer has left the upstream (so it takes the probe) but is slow to
    # reach us: five are out, four are held there.
    account.start(1, 1.3)
    account.settle(1.425)
    assert (account.limit, account.shown) == (5, 0)  # the first is past its round trip
    account.end(0.3, 1)  # the answer arrives, late
    account.start(1, 1.45)  # the next probe, refused at once
    account.on_throttle(now=1.46, sent_at=1.45)
    account.end(1.45, 1)
    account.settle(1.6)
    assert account.limit == 4
    account.start(1, 1.7)
    account.on_throttle(now=1.8, sent_at=1.7)  # a refusal slow to come back, on a busy moment
    account.end(1.7, 1)
    account.start(1, 1.9)
    account.on_throttle(now=1.91, sent_at=1.9)
    assert account.admitted_after() == pytest.approx(0.15)  # not 0.03: the slow one counts


def test_the_dispatcher_is_woken_when_a_probe_is_proved_and_more_start_then() -> None:
    people = users(*"abcdefghij")
    sched = scheduler({"x": 5}, running_per_user=1)
    account = sched.accounts["x"]
    account.round_trip, account.refusal_time, account.known = 1.0, 0.01, 4
    for i, person in enumerate(people):
        sched.add(Entry(i, person))
    assert len(drain(sched, now=0.0)) == 5
    assert sched.next_ready_at(0.0) == 0.125
    assert len(drain(sched, now=0.125)) == 1
    assert sched.next_ready_at(0.125) == 0.25
    assert len(drain(sched, now=0.25)) == 2  # six proved: eight


def test_a_learned_limit_held_full_is_no_proof_of_a_rise() -> None:
    account = AccountLimit("x", floor=3, ceiling=20, round_trip=1.0, refusal_time=0.01)
    account.resume(6.0)
    for _ in range(6):
        account.start(1, 0.0)
    account.settle(0.5)
    assert account.limit == 6  # what a previous run measured, not more


def test_a_refusal_that_came_back_after_another_call_ended_is_no_lower_mark() -> None:
    account = AccountLimit("x", floor=3, ceiling=20, limit=5.0, round_trip=1.0)
    for sent_at in (0.0, 0.2, 0.4, 0.6, 0.95):
        account.start(1, sent_at)
    account.end(0.0, 1)  # the first call's answer arrives before the probe's refusal
    account.on_throttle(now=0.96, sent_at=0.95)
    account.end(0.95, 1)
    assert (account.limit, account.known) == (3, 4)  # cut to the three held; refused at five
    account.limit = 4.0
    account.start(1, 1.0)
    account.settle(1.125)
    assert account.limit == 4  # four held at once is what it held before: no rise


def test_a_slot_an_answer_freed_and_a_new_call_took_during_a_refusal_counts_once() -> None:
    account = AccountLimit("x", floor=3, ceiling=20, limit=5.0, round_trip=1.0, last_throttle=0.5)
    for sent_at in (0.0, 0.1, 0.2, 0.3, 1.0):  # four held at capacity four, then the probe
        account.start(1, sent_at)
    account.end(0.0, 1)  # the first answer comes back while the probe is on its way...
    account.on_success(sent_at=0.0, now=1.01)
    account.start(1, 1.01)  # ...and its slot is taken again at once
    account.on_throttle(now=1.02, sent_at=1.0)
    account.end(1.0, 1)
    # The upstream held four when the probe came (the answered call, not the one sent after
    # it): marked five, a rise would be proved only by a sixth call held at once.
    assert (int(account.limit), account.known) == (4, 4)


def test_a_call_overtaken_by_calls_sent_after_it_is_no_sign_of_fewer_held() -> None:
    account = AccountLimit("x", floor=3, ceiling=20, limit=4.9, round_trip=1.0, last_throttle=0.5)
    for sent_at in (0.0, 0.1, 0.2, 0.3):
        account.start(1, sent_at)
    account.end(0.0, 1)
    account.on_success(sent_at=0.0, now=0.99)
    account.start(1, 1.0)  # its slot taken again...
    account.end(0.1, 1)
    account.on_success(sent_at=0.1, now=1.001)
    account.start(1, 1.001)
    account.start(1, 1.001)  # ...and the next answer's, with a probe, just after
    account.on_throttle(now=1.02, sent_at=1.0)  # the first was refused: the others came first
    account.end(1.0, 1)
    assert (int(account.limit), account.known) == (4, 4)  # not cut to three: a slot idle


def test_a_job_waiting_to_be_told_is_passed_over_until_it_is() -> None:
    a, b = users("a", "b")
    sched = scheduler({"x": 3})
    sched.add(Entry(1, a, not_before=math.inf))  # its place not told yet (Discord)
    sched.add(Entry(2, a))
    sched.add(Entry(3, b, not_before=math.inf))
    assert [s.entry.job_id for s in drain(sched)] == [2]
    assert sched.next_ready_at(0.0) is None  # nothing for a timer: ``told`` wakes it
    assert sched.position(1) > 0  # still waiting, in its turn
    sched.told(1)
    sched.told(3)
    assert sorted(s.entry.job_id for s in drain(sched)) == [1, 3]


def test_rounds_before_a_job_count_the_room_now_then_whole_rounds() -> None:
    people = users(*"abcdefgh")
    sched = scheduler({"x": 4})
    sched.accounts["x"].measured = True
    for i in range(2):
        sched.add(Entry(i, people[i]))
    drain(sched)  # two run: two places free now, four in a round
    entry = Entry(9, people[7])
    sched.add(entry)
    assert [sched.rounds_before(entry, p) for p in (1, 2, 3, 6, 7)] == [0, 0, 1, 1, 2]
    sched.paused = True
    assert sched.rounds_before(entry, 1) is None  # nobody can tell when it resumes


def test_rounds_before_a_job_count_its_user_s_own_jobs_ahead() -> None:
    [a] = users("a")
    sched = scheduler({"x": 20})
    sched.accounts["x"].measured = True
    entries = [Entry(i, a) for i in range(5)]
    for entry in entries:
        sched.add(entry)
    drain(sched)  # two of theirs run, three wait: two at a time after them
    assert [sched.rounds_before(e, 1) for e in entries[2:]] == [1, 1, 2]


def test_rounds_before_count_an_account_at_its_limit_now() -> None:
    sched = Scheduler(running_per_user=2, floor=3, ceiling=6)
    sched.set_accounts({"x": True})
    entry = Entry(1, users("a")[0])
    sched.add(entry)
    assert sched.rounds_before(entry, 3) == 0
    assert sched.rounds_before(entry, 4) == 1
    sched.accounts["x"].healthy = False
    assert sched.rounds_before(entry, 1) is None
