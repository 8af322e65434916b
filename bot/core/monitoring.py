"""What the core tells monitoring, and what monitoring asks the core.

The core imports no metrics or HTTP library. As things happen it calls a ``Recorder`` (counters
and latencies); when asked, it answers ``HealthSource.health()`` (for ``GET /healthz``) and
``SnapshotSource.snapshot()`` (the gauges of ``GET /metrics``, read at each scrape).
``bot.observability`` implements ``Recorder`` with prometheus-client and reads the other two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    """How a job ended, as counted: one label value each."""

    DONE = "done"
    CANCELLED = "cancelled"
    MODERATED = "moderated"  # withheld by the upstream's filter, every try
    REFUSED = "refused"  # the request itself was refused (content policy, bad options)
    OPERATOR = "operator"  # failed for want of the operator (token, credits, sessions)
    FAILED = "failed"  # any other failure: deadline passed, upstream kept failing


class UpstreamCall(StrEnum):
    """What an upstream exchange was for."""

    GENERATE = "generate"
    DOWNLOAD = "download"  # a generation's pictures, fetched after its answer
    UPSCALE = "upscale"
    UPLOAD = "upload"
    ACCOUNTS = "accounts"
    CHARACTER = "character"


class Recorder(Protocol):
    """Called by the core as things happen; each call is cheap and never raises."""

    def job_ended(self, outcome: Outcome) -> None: ...

    def upstream_answered(
        self, call: UpstreamCall, account: str | None, seconds: float, status: int | None
    ) -> None:
        """One upstream exchange: how long it took, and its HTTP status (None: no answer)."""
        ...

    def delivery_failed(self, platform: str, *, permanent: bool) -> None: ...

    def alert_undelivered(self, platform: str) -> None:
        """An admin alert the platform did not take (an admin it could not reach; it is kept)."""
        ...


class Unrecorded:
    """A ``Recorder`` that records nothing: the service without ``BOT_HTTP_LISTEN``."""

    def job_ended(self, outcome: Outcome) -> None:
        pass

    def upstream_answered(
        self, call: UpstreamCall, account: str | None, seconds: float, status: int | None
    ) -> None:
        pass

    def delivery_failed(self, platform: str, *, permanent: bool) -> None:
        pass

    def alert_undelivered(self, platform: str) -> None:
        pass


@dataclass(frozen=True)
class Health:
    """Whether the bot can serve; ``reasons`` say, one sentence each, why not."""

    store_writable: bool
    upstream_serving: bool  # some upstream account can take a job now
    reasons: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.store_writable and self.upstream_serving


class HealthSource(Protocol):
    async def health(self) -> Health:
        """Cheap enough to be asked every few seconds; bounded by the caller's timeout."""
        ...


@dataclass(frozen=True)
class AccountState:
    """One upstream account as the scheduler sees it."""

    name: str
    limit: int  # the parallel calls it may have now
    in_flight: int
    serving: bool


@dataclass(frozen=True)
class Snapshot:
    queued: int = 0
    running: int = 0
    accounts: tuple[AccountState, ...] = ()
    platforms: Mapping[str, bool] = field(default_factory=dict)  # platform → attached


class SnapshotSource(Protocol):
    def snapshot(self) -> Snapshot:
        """In memory, no I/O: called on the event loop at each scrape of ``/metrics``."""
        ...
