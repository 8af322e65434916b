"""Operator problems as incidents: which kind an upstream error is, the incidents open now,
keyed by kind, road and account (``WHOLE``: the whole road's), and the news of those begun or
over that the admins were not told yet (each is told once when it begins, once when it is over).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from bot.core import admin_texts
from bot.core.alerts import AdminEvent
from bot.core.upstream import (
    AccountNotFound,
    AuthError,
    ModelUnavailable,
    OperatorError,
    PaymentError,
    QuotaExhausted,
    SessionExpired,
)

log = logging.getLogger(__name__)

WHOLE = None  # the account of an incident that takes out a whole road

# An operator problem, by its kind of incident: the first row whose type it is decides (the tree
# is in ``bot.core.upstream``; a subclass not listed is its base's kind, e.g. InsufficientCredits
# is a payment problem).
_INCIDENTS: tuple[tuple[type[OperatorError], str], ...] = (
    (AuthError, "auth"),
    (PaymentError, "payment"),
    (AccountNotFound, "account_missing"),
    (SessionExpired, "session"),
    (QuotaExhausted, "quota"),
    (ModelUnavailable, "model"),
)
# Kinds that take out every unit of a road, whichever one they were met on.
WHOLE_ROAD = frozenset({"auth"})
# Kinds whose end the listing of a pooled road's accounts can't tell: GET /accounts' health is
# the account's Google session, its credits are not in it (the Flow reference: only GET
# /accounts/{email} has them). An account out for one is held out like a one-key road, not
# brought back by a listing that calls it healthy (and sent a job into the same 402 each time).
UNLISTED = frozenset({"payment"})
# Kinds that may mend by waiting: a job on such a unit gets ``job_deadline_seconds``.
PASSING = frozenset({"unhealthy", "unreachable"})

Key = tuple[str, str, str | None]  # (kind, road, account)


def incident_kind(exc: OperatorError) -> str:
    return next((kind for error, kind in _INCIDENTS if isinstance(exc, error)), "account_missing")


class Incidents:
    """The incidents open now, each with when it was first met, and the news not told yet."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._open: dict[Key, float] = {}  # → when it was first met
        self._news: list[AdminEvent] = []  # incidents begun or over, not told yet

    def __iter__(self) -> Iterator[Key]:
        return iter(list(self._open))

    def __bool__(self) -> bool:
        return bool(self._open)

    def since(self) -> list[tuple[Key, float]]:
        return list(self._open.items())

    def problems(self) -> list[tuple[str | None, str]]:
        """The open incidents, each road's whole-road ones first: (account or None, sentence)."""
        ordered = sorted(self._open, key=lambda k: (k[1], k[2] is not WHOLE, k[2] or "", k))
        return [(on, admin_texts.admin_reason(kind, road)) for kind, road, on in ordered]

    def open(self, kind: str, road: str, account: str | None, detail: str) -> None:
        key = (kind, road, account)
        if key in self._open:
            return
        self._open[key] = self._clock()
        event = AdminEvent(kind, account, admin_texts.admin_reason(kind, road))
        log.error("operator problem on %s%s: %s (%s)", road, _on(account), event.message, detail)
        self._news.append(event)

    def close(self, key: Key) -> None:
        if self._open.pop(key, None) is None:
            return
        kind, road, account = key
        reason = admin_texts.admin_reason(kind, road)
        log.warning("operator problem over on %s%s: %s", road, _on(account), reason)
        self._news.append(AdminEvent(kind, account, reason, resolved=True))

    def news(self) -> list[AdminEvent]:
        """What began or ended since the last call, to be told now."""
        news, self._news = self._news, []
        return news


def _on(account: str | None) -> str:
    return f" ({account})" if account else ""
