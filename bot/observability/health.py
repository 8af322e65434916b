"""``/healthz`` from the outside of the service: the store's write probe and Flow's account list
(the other roads have no accounts to list: configured, they are taken to serve, so with one of
them the bot serves even while Flow can't, and Flow's problem is still among the reasons). The
service will answer ``HealthSource`` itself (it knows its units' health as it goes); until then
this asks the store and ``GET /accounts`` directly."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from bot.core.monitoring import Health
from bot.core.providers import Pooled
from bot.diagnosis import AccountsReport, flow_accounts
from bot.store import StoreError

# GET /accounts at most this often, however often /healthz is asked.
ACCOUNTS_TTL = 30.0


class Writable(Protocol):
    async def probe_write(self) -> None: ...


class ProbedHealth:
    """Implements ``bot.core.monitoring.HealthSource``."""

    def __init__(
        self,
        store: Writable,
        upstream: Pooled | None,
        accounts: Sequence[str] = (),
        *,
        others: Sequence[str] = (),
        ttl: float = ACCOUNTS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._upstream = upstream
        self._others = tuple(others)
        self._accounts = accounts
        self._ttl = ttl
        self._clock = clock
        self._report: AccountsReport | None = None
        self._read_at = 0.0

    async def health(self) -> Health:
        reasons = []
        try:
            await self._store.probe_write()
            writable = True
        except StoreError as exc:
            writable = False
            reasons.append(str(exc))
        serving = bool(self._others)
        if self._upstream is not None:
            report = await self._accounts_report(self._upstream)
            if report.problem:
                reasons.append(report.problem)
            serving = serving or bool(report.serving)
        return Health(writable, serving, tuple(reasons))

    async def _accounts_report(self, upstream: Pooled) -> AccountsReport:
        if self._report is None or self._clock() - self._read_at >= self._ttl:
            self._report = await flow_accounts(upstream, self._accounts)
            self._read_at = self._clock()
        return self._report
