"""Who runs next, and where: fair across users, and as busy as each road allows.

Pure bookkeeping, no I/O, so every rule is unit-tested without a clock or a server:

- users take turns: the next job comes from the waiting user who was served longest ago (a
  newcomer first), so one user's ten jobs never starve another's one; each user's jobs keep
  their order, and a user runs at most ``running_per_user`` jobs at once, whichever road serves;
- a job lists its roads in the operator's order (``Route``: the provider, and the calls it
  makes there: a count of four is one call on Flow, four on Gemini). It runs on the first road
  with a healthy unit and waits for that road while it is merely full; the next road takes over
  only when none of the first's units can serve (an operator problem took them out);
- a road's capacity comes in units, of two kinds. A Flow account has an adaptive limit (AIMD,
  as in TCP and Netflix's concurrency-limits): it starts at the floor (at the ceiling, for an
  account nobody measured while more jobs wait than that) and, while fully used, grows by one
  per success ("slow start": doubling per round trip); a 429/503 cuts it by at least 10% once
  per round trip, and down to what the upstream was actually holding (our other requests in
  flight there), since a throttle is a measurement of capacity. For two round trips after a
  throttle it grows by one per round trip, so a steady capacity sees one probe a round trip
  (a rise waits at most a round to be found), not a 429 storm; after that it probes fast
  again. A probe the upstream is proved to have taken (out longer than a refusal takes, every
  other slot still held there) says its capacity rose: the limit grows at once, doubling what
  was proved beyond the last refusal per proof, not per round trip (``AccountLimit.settle``;
  ``next_ready_at`` wakes the dispatcher when one is due). Any other road is one unit with a
  plan's fixed limits (``RoadLimit``): calls in flight, and calls started in any minute;
- a job pinned to a unit (its references live there) waits for that unit; one whose
  characters live on a unit (its ``home``) waits for it while it is healthy, and else goes
  where any other job would (its characters are made again there, or sent as pictures);
  others go where their uploads are already cached, else to the unit with the most room;
- while ``paused`` (the operator's switch), nothing is handed out; jobs keep their places.
- a job a Flow account refused as over capacity (429/503) goes back to the head of its user's
  queue with its turn, and takes the next slot that frees: at once on an account that did not
  refuse it, on one that did once another request there has ended, or on any after a pause (for
  when nothing frees: the upstream is refusing all). A probe over capacity so costs one round
  trip, not a retry timer, and the upstream's capacity stays in use meanwhile. A fixed-limit
  road's 429 says the plan allows less than configured: that is waited out.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from bot.core.people import UserKey
from bot.core.providers import ProviderLimits
from bot.core.units import AccountLimit, RoadLimit, Unit


@dataclass(frozen=True)
class Route:
    """A road a job may run on, and the calls it makes there."""

    provider: str
    calls: int = 1


@dataclass
class Entry:
    """A queued job as the scheduler sees it."""

    job_id: int
    user: UserKey
    pinned: str | None = None
    preferred: frozenset[str] = frozenset()
    home: str | None = None  # where its characters live: waited for while it serves
    not_before: float = 0.0
    # The roads to try, in order; None: any unit, one call (a single road); (): none serves it.
    routes: tuple[Route, ...] | None = None

    @property
    def providers(self) -> tuple[str, ...] | None:
        return None if self.routes is None else tuple(r.provider for r in self.routes)

    # The accounts that refused this job as over capacity, each with its ``freed`` count then.
    refused: dict[str, int] = field(default_factory=dict)

    def may_run_on(self, unit: Unit, now: float) -> bool:
        """Not before ``not_before``, unless the job was refused for capacity and a slot
        freed since on a Flow account that refused it, or the account never did."""
        if now >= self.not_before:
            return True
        if not self.refused or not isinstance(unit, AccountLimit):
            return False  # a plain wait (a retry timer), or a fixed road's 429 waited out
        refused_at = self.refused.get(unit.email)
        return refused_at is None or unit.freed > refused_at


@dataclass
class Slot:
    """A job given a place to run: release it exactly once. ``account`` is the unit (a Flow
    account, else the provider's name); ``held`` the slots it holds there."""

    entry: Entry
    account: str
    sent_at: float
    provider: str = "flow"
    held: int = 1
    turn_before: int = 0  # the user's turn before this start (a refused job gets it back)
    freed: int = 0  # the account's ``freed`` count at the start (a refusal awaits one after)


@dataclass
class Scheduler:
    running_per_user: int
    floor: int
    ceiling: int
    accounts: dict[str, AccountLimit] = field(default_factory=dict)  # adaptive: Flow's accounts
    roads: dict[str, RoadLimit] = field(default_factory=dict)  # fixed: one per other road
    _queues: dict[UserKey, deque[Entry]] = field(default_factory=dict)
    _running: dict[UserKey, int] = field(default_factory=dict)
    _served: dict[UserKey, int] = field(default_factory=dict)  # user → tick of their last start
    _tick: int = 0
    paused: bool = False

    def set_accounts(self, healthy: dict[str, bool], provider: str = "flow") -> None:
        """Add ``provider``'s new accounts, update health; accounts no longer listed stop
        taking work."""
        for name, known in self.accounts.items():
            if known.provider == provider and name not in healthy:
                known.healthy = False
        for email, ok in healthy.items():
            account = self.accounts.setdefault(
                email, AccountLimit(email, self.floor, self.ceiling, provider=provider)
            )
            account.healthy = ok

    def set_road(self, provider: str, limits: ProviderLimits) -> None:
        """A road with fixed limits: one unit, named after it."""
        self.roads.setdefault(provider, RoadLimit.of(provider, limits))

    def unit(self, name: str) -> Unit | None:
        return self.accounts.get(name) or self.roads.get(name)

    @property
    def units_by_name(self) -> dict[str, Unit]:
        """Every road's units, adaptive and fixed."""
        return {**self.accounts, **self.roads}

    def healthy_accounts(self, provider: str | None = None) -> list[str]:
        """The units that can take work (of ``provider`` only, if named)."""
        return [
            name
            for name, unit in self.units_by_name.items()
            if unit.healthy and provider in (None, unit.provider)
        ]

    @property
    def in_flight(self) -> int:
        return sum(unit.in_flight for unit in self.units_by_name.values())

    def add(self, entry: Entry, *, front: bool = False) -> None:
        queue = self._queues.setdefault(entry.user, deque())
        if front:
            queue.appendleft(entry)
        else:
            queue.append(entry)

    def remove(self, job_id: int) -> Entry | None:
        for user, queue in self._queues.items():
            for entry in queue:
                if entry.job_id == job_id:
                    queue.remove(entry)
                    self._forget_if_empty(user)
                    return entry
        return None

    def told(self, job_id: int) -> None:
        """A job that waited for its place to be told (``not_before`` infinite) may start."""
        for queue in self._queues.values():
            for entry in queue:
                if entry.job_id == job_id and entry.not_before == math.inf:
                    entry.not_before = 0.0

    def entries(self) -> list[Entry]:
        return [e for q in self._queues.values() for e in q]

    def waiting(self, user: UserKey) -> int:
        return len(self._queues.get(user, ()))

    def position(self, job_id: int) -> int:
        """1 for "next", counting the jobs that taking turns will start before this one; 0 if
        the job isn't waiting."""
        for user, queue in self._queues.items():
            for depth, entry in enumerate(queue):
                if entry.job_id == job_id:
                    return self._place(user, depth)
        return 0

    def positions(self) -> dict[int, int]:
        """Every waiting job's position, in one pass: round *r* starts the *r*-th job of each
        waiting user, in their turn order."""
        order = [self._queues[user] for user in self._turn_order()]
        rounds = [0] * max(map(len, order), default=0)  # users with a job in each round
        for queue in order:
            for depth in range(len(queue)):
                rounds[depth] += 1
        before = [0]  # jobs in the rounds before each round
        for count in rounds:
            before.append(before[-1] + count)
        earlier = [0] * len(rounds)  # users earlier in turn with a job in each round
        found = {}
        for queue in order:
            for depth, entry in enumerate(queue):
                found[entry.job_id] = before[depth] + earlier[depth] + 1
                earlier[depth] += 1
        return found

    def rounds_before(self, entry: Entry, position: int) -> int | None:
        """How many rounds of calls start before the queued ``entry`` at ``position`` does (0:
        it starts now): on the units it may run on, at their limits now (an account still to be
        probed may start more, one about to be cut fewer: a guess), and among its user's own
        (``running_per_user`` a round); None if no unit can take it."""
        units = [u for u in self.units(entry) if u.healthy]
        free = sum(max(0, u.room) for u in units)
        width = sum(u.room + u.in_flight for u in units)
        if self.paused or width <= 0:
            return None
        rounds = 0 if position <= free else 1 + (position - free - 1) // width
        queue = self._queues.get(entry.user, deque())
        mine = self._running.get(entry.user, 0) + next(
            (depth for depth, e in enumerate(queue) if e is entry), len(queue)
        )
        return max(rounds, mine // self.running_per_user)

    def _place(self, user: UserKey, depth: int) -> int:
        """The position of ``user``'s job at ``depth`` in their queue (0: its head; a user not
        waiting yet joins the turns last): as ``positions`` counts it, without counting the
        others' jobs one by one (each prompt of a burst asks, and a thousand may wait)."""
        served = self._served.get(user, 0)
        place, passed = depth + 1, False
        for other, queue in self._queues.items():
            if other == user:
                passed = True
                continue
            place += min(len(queue), depth)  # their jobs in the rounds before this one
            theirs = self._served.get(other, 0)
            earlier = theirs < served or (theirs == served and not passed)
            if earlier and len(queue) > depth:
                place += 1  # theirs in this round, before it
        return place

    def take(self, now: float) -> Slot | None:
        """The next job to start and its account, or None if nothing can start now."""
        for account in self.accounts.values():
            account.settle(now)
        if self.paused:
            return None
        self._probe_if_deep()
        if not any(unit.fits(1, now) for unit in self.units_by_name.values()):
            return None  # every unit is full: nothing starts, so no queued job need be looked at
        for user in self._turn_order():
            if self._running.get(user, 0) >= self.running_per_user:
                continue
            queue = self._queues[user]
            for entry in queue:
                placed = self._unit_for(entry, now)
                if placed is None:
                    continue
                unit, calls = placed
                queue.remove(entry)
                self._forget_if_empty(user)
                held = unit.start(calls, now)
                self._running[user] = self._running.get(user, 0) + 1
                self._tick += 1
                turn_before = self._served.get(user, 0)
                self._served[user] = self._tick
                freed = unit.freed if isinstance(unit, AccountLimit) else 0
                return Slot(entry, unit.name, now, unit.provider, held, turn_before, freed)
        return None

    def _probe_if_deep(self) -> None:
        """An account still at the floor's guess (no limit learned before, never refused, not
        grown) goes up to its ceiling once the jobs waiting could fill it: a ramp from the
        floor would leave capacity idle for several round trips, and with jobs of equal length
        a late start costs a whole round at the end. The probe costs one quick refusal per slot
        the upstream hasn't got."""
        unmeasured = [
            a for a in self.accounts.values() if not a.measured and a.healthy and a.limit == a.floor
        ]
        if unmeasured:
            waiting = sum(len(queue) for queue in self._queues.values())
            for account in unmeasured:
                if waiting + account.in_flight >= account.ceiling:
                    account.probe()

    def release(self, slot: Slot, *, now: float, throttled: bool = False, ok: bool = False) -> None:
        """Give the slot back; ``ok`` and ``throttled`` feed the account's limit."""
        account = self.units_by_name[slot.account]
        if ok:
            account.on_success(slot.sent_at, now)
        elif throttled:
            account.on_throttle(now, slot.sent_at)
        if isinstance(account, AccountLimit):
            if throttled:
                # A slot freed since the request was sent may have been held when it arrived,
                # and may be taken now: not only one freed after the job is queued again
                # (after the store has noted it). Missed, the last jobs of a burst would leave
                # a slot idle until the job's pause ends (a round, at 1 s a call).
                slot.entry.refused[slot.account] = slot.freed
            else:
                account.freed += 1
        account.end(slot.sent_at, slot.held)
        user = slot.entry.user
        self._running[user] -= 1
        if not self._running[user]:
            del self._running[user]
            if user not in self._queues:
                self._served.pop(user, None)  # gone quiet: no need to remember them

    def retry(self, slot: Slot, *, pause_until: float) -> None:
        """Queue a job refused as over capacity again (after ``release(throttled=True)``): at
        the head of its user's queue, with the turn it had, for the next slot that frees on an
        account that refused it, any slot on another, or any after ``pause_until``."""
        entry = slot.entry
        entry.not_before = pause_until  # a fixed road's refusal is waited out, not raced for
        user = entry.user
        self._served[user] = min(self._served.get(user, slot.turn_before), slot.turn_before)
        self.add(entry, front=True)

    def next_ready_at(self, now: float) -> float | None:
        """When the earliest job waiting on a backoff, or on a road's minute, may become
        ready (None if none waits)."""
        # An infinite wait is for ``told``, which wakes the dispatcher itself.
        waits = [
            e.not_before for q in self._queues.values() for e in q if now < e.not_before < math.inf
        ]
        if self._queues:
            waits += filter(None, (unit.next_room_at(now) for unit in self.roads.values()))
            waits += filter(None, (a.evident_at(now) for a in self.accounts.values()))
        return min(waits, default=None)

    def units(self, entry: Entry) -> list[Unit]:
        """The units ``entry`` may ever run on, healthy or not."""
        providers = entry.providers
        if entry.pinned is not None:
            unit = self.unit(entry.pinned)
            found = [unit] if unit is not None else []
        else:
            found = list(self.units_by_name.values())
        return [u for u in found if providers is None or u.provider in providers]

    def serves(self, entry: Entry) -> bool:
        """Whether some road of ``entry`` (its pinned unit, if pinned) can take it now or once
        there is room."""
        return any(unit.healthy for unit in self.units(entry))

    def _unit_for(self, entry: Entry, now: float) -> tuple[Unit, int] | None:
        """The unit to start ``entry`` on now, and its calls there; None: it waits."""
        routes = (Route("", 1),) if entry.routes is None else entry.routes
        for route in routes:
            units = [
                u
                for u in self.units_by_name.values()
                if u.healthy and route.provider in ("", u.provider)
            ]
            if not units:
                continue  # this road can't serve now: the next one takes over
            if entry.pinned is not None:
                unit = self.unit(entry.pinned)
                if unit is None or unit not in units or not unit.fits(route.calls, now):
                    return None
                if not entry.may_run_on(unit, now):
                    return None
                return unit, route.calls
            home = self.unit(entry.home) if entry.home is not None else None
            if home is not None and home in units:
                if home.fits(route.calls, now) and entry.may_run_on(home, now):
                    return home, route.calls
                return None
            free = [u for u in units if u.fits(route.calls, now) and entry.may_run_on(u, now)]
            if not free:
                return None  # the road serves, it is only full: wait for it
            return max(free, key=lambda u: (u.name in entry.preferred, u.room)), route.calls
        return None

    def _turn_order(self) -> list[UserKey]:
        """Waiting users, the one served longest ago first (never served: first, by arrival)."""
        return sorted(self._queues, key=lambda user: self._served.get(user, 0))

    def _forget_if_empty(self, user: UserKey) -> None:
        if not self._queues[user]:
            del self._queues[user]
