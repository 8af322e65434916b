"""Who runs next, and where: fair across users, and as busy as the upstream allows.

Pure bookkeeping, no I/O, so every rule is unit-tested without a clock or a server:

- users take turns: the next job comes from the waiting user who was served longest ago (a
  newcomer first), so one user's ten jobs never starve another's one; each user's jobs keep
  their order, and a user runs at most ``running_per_user`` jobs at once;
- each account has an adaptive limit (AIMD, as in TCP and Netflix's concurrency-limits): it starts
  at the floor and, while fully used, grows by one per success ("slow start": doubling per round
  trip); a 429/503 cuts it by at least 10%, and down to what the upstream was actually holding
  (our other requests in flight there), since a throttle is a measurement of capacity. For two
  round trips after a throttle it grows only by about one per round trip, so a steady capacity
  sees a probe every few round trips, not a 429 storm; after that it probes fast again, so a
  capacity that rose is found within a few round trips;
- a job pinned to an account (its references live there) waits for that account; others go where
  their uploads are already cached, else to the account with the most room.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from bot.core.domain import UserKey

BACKOFF = 0.9


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

    def __post_init__(self) -> None:
        self.limit = self.limit or float(self.floor)

    @property
    def room(self) -> int:
        return int(self.limit) - self.in_flight if self.healthy else 0

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
class Entry:
    """A queued job as the scheduler sees it."""

    job_id: int
    user: UserKey
    pinned: str | None = None
    preferred: frozenset[str] = frozenset()
    not_before: float = 0.0


@dataclass
class Slot:
    """A job given a place to run: release it exactly once."""

    entry: Entry
    account: str
    sent_at: float


@dataclass
class Scheduler:
    running_per_user: int
    floor: int
    ceiling: int
    accounts: dict[str, AccountLimit] = field(default_factory=dict)
    _queues: dict[UserKey, deque[Entry]] = field(default_factory=dict)
    _running: dict[UserKey, int] = field(default_factory=dict)
    _served: dict[UserKey, int] = field(default_factory=dict)  # user → tick of their last start
    _tick: int = 0

    def set_accounts(self, healthy: dict[str, bool]) -> None:
        """Add new accounts, update health; accounts no longer listed stop taking work."""
        for email in self.accounts.keys() - healthy.keys():
            self.accounts[email].healthy = False
        for email, ok in healthy.items():
            account = self.accounts.setdefault(
                email, AccountLimit(email, floor=self.floor, ceiling=self.ceiling)
            )
            account.healthy = ok

    def healthy_accounts(self) -> list[str]:
        return [a.email for a in self.accounts.values() if a.healthy]

    @property
    def in_flight(self) -> int:
        return sum(a.in_flight for a in self.accounts.values())

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
        for user in self._turn_order():
            if self._running.get(user, 0) >= self.running_per_user:
                continue
            queue = self._queues[user]
            for entry in queue:
                if entry.not_before > now:
                    continue
                account = self._account_for(entry)
                if account is None:
                    continue
                queue.remove(entry)
                self._forget_if_empty(user)
                account.in_flight += 1
                if account.in_flight >= int(account.limit):
                    account.last_full = now
                self._running[user] = self._running.get(user, 0) + 1
                self._tick += 1
                self._served[user] = self._tick
                return Slot(entry, account.email, now)
        return None

    def release(self, slot: Slot, *, now: float, throttled: bool = False, ok: bool = False) -> None:
        """Give the slot back; ``ok`` and ``throttled`` feed the account's limit."""
        account = self.accounts[slot.account]
        if ok:
            account.on_success(slot.sent_at, now)
        elif throttled:
            account.on_throttle(now)
        account.in_flight -= 1
        user = slot.entry.user
        self._running[user] -= 1
        if not self._running[user]:
            del self._running[user]
            if user not in self._queues:
                self._served.pop(user, None)  # gone quiet: no need to remember them

    def next_ready_at(self, now: float) -> float | None:
        """When the earliest job waiting on a backoff becomes ready (None if none waits)."""
        waits = [e.not_before for q in self._queues.values() for e in q if e.not_before > now]
        return min(waits, default=None)

    def _account_for(self, entry: Entry) -> AccountLimit | None:
        if entry.pinned is not None:
            account = self.accounts.get(entry.pinned)
            return account if account is not None and account.room > 0 else None
        free = [a for a in self.accounts.values() if a.room > 0]
        if not free:
            return None
        return max(free, key=lambda a: (a.email in entry.preferred, a.room))

    def _turn_order(self) -> list[UserKey]:
        """Waiting users, the one served longest ago first (never served: first, by arrival)."""
        return sorted(self._queues, key=lambda user: self._served.get(user, 0))

    def _forget_if_empty(self, user: UserKey) -> None:
        if not self._queues[user]:
            del self._queues[user]
