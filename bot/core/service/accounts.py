"""The roads' capacity units: which there are and which can serve (a Flow account each, one
for every other road), the operator problems that took them out (each told to the admins once
per incident, per road), and whether a job can still be run at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.core import texts
from bot.core.domain import AdminEvent
from bot.core.policy import Access, Tuning
from bot.core.providers import Pooled
from bot.core.scheduler import Entry, Scheduler
from bot.core.service.delivery import Delivery
from bot.core.service.roads import Roads
from bot.core.upstream import (
    AuthError,
    OperatorError,
    PaymentError,
    QuotaExhausted,
    SessionExpired,
    UpstreamError,
)

log = logging.getLogger(__name__)

# While no account can serve, the accounts are re-read at least this often (seconds).
REFRESH_WHILE_DOWN = 30.0

# An operator problem, by its kind of incident (anything else: the account is missing).
_INCIDENTS: dict[type[OperatorError], str] = {
    AuthError: "auth",
    PaymentError: "payment",
    SessionExpired: "session",
    QuotaExhausted: "quota",
}


def incident_kind(exc: OperatorError) -> str:
    return next((k for t, k in _INCIDENTS.items() if isinstance(exc, t)), "account_missing")


class Accounts:
    def __init__(
        self,
        roads: Roads,
        scheduler: Scheduler,
        access: Access,
        tuning: Tuning,
        clock: Callable[[], float],
        delivery: Delivery,
        wake: asyncio.Event,
    ) -> None:
        self._roads = roads
        self._scheduler = scheduler
        self._access = access
        self._tuning = tuning
        self._clock = clock
        self._delivery = delivery
        self._wake = wake
        # (kind, road, account) → when it was first met; account None when the problem is the
        # whole road's.
        self._incidents: dict[tuple[str, str, str | None], float] = {}
        self._listed: set[str] = set()  # the units the roads last named (and we use)
        self._down_since: dict[str, float] = {}

    @property
    def refresh_interval(self) -> float:
        """Seconds until the next refresh: ``accounts_refresh_seconds``, and while no unit
        can serve at most ``REFRESH_WHILE_DOWN``."""
        every = self._tuning.accounts_refresh_seconds
        return every if self._scheduler.healthy_accounts() else min(every, REFRESH_WHILE_DOWN)

    async def refresh(self) -> None:
        """Re-read every road's units and their health: a Flow account out for an operator
        problem gets back in when the API says it is fine, any other road at each refresh (the
        next job on it is the probe)."""
        for provider in self._roads:
            name = provider.profile.name
            if isinstance(provider, Pooled):
                await self._refresh_pool(name, provider)
            else:
                self._scheduler.set_road(name, provider.profile.limits)
                self._scheduler.roads[name].healthy = True
                self._listed.add(name)
        now = self._clock()
        for name, unit in self._scheduler.units_by_name.items():
            if unit.healthy:
                self._down_since.pop(name, None)
            else:
                self._down_since.setdefault(name, now)
        self._wake.set()

    async def _refresh_pool(self, road: str, pool: Pooled) -> None:
        try:
            listed = await pool.list_accounts()
        except OperatorError as exc:
            for unit in self._scheduler.accounts.values():
                if unit.provider == road:
                    unit.healthy = False
            self.alert(exc, road, None)
            return
        except UpstreamError as exc:
            log.warning("could not list %s's accounts (%s); keeping what we knew", road, exc)
            return
        wanted = self._access.accounts
        health = {a.email: a.healthy for a in listed if not wanted or a.email in wanted}
        for email in wanted:
            if email not in health:
                log.warning("USEAPI_ACCOUNTS names %s, which the API does not list", email)
        self._listed -= {n for n, u in self._scheduler.accounts.items() if u.provider == road}
        self._listed |= set(health)
        self._scheduler.set_accounts(health, road)
        log.info(
            "%s accounts: %d healthy of %d",
            road,
            len(self._scheduler.healthy_accounts(road)),
            len(health),
        )

    @property
    def known(self) -> bool:
        """Whether the units are known yet (a road may not have answered)."""
        return bool(self._listed or self._incidents)

    def stranded(self, entry: Entry, *, waited: float | None = None) -> str | None:
        """Why no unit will run this job, or None if one will (or may yet).

        A unit that is merely down is given ``job_deadline_seconds`` to come back (a new job,
        ``waited=inf``, is told at once); operator problems and units no longer used won't mend
        by waiting.
        """
        if entry.routes is not None and not entry.routes:
            return texts.NOT_SERVED  # no road we use serves it (any more)
        if self._scheduler.serves(entry):
            return None
        units = self._scheduler.units(entry)
        account = entry.pinned
        if account is not None and self._listed and account not in self._listed:
            return texts.REFERENCE_NOT_USABLE  # its references live on a unit we don't use
        if not units:
            return None  # its roads haven't named their units yet
        roads = {unit.provider for unit in units}
        for _, road, on in self._incidents:
            if road in roads and (on is None or account is None or on == account):
                return texts.OPERATOR
        now = self._clock()
        down = min(now - self._down_since.get(unit.name, now) for unit in units)
        if (down if waited is None else waited) > self._tuning.job_deadline_seconds:
            return texts.UNAVAILABLE
        return None

    def take_out(self, exc: OperatorError, unit: str) -> None:
        """An operator problem met on ``unit``: that unit out (every unit of its road, for a
        refused key), and the admins told."""
        road = self._road_of(unit)
        whole = isinstance(exc, AuthError) or not self._roads.pooled(road)
        for name, other in self._scheduler.units_by_name.items():
            if name == unit or (whole and other.provider == road):
                other.healthy = False
                self._down_since.setdefault(name, self._clock())
        self.alert(exc, road, None if whole else unit)

    def alert(self, exc: OperatorError, road: str, account: str | None) -> None:
        """Tell the admins about an operator problem, once per incident."""
        kind = incident_kind(exc)
        key = (kind, road, account)
        if key in self._incidents:
            return
        self._incidents[key] = self._clock()
        event = AdminEvent(kind, account, texts.admin_reason(kind, road))
        log.error("operator problem on %s: %s (%s)", road, event.message, exc.detail)
        self._delivery.tell_admins(event)

    def close_incidents(self, unit: str, sent_at: float) -> None:
        """``unit`` served a job sent at ``sent_at``: its incidents (and its road's) met before
        then are over. A job already on its way when the problem was met proves nothing (it
        passed before the credits ran out, say): closing on it would alert again on the next
        job that was on its way too."""
        road = self._road_of(unit)
        self._incidents = {
            key: since
            for key, since in self._incidents.items()
            if key[1] != road or key[2] not in (None, unit) or since >= sent_at
        }

    def _road_of(self, unit: str) -> str:
        found = self._scheduler.unit(unit)
        assert found is not None, unit  # only a unit a job ran on is named here
        return found.provider
