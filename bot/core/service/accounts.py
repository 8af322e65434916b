"""The roads' capacity units: which there are and which can serve (a Flow account each, one for
every other road), the operator problems that took them (or a whole road) out, and whether a
job can still be run at all.

Each problem is an incident (``incidents``), told to the admins once when it begins and once
when it is over; a pooled road's units are those its listing names (``listing``). A road that
can't serve while another does is an incident for the admins only: jobs go to the roads that
serve. While no road can serve anyone (an outage: every key refused, no account linked, Flow
never answering and no other road, every unit out), new requests are refused at once with the
operator sentence and queued jobs get it after a short grace; the refresh loop keeps looking
meanwhile, and the bot serves again by itself when a road does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.core import texts
from bot.core.monitoring import AccountState, Outcome
from bot.core.policy import Access, Tuning
from bot.core.providers import Pooled
from bot.core.scheduler import Entry, Scheduler
from bot.core.service.delivery import Delivery
from bot.core.service.incidents import (
    PASSING,
    UNLISTED,
    WHOLE,
    WHOLE_ROAD,
    Incidents,
    incident_kind,
)
from bot.core.service.learned import LearnedLimits
from bot.core.service.listing import Listing
from bot.core.service.roads import Roads
from bot.core.units import AccountLimit
from bot.core.upstream import InsufficientCredits, OperatorError

log = logging.getLogger(__name__)

# While no unit can serve, the units are re-read at least this often (seconds).
REFRESH_WHILE_DOWN = 30.0

# A one-key road an operator problem took out is tried again this long after (seconds), twice
# as long each time the problem is met again there, at most TRY_AGAIN_AT_MOST. Nothing tells the
# bot that a key was unblocked or credits bought, so a job there is the probe; but not at every
# refresh: until then it is out, and says so (``/healthz``, requests refused at once).
TRY_AGAIN_AFTER = 600.0
TRY_AGAIN_AT_MOST = 3600.0


@dataclass(frozen=True)
class Stranded:
    """Why no unit will run a job: the sentence for its owner, and how the job counts."""

    message: str
    outcome: Outcome


_OPERATOR = Stranded(texts.OPERATOR, Outcome.OPERATOR)
_UNAVAILABLE = Stranded(texts.UNAVAILABLE, Outcome.FAILED)


class Accounts:
    def __init__(
        self,
        roads: Roads,
        scheduler: Scheduler,
        access: Access,
        tuning: Tuning,
        clock: Callable[[], float],
        delivery: Delivery,
        learned: LearnedLimits,
        wake: asyncio.Event,
    ) -> None:
        self._roads = roads
        self._scheduler = scheduler
        self._tuning = tuning
        self._clock = clock
        self._delivery = delivery
        self.learned = learned  # read as units are named
        self._wake = wake
        self._incidents = Incidents(clock)
        self._listing = Listing(scheduler, access, self._incidents, learned, self._held)
        self._down_since: dict[str, float] = {}
        # A one-key road, or an account out for an unlisted kind → (times, until when).
        self._held_out: dict[str, tuple[int, float]] = {}
        self._outage_since: float | None = None
        self._outage_began = asyncio.Event()
        self._refreshed = False

    # What can serve.

    @property
    def known(self) -> bool:
        """Whether the roads were asked for their units, and the asking is over."""
        return self._refreshed

    @property
    def serving(self) -> bool:
        """Whether some unit, on any road, can take a job now."""
        return bool(self._scheduler.healthy_accounts())

    def states(self) -> tuple[AccountState, ...]:
        """Every unit: a Flow account's adaptive limit, another road's fixed one (0: none)."""
        return tuple(
            AccountState(
                name,
                int(unit.limit) if isinstance(unit, AccountLimit) else unit.concurrency or 0,
                unit.in_flight,
                unit.healthy,
            )
            for name, unit in self._scheduler.units_by_name.items()
        )

    def problems(self) -> list[tuple[str | None, str]]:
        """The open incidents, each road's whole-road ones first: (account or None, sentence)."""
        return self._incidents.problems()

    def stranded(self, entry: Entry, *, waited: float | None = None) -> Stranded | None:
        """Why no unit will run this job, or None if one will (or may yet).

        While no road can serve anyone, a new request (``waited=inf``) is told at once and a
        queued one once the outage has lasted ``outage_grace_seconds``, so that a blip passes
        unseen. While some road serves, a job only roads that can't serve would run is told
        at once when an operator problem took them out; a unit merely down (or reported
        unhealthy) is given ``job_deadline_seconds`` to come back.
        """
        if not self.known:
            return None  # the start hasn't asked yet: wait for it
        if entry.routes is not None and not entry.routes:
            return Stranded(texts.NOT_SERVED, Outcome.REFUSED)  # no road we use serves it
        now = self._clock()
        if not self.serving:
            since = now if self._outage_since is None else self._outage_since
            lasted = now - since if waited is None else waited
            if lasted < self._tuning.outage_grace_seconds:
                return None
            passing = all(kind in PASSING for kind, _, _ in self._incidents)
            return _UNAVAILABLE if self._incidents and passing else _OPERATOR
        if self._scheduler.serves(entry):
            return None
        account = entry.pinned
        units = self._scheduler.units(entry)
        if account is not None and self._listing.pinned_gone(account):
            # Its references live on a unit we don't use (any more).
            return Stranded(texts.REFERENCE_NOT_USABLE, Outcome.REFUSED)
        roads = {unit.provider for unit in units} or set(entry.providers or ())
        for kind, road, on in self._incidents:
            if kind in PASSING or road not in roads:
                continue
            if on is WHOLE or account is None or on == account:
                return _OPERATOR
        if units:
            down = min(now - self._down_since.get(unit.name, now) for unit in units)
        else:  # its roads named no unit yet: down since a problem met there, if any
            met = [since for (_, road, _), since in self._incidents.since() if road in roads]
            if not met:
                return None  # they haven't answered yet
            down = now - min(met)
        if (down if waited is None else waited) > self._tuning.job_deadline_seconds:
            return _UNAVAILABLE
        return None

    # Keeping up with the roads.

    @property
    def refresh_interval(self) -> float:
        """Seconds until the next refresh: ``accounts_refresh_seconds``, and while no unit can
        serve at most ``REFRESH_WHILE_DOWN`` and twice per grace, so that queued jobs are
        answered about when the grace ends, and a recovery is seen soon."""
        every = self._tuning.accounts_refresh_seconds
        if self.serving:
            return every
        return min(every, REFRESH_WHILE_DOWN, self._tuning.outage_grace_seconds / 2)

    async def until_next_round(self) -> None:
        """Wait for the next refresh: the refresh interval, cut short when an outage begins."""
        self._outage_began.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.refresh_interval):
                await self._outage_began.wait()
                await asyncio.sleep(self.refresh_interval)

    async def refresh(self) -> None:
        """Re-read every road's units and their health: a Flow account out for an operator
        problem gets back in when the API says it is fine (one out of credits, which the API
        doesn't say, once its time out is over), any other road once its time out is over
        (``TRY_AGAIN_AFTER``; the next job on it is the probe)."""
        try:
            for provider in self._roads:
                name = provider.profile.name
                if isinstance(provider, Pooled):
                    await self._listing.read(name, provider)
                else:
                    self._scheduler.set_road(name, provider.profile.limits)
                    self._try_again(name)
            now = self._clock()
            for name, unit in self._scheduler.units_by_name.items():
                if unit.healthy:
                    self._down_since.pop(name, None)
                else:
                    self._down_since.setdefault(name, now)
            self._settle()
            self._wake.set()
        finally:
            self._refreshed = True

    def _held(self, unit: str) -> bool:
        return self._clock() < self._held_out.get(unit, (0, 0.0))[1]

    def _try_again(self, road: str) -> None:
        """A one-key road is back once its time out is over."""
        unit = self._scheduler.roads[road]
        if unit.healthy or self._held(road):
            return
        unit.healthy = True
        log.warning("%s is tried again: the next job there tells whether it serves", road)

    def _hold_out(self, unit: str) -> None:
        """Keep a one-key road (or an account) out a while, longer each time the problem is
        met again."""
        times, _ = self._held_out.get(unit, (0, 0.0))
        wait = min(TRY_AGAIN_AFTER * 2**times, TRY_AGAIN_AT_MOST)
        self._held_out[unit] = (times + 1, self._clock() + wait)
        log.warning("%s is out: it is tried again in %.0f s, or at a restart", unit, wait)

    def take_out(self, exc: OperatorError, unit: str) -> None:
        """An operator problem met on ``unit``: that unit out (every unit of its road, for a
        refused key, or where the road is one unit), and the admins told."""
        road = self._road_of(unit)
        kind = incident_kind(exc)
        pooled = self._roads.pooled(road)
        whole = kind in WHOLE_ROAD or not pooled
        held = road if not pooled else unit if kind in UNLISTED else None
        healthy = held is not None and self._scheduler.units_by_name[held].healthy
        if held is not None and healthy and not _dear(exc):
            self._hold_out(held)  # once per time it is met (jobs in flight meet it too)
        for name, other in self._scheduler.units_by_name.items():
            if name == unit or (whole and other.provider == road):
                other.healthy = False
                self._down_since.setdefault(name, self._clock())
        self._incidents.open(kind, road, WHOLE if whole else unit, exc.detail)
        self._settle()

    def close_incidents(self, unit: str, sent_at: float) -> None:
        """``unit`` served a job sent at ``sent_at``: its incidents (and its road's) met before
        then are over. A job already on its way when the problem was met proves nothing (it
        passed before the credits ran out, say): closing on it would alert again on the next
        job that was on its way too."""
        road = self._road_of(unit)
        # It serves: next time it is out, as long as the first.
        self._held_out.pop(road, None)
        self._held_out.pop(unit, None)
        for key, since in self._incidents.since():
            if key[1] == road and key[2] in (WHOLE, unit) and since < sent_at:
                self._incidents.close(key)
        self._settle()

    def _road_of(self, unit: str) -> str:
        found = self._scheduler.unit(unit)
        assert found is not None, unit  # only a unit a job ran on is named here
        return found.provider

    def _settle(self) -> None:
        """Note when an outage begins or ends, and tell the admins what began and ended."""
        serving = self.serving
        if serving:
            if self._outage_since is not None:
                log.warning("a road serves again")
                self._wake.set()
            self._outage_since = None
        elif self._outage_since is None:
            log.error("no road can serve: new requests are refused until one can")
            self._outage_since = self._clock()
            self._outage_began.set()
        for event in self._incidents.news():
            self._delivery.tell_admins(event, serving=serving)


def _dear(exc: OperatorError) -> bool:
    """A 402 for a request dearer than the credits left, which pay for smaller ones: out until
    the next listing, not held out (one member's 4K asks must not keep it out for an hour)."""
    return isinstance(exc, InsufficientCredits) and 0 < (exc.available or 0) < (exc.required or 0)
