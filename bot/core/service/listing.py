"""Reading a pooled road's account listing (Flow's ``GET /accounts``): the accounts it names go
to the scheduler with their health, and what it tells opens or closes incidents; what it named
last says whether a job's pinned account is still one we use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.core.policy import Access
from bot.core.providers import Pooled
from bot.core.scheduler import Scheduler
from bot.core.service.incidents import WHOLE, Incidents, incident_kind
from bot.core.service.learned import LearnedLimits
from bot.core.upstream import OperatorError, UpstreamError

log = logging.getLogger(__name__)


class Listing:
    def __init__(
        self,
        scheduler: Scheduler,
        access: Access,
        incidents: Incidents,
        learned: LearnedLimits,
        held: Callable[[str], bool],
    ) -> None:
        self._scheduler = scheduler
        self._access = access
        self._incidents = incidents
        self._learned = learned
        self._held = held  # an account held out (``Accounts``): listed healthy, kept out
        self._listed: dict[str, set[str]] = {}  # pooled road → the accounts it last named

    def pinned_gone(self, account: str) -> bool:
        """Whether the unit a job's references live on is one we don't use (any more)."""
        unit = self._scheduler.unit(account)
        if unit is None:
            return bool(self._listed)
        listed = self._listed.get(unit.provider)
        return listed is not None and account not in listed

    async def read(self, road: str, pool: Pooled) -> None:
        try:
            listed = await pool.list_accounts()
        except OperatorError as exc:  # on the listing itself: none of its accounts can be used
            for unit in self._scheduler.accounts.values():
                if unit.provider == road:
                    unit.healthy = False
            self._incidents.open(incident_kind(exc), road, WHOLE, exc.detail)
            return
        except UpstreamError as exc:
            if road not in self._listed:  # never answered: there is nothing to run jobs on
                self._incidents.open("unreachable", road, WHOLE, str(exc))
            else:
                log.warning("could not list %s's accounts (%s); keeping what we knew", road, exc)
            return
        wanted = self._access.accounts
        health = {a.email: a.healthy for a in listed if not wanted or a.email in wanted}
        for email in wanted:
            if email not in health:
                log.warning("USEAPI_ACCOUNTS names %s, which the API does not list", email)
        self._listed[road] = set(health)
        self._scheduler.set_accounts(health, road)
        for email in health:
            if self._held(email):
                self._scheduler.accounts[email].healthy = False
        # It answered: the key works, the road is there; it may list nothing to use.
        if not health:
            self._incidents.open(
                "no_accounts", road, WHOLE, "GET /accounts lists no account we use"
            )
        for key in [k for k in self._incidents if k[1] == road and k[2] is WHOLE]:
            if key[0] != "no_accounts" or health:
                self._incidents.close(key)
        for email, unit in self._scheduler.accounts.items():
            if unit.provider != road:
                continue
            if health.get(email) is False:
                self._incidents.open("unhealthy", road, email, "GET /accounts says so")
            else:
                self._incidents.close(
                    ("unhealthy", road, email)
                )  # healthy again, or no longer ours
        self._learned.resume()
        log.info(
            "%s accounts: %d healthy of %d",
            road,
            len(self._scheduler.healthy_accounts(road)),
            len(health),
        )
