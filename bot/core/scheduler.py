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
  as in TCP and Netflix's concurrency-limits): it starts at the floor and, while fully used,
  grows by one per success ("slow start": doubling per round trip); a 429/503 cuts it by at
  least 10%, and down to what the upstream was actually holding (our other requests in flight
  there), since a throttle is a measurement of capacity. For two round trips after a throttle
  it grows only by about one per round trip, so a steady capacity sees a probe every few round
  trips, not a 429 storm; after that it probes fast again. Any other road is one unit with a
  plan's fixed limits (``RoadLimit``): calls in flight, and calls started in any minute;
- a job pinned to a unit (its references live there) waits for that unit; one whose
  characters live on a unit (its ``home``) waits for it while it is healthy, and else goes
  where any other job would (its characters are made again there, or sent as pictures);
  others go where their uploads are already cached, else to the unit with the most room;
- while ``paused`` (the operator's switch), nothing is handed out; jobs keep their places.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from bot.core.domain import UserKey
from bot.core.providers import ProviderLimits

BACKOFF = 0.9
# The roads count a minute from when a request reaches them, a little after we count it here.
MINUTE = 61.0


@dataclass
class AccountLimit:
    """One account's adaptive concurrency limit and what runs on it now."""

    email: str
    floor: int
    ceiling: int
    limit: float = 0.0
    in_flight: int = 0
    healthy: bool = True
    round_trip: float = 0.0
    last_throttle: float = -math.inf
    last_full: float = -math.inf
    provider: str = "flow"

    def __post_init__(self) -> None:
        self.limit = self.limit or float(self.floor)

    @property
    def name(self) -> str:
        return self.email

    @property
    def room(self) -> int:
        return int(self.limit) - self.in_flight if self.healthy else 0

    def fits(self, calls: int, now: float) -> bool:
        return self.room >= self._held(calls)

    def start(self, calls: int, now: float) -> int:
        """Hold slots for ``calls`` calls; how many were held."""
        held = self._held(calls)
        self.in_flight += held
        if self.in_flight >= int(self.limit):
            self.last_full = now
        return held

    def _held(self, calls: int) -> int:
        # A job larger than the whole limit holds all of it (never none).
        return max(1, min(calls, int(self.limit)))

    def on_success(self, sent_at: float, now: float) -> None:
        """A request sent at ``sent_at`` succeeded."""
        took = now - sent_at
        self.round_trip = took if not self.round_trip else 0.8 * self.round_trip + 0.2 * took
        # Grow only if the limit was reached while this request ran: an idle account proves
        # nothing. (Asking "is it full now?" would miss all but the first of a round's answers.)
        if self.last_full >= sent_at:
            calm = now - self.last_throttle > 2 * self.round_trip
            step = 1.0 if calm else 1.0 / self.limit
            self.limit = min(float(self.ceiling), self.limit + step)

    def on_throttle(self, now: float) -> None:
        """A request was refused as over capacity; call before it leaves ``in_flight``."""
        self.last_throttle = now
        held = self.in_flight - 1
        self.limit = max(float(self.floor), min(self.limit * BACKOFF, float(held)))


@dataclass
class RoadLimit:
    """A road with a plan's fixed limits as one unit: at most ``concurrency`` calls in flight,
    and at most ``per_minute`` started in any ``MINUTE`` (a token bucket whose every token
    comes back one minute after it was spent, so no minute sees more than the plan allows, as
    the road counts; a bucket refilled at a steady rate would let twice that through at the
    edge of a minute). A job larger than the plan holds all of it and the road paces the rest."""

    provider: str
    concurrency: int | None = None
    per_minute: int | None = None
    in_flight: int = 0
    healthy: bool = True
    spent: deque[float] = field(default_factory=deque)

    @classmethod
    def of(cls, provider: str, limits: ProviderLimits) -> RoadLimit:
        return cls(provider, limits.concurrency, limits.starts_per_minute)

    @property
    def name(self) -> str:
        return self.provider

    @property
    def room(self) -> int:
        if not self.healthy:
            return 0
        return (self.concurrency or 1_000_000) - self.in_flight

    def tokens(self, now: float) -> int:
        while self.spent and now - self.spent[0] >= MINUTE:
            self.spent.popleft()
        return (self.per_minute or 1_000_000) - len(self.spent)

    def fits(self, calls: int, now: float) -> bool:
        tokens = max(1, min(calls, self.per_minute or calls))
        return self.room >= self._held(calls) and self.tokens(now) >= tokens

    def start(self, calls: int, now: float) -> int:
        held = self._held(calls)
        self.in_flight += held
        self.spent.extend([now] * calls)
        return held

    def _held(self, calls: int) -> int:
        return max(1, min(calls, self.concurrency or calls))

    def next_room_at(self, now: float) -> float | None:
        """When a spent token comes back, if the bucket is what holds jobs back."""
        if self.per_minute is None or self.tokens(now) > 0 or not self.spent:
            return None
        return self.spent[0] + MINUTE

    def on_success(self, sent_at: float, now: float) -> None:
        """Fixed limits don't move."""

    def on_throttle(self, now: float) -> None:
        """A 429 here means the plan allows less than configured: the job waits out the
        road's Retry-After; the limits stay (the operator's to correct)."""


Unit = AccountLimit | RoadLimit


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


@dataclass
class Slot:
    """A job given a place to run: release it exactly once. ``account`` is the unit (a Flow
    account, else the provider's name); ``held`` the slots it holds there."""

    entry: Entry
    account: str
    sent_at: float
    provider: str = "flow"
    held: int = 1


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

    def entries(self) -> list[Entry]:
        return [e for q in self._queues.values() for e in q]

    def waiting(self, user: UserKey) -> int:
        return len(self._queues.get(user, ()))

    def position(self, job_id: int) -> int:
        """1 for "next", counting the jobs that taking turns will start before this one."""
        turns = self._turn_order()
        for user, queue in self._queues.items():
            for depth, entry in enumerate(queue):
                if entry.job_id == job_id:
                    turn = turns.index(user)
                    ahead = depth
                    for other in turns:
                        if other != user:
                            earlier = turns.index(other) < turn
                            ahead += min(len(self._queues[other]), depth + (1 if earlier else 0))
                    return ahead + 1
        return 0

    def take(self, now: float) -> Slot | None:
        """The next job to start and its account, or None if nothing can start now."""
        if self.paused:
            return None
        for user in self._turn_order():
            if self._running.get(user, 0) >= self.running_per_user:
                continue
            queue = self._queues[user]
            for entry in queue:
                if entry.not_before > now:
                    continue
                placed = self._unit_for(entry, now)
                if placed is None:
                    continue
                unit, calls = placed
                queue.remove(entry)
                self._forget_if_empty(user)
                held = unit.start(calls, now)
                self._running[user] = self._running.get(user, 0) + 1
                self._tick += 1
                self._served[user] = self._tick
                return Slot(entry, unit.name, now, unit.provider, held)
        return None

    def release(self, slot: Slot, *, now: float, throttled: bool = False, ok: bool = False) -> None:
        """Give the slot back; ``ok`` and ``throttled`` feed the account's limit."""
        account = self.units_by_name[slot.account]
        if ok:
            account.on_success(slot.sent_at, now)
        elif throttled:
            account.on_throttle(now)
        account.in_flight -= slot.held
        user = slot.entry.user
        self._running[user] -= 1
        if not self._running[user]:
            del self._running[user]
            if user not in self._queues:
                self._served.pop(user, None)  # gone quiet: no need to remember them

    def next_ready_at(self, now: float) -> float | None:
        """When the earliest job waiting on a backoff, or on a road's minute, may become
        ready (None if none waits)."""
        waits = [e.not_before for q in self._queues.values() for e in q if e.not_before > now]
        if self._queues:
            waits += filter(None, (unit.next_room_at(now) for unit in self.roads.values()))
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
                return unit, route.calls
            home = self.unit(entry.home) if entry.home is not None else None
            if home is not None and home in units:
                return (home, route.calls) if home.fits(route.calls, now) else None
            free = [u for u in units if u.fits(route.calls, now)]
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
