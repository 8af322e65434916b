"""What one unit of a road's capacity allows: a Flow account's adaptive limit (AIMD), or the
fixed limits of another road's plan. The scheduler (``bot.core.scheduler``) decides who runs
where; these say how much room each unit has and how a call's ending moves it.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

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
    freed: int = 0  # slots given back for any reason but a refusal: what a refused job awaits
    measured: bool = False  # its limit was learned (stored, or cut by a refusal), not guessed
    # When the latest successes were answered (as many as the limit can be).
    answered: deque[float] = field(default_factory=deque)
    refusal_time: float = 0.0  # how long refusals take to come back: the slowest of late
    known: int = 0  # the calls the upstream held when it last refused (0: never measured)
    shown: int = 0  # the most calls it was proved to hold at once since (``settle``)
    out: list[float] = field(default_factory=list)  # when each slot held was taken, in order

    def __post_init__(self) -> None:
        self.limit = self.limit or float(self.floor)
        self.answered = deque(maxlen=self.ceiling)

    def resume(self, limit: float) -> None:
        """Start from a limit learned before (by a previous run), within the bounds."""
        self.limit = min(float(self.ceiling), max(float(self.floor), limit))
        self.measured = True
        self.known = int(self.limit)

    def probe(self) -> None:
        """Go up to the ceiling instead of ramping up from the floor (``Scheduler`` does it for
        an account nobody measured, once the jobs waiting could fill it): what the upstream
        can't hold it refuses at once, and those refusals cut the limit to what it held,
        within one round trip."""
        self.limit, self.measured = float(self.ceiling), True

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
        self.out.extend([now] * held)
        if self.in_flight >= int(self.limit):
            self.last_full = now
        return held

    def end(self, sent_at: float, held: int) -> None:
        """The ``held`` slots taken at ``sent_at`` are free again."""
        self.in_flight -= held
        at = bisect.bisect_left(self.out, sent_at)
        del self.out[at : at + held]

    def _held(self, calls: int) -> int:
        # A job larger than the whole limit holds all of it (never none).
        return max(1, min(calls, int(self.limit)))

    def on_success(self, sent_at: float, now: float) -> None:
        """A request sent at ``sent_at`` succeeded."""
        self.answered.append(now)
        took = now - sent_at
        self.round_trip = took if not self.round_trip else 0.8 * self.round_trip + 0.2 * took
        # Grow only if the limit was reached while this request ran: an idle account proves
        # nothing. (Asking "is it full now?" would miss all but the first of a round's answers.)
        if self.last_full >= sent_at:
            # Near a refusal, one more per round trip, so that the next probe goes with the next
            # round: by 1 / limit a round's answers add just under one, and a rise then waited
            # one round or two for the probe that finds it.
            calm = now - self.last_throttle > 2 * self.round_trip
            step = 1.0 if calm else 1.0 / int(self.limit)
            grown = self.limit + step
            if math.isclose(grown, round(grown)):  # n × (1 / n) in floats may fall short of one
                grown = float(round(grown))
            self.limit = min(float(self.ceiling), grown)

    def on_throttle(self, now: float, sent_at: float = math.inf) -> None:
        """A request sent at ``sent_at`` was refused as over capacity; call before it leaves
        ``in_flight``. One cut per round trip: a request sent before the last cut met the same
        overload, and only brings the limit down to what the upstream held (the others in
        flight), so that a round of refusals doesn't compound ten percent each.

        What the upstream held counts the requests answered since this one was sent: they
        were there when it arrived, though their answers may have come back before its
        refusal (at the end of a round they all come back at once). The limit is cut no lower
        than every request that may have been there (those sent since too: one may have
        overtaken it on the way), so that no slot is left idle for a round; the mark a rise
        must pass (``known``) counts only those out when it was sent (with those sent since in
        the slots the answers freed, it was one too high, and a rise to capacity c was proved
        only by c + 1 held)."""
        answered = sum(1 for at in self.answered if at > sent_at)
        sent_since = len(self.out) - bisect.bisect_right(self.out, sent_at)
        # What it refused at, for a proof of more room (``settle``): at least one below the
        # limit that met the refusal, a mark no call that ended unseen can lower.
        held = self.in_flight - 1 - sent_since + answered
        self.known, self.shown = max(held, int(self.limit) - 1), 0
        cut = self.limit if sent_at <= self.last_throttle else self.limit * BACKOFF
        self.limit = max(float(self.floor), min(cut, float(self.in_flight - 1 + answered)))
        self.last_throttle = max(self.last_throttle, now)
        self.measured = True
        if sent_at < math.inf:  # one slow refusal weighs on the next few proofs
            self.refusal_time = max(now - sent_at, self.refusal_time / 2)

    def admitted_after(self) -> float | None:
        """How long a call must have been out to prove the upstream took it (None: no refusal
        seen yet to tell). A refusal comes back at once, and its time holds both ways' delays:
        a call out three times as long as the slowest refusal of late (each later one halves
        its weight) was admitted. An eighth of a round trip at least, against a slow moment of
        either process (a refusal that took 86 ms after ones of 10–30 ms, at 0.3 s a round)."""
        if not self.refusal_time or not self.round_trip:
            return None
        return max(3 * self.refusal_time, self.round_trip / 8)

    def evident_at(self, now: float) -> float | None:
        """When the calls out now will prove the upstream holding every slot of the limit at
        once, and more than it held when it last refused (None: they can't)."""
        proof = self._proof()
        if proof is None:
            return None
        wait, need = proof
        for first, last in zip(self.out, self.out[need - 1 :], strict=False):
            if last + wait > now and last - first <= self.round_trip - wait:
                return last + wait
        return None

    def _proof(self) -> tuple[float, int] | None:
        """How long calls must have been out, and how many of them, to prove more room."""
        wait = self.admitted_after()
        need = max(int(self.limit), self.shown + 1, self.known + 1)
        return None if wait is None or not self.healthy or need > self.ceiling else (wait, need)

    def settle(self, now: float) -> None:
        """Grow as soon as the upstream is proved to hold more than when it last refused: its
        capacity rose. The proof is the calls out for at least ``admitted_after`` (the upstream
        took them) and at most a round trip (not yet due back), all held there at once. A call
        whose answer was on its way when the probe was sent is not one of them: it was out
        longer than a round trip by the time the probe could be proved (counting those raised
        the limit at a fixed capacity). The limit grows by what was proved beyond the last
        refusal (one more, then two, four...: slow start, once per ``admitted_after`` instead
        of once per round trip); refusals past the new capacity come back at once and cut it
        there (``on_throttle``)."""
        proof = self._proof()
        if proof is None:
            return
        wait, need = proof
        out = self.out
        held = bisect.bisect_right(out, now - wait) - bisect.bisect_left(out, now - self.round_trip)
        if held < need:
            return
        self.shown = held
        self.limit = min(float(self.ceiling), max(self.limit, float(2 * held - self.known)))


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

    def end(self, sent_at: float, held: int) -> None:
        self.in_flight -= held

    def _held(self, calls: int) -> int:
        return max(1, min(calls, self.concurrency or calls))

    def next_room_at(self, now: float) -> float | None:
        """When a spent token comes back, if the bucket is what holds jobs back."""
        if self.per_minute is None or self.tokens(now) > 0 or not self.spent:
            return None
        return self.spent[0] + MINUTE

    def on_success(self, sent_at: float, now: float) -> None:
        """Fixed limits don't move."""

    def on_throttle(self, now: float, sent_at: float = math.inf) -> None:
        """A 429 here means the plan allows less than configured: the job waits out the
        road's Retry-After; the limits stay (the operator's to correct)."""


Unit = AccountLimit | RoadLimit
