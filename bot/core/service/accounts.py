"""The upstream's accounts: which there are and which can serve, the operator problems that took
them out (each told to the admins once per incident), and whether a job can still be run at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.core import texts
from bot.core.domain import AdminEvent
from bot.core.policy import Access, Tuning
from bot.core.scheduler import Entry, Scheduler
from bot.core.service.delivery import Delivery
from bot.core.upstream import (
    AuthError,
    OperatorError,
    PaymentError,
    SessionExpired,
    Upstream,
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
}


class Accounts:
    def __init__(
        self,
        upstream: Upstream,
        scheduler: Scheduler,
        access: Access,
        tuning: Tuning,
        clock: Callable[[], float],
        delivery: Delivery,
        wake: asyncio.Event,
    ) -> None:
        self._upstream = upstream
        self._scheduler = scheduler
        self._access = access
        self._tuning = tuning
        self._clock = clock
        self._delivery = delivery
        self._wake = wake
        self._incidents: set[tuple[str, str | None]] = set()
        self._listed: set[str] = set()  # accounts the last GET /accounts named (and we use)
        self._down_since: dict[str, float] = {}

    @property
    def refresh_interval(self) -> float:
        """Seconds until the next refresh: ``accounts_refresh_seconds``, and while no account
        can serve at most ``REFRESH_WHILE_DOWN``."""
        every = self._tuning.accounts_refresh_seconds
        return every if self._scheduler.healthy_accounts() else min(every, REFRESH_WHILE_DOWN)

    async def refresh(self) -> None:
        """Re-read the accounts and their health (an account out for an operator problem gets
        back in when the API says it is fine: the next job on it is the probe)."""
        try:
            listed = await self._upstream.list_accounts()
        except OperatorError as exc:
            for account in self._scheduler.accounts.values():
                account.healthy = False
            self.alert(exc, "")
            return
        except UpstreamError as exc:
            log.warning("could not list accounts (%s); keeping what we knew", exc)
            return
        wanted = self._access.accounts
        health = {a.email: a.healthy for a in listed if not wanted or a.email in wanted}
        for email in wanted:
            if email not in health:
                log.warning("USEAPI_ACCOUNTS names %s, which the API does not list", email)
        self._listed = set(health)
        self._scheduler.set_accounts(health)
        now = self._clock()
        for email, account in self._scheduler.accounts.items():
            if account.healthy:
                self._down_since.pop(email, None)
            else:
                self._down_since.setdefault(email, now)
        log.info("accounts: %d healthy of %d", len(self._scheduler.healthy_accounts()), len(health))
        self._wake.set()

    @property
    def known(self) -> bool:
        """Whether the accounts are known yet (the upstream may not have answered)."""
        return bool(self._listed or self._incidents)

    def stranded(self, entry: Entry, *, waited: float | None = None) -> str | None:
        """Why no account will run this job, or None if one will (or may yet).

        An account that is merely down is given ``job_deadline_seconds`` to come back (a new
        job, ``waited=inf``, is told at once); operator problems and accounts no longer used
        won't mend by waiting.
        """
        healthy = self._scheduler.healthy_accounts()
        account = entry.pinned
        if account is None:
            if healthy or not self._scheduler.accounts:
                return None
            down = min(self._clock() - since for since in self._down_since.values())
        elif account in healthy:
            return None
        elif self._listed and account not in self._listed:
            return texts.REFERENCE_NOT_USABLE  # its references live on an account we don't use
        else:
            down = self._clock() - self._down_since.get(account, self._clock())
        if any(key[1] is None or key[1] == account or account is None for key in self._incidents):
            return texts.OPERATOR
        if (down if waited is None else waited) > self._tuning.job_deadline_seconds:
            return texts.UNAVAILABLE
        return None

    def take_out(self, exc: OperatorError, account: str) -> None:
        """An operator problem on ``account`` (on every account, for a refused token)."""
        emails = list(self._scheduler.accounts) if isinstance(exc, AuthError) else [account]
        for email in emails:
            self._scheduler.accounts[email].healthy = False
            self._down_since.setdefault(email, self._clock())
        self.alert(exc, account)

    def alert(self, exc: OperatorError, account: str) -> None:
        """Tell the admins about an operator problem, once per incident."""
        kind = _INCIDENTS.get(type(exc), "account_missing")
        key = (kind, None if kind == "auth" else account)
        if key in self._incidents:
            return
        self._incidents.add(key)
        event = AdminEvent(kind, key[1], texts.ADMIN_REASONS[kind])
        log.error("operator problem: %s (%s)", event.message, exc.detail)
        self._delivery.tell_admins(event)

    def close_incidents(self, account: str) -> None:
        """``account`` served a job: its incidents (and a refused token's) are over."""
        if self._incidents:
            self._incidents = {k for k in self._incidents if k[1] not in (None, account)}
