"""The bot's metric families (Prometheus, via prometheus-client) and the core's ``Recorder``.

Counters and the latency histogram are updated as the core calls the recorder; the gauges
(queue, running, accounts, platforms) are read from a ``SnapshotSource`` at each scrape, so they
are never stale and cost nothing between scrapes. Label values are bounded: outcomes and calls
are enums, accounts are the operator's own few, platforms are two.

Account labels are the accounts' e-mail addresses: keep ``/metrics`` off the public internet.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from bot.core.monitoring import Outcome, SnapshotSource, UpstreamCall

PREFIX = "nanobanana"
# Refusals counted apart: "too many" (429) and "no capacity" (503) drive the account limits.
REFUSALS = (429, 503)
# Seconds: a generation takes 10–20 s and sometimes minutes; uploads and listings far less.
LATENCY_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)


class Metrics:
    """The families on a registry of their own; implements ``bot.core.monitoring.Recorder``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._jobs = Counter(
            f"{PREFIX}_jobs",
            "Jobs ended, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self._latency = Histogram(
            f"{PREFIX}_upstream_seconds",
            "Upstream calls: seconds from the request to the whole answer, by call.",
            ["call"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._refusals = Counter(
            f"{PREFIX}_upstream_refusals",
            "Upstream answers 429 (too many) and 503 (no capacity), by account and status.",
            ["account", "status"],
            registry=self.registry,
        )
        self._delivery_failures = Counter(
            f"{PREFIX}_delivery_failures",
            "Answers a platform did not take, by platform and whether retrying could help.",
            ["platform", "permanent"],
            registry=self.registry,
        )
        self._alerts_undelivered = Counter(
            f"{PREFIX}_alerts_undelivered",
            "Admin alerts a platform did not take (kept for when the admin writes), by platform.",
            ["platform"],
            registry=self.registry,
        )
        # Every label value known in advance shows as 0 rather than missing.
        for outcome in Outcome:
            self._jobs.labels(outcome.value)
        for call in UpstreamCall:
            self._latency.labels(call.value)

    def watch(self, source: SnapshotSource) -> None:
        """Read the gauges from ``source`` at each scrape (one source per registry)."""
        self.registry.register(_SnapshotCollector(source))

    def render(self) -> bytes:
        """The Prometheus text exposition; call it on the event loop (the snapshot is read)."""
        return generate_latest(self.registry)

    # Recorder

    def job_ended(self, outcome: Outcome) -> None:
        self._jobs.labels(outcome.value).inc()

    def upstream_answered(
        self, call: UpstreamCall, account: str | None, seconds: float, status: int | None
    ) -> None:
        self._latency.labels(call.value).observe(seconds)
        if status in REFUSALS:
            self._refusals.labels(account or "", str(status)).inc()

    def delivery_failed(self, platform: str, *, permanent: bool) -> None:
        self._delivery_failures.labels(platform, "true" if permanent else "false").inc()

    def alert_undelivered(self, platform: str) -> None:
        self._alerts_undelivered.labels(platform).inc()


class _SnapshotCollector:
    """The gauges, built from one snapshot per scrape."""

    def __init__(self, source: SnapshotSource) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        snapshot = self._source.snapshot()
        yield GaugeMetricFamily(f"{PREFIX}_queue_depth", "Jobs queued.", value=snapshot.queued)
        yield GaugeMetricFamily(f"{PREFIX}_jobs_running", "Jobs running.", value=snapshot.running)
        limit = GaugeMetricFamily(
            f"{PREFIX}_account_limit",
            "Parallel calls an upstream account may have now (rises on success, falls on 429).",
            labels=["account"],
        )
        in_flight = GaugeMetricFamily(
            f"{PREFIX}_account_in_flight", "Calls running on an account.", labels=["account"]
        )
        serving = GaugeMetricFamily(
            f"{PREFIX}_account_serving", "1 if the account can take jobs.", labels=["account"]
        )
        for account in snapshot.accounts:
            limit.add_metric([account.name], account.limit)
            in_flight.add_metric([account.name], account.in_flight)
            serving.add_metric([account.name], 1 if account.serving else 0)
        connected = GaugeMetricFamily(
            f"{PREFIX}_platform_connected",
            "1 while the platform's front end is attached (connected and ready).",
            labels=["platform"],
        )
        for platform, up in sorted(snapshot.platforms.items()):
            connected.add_metric([platform], 1 if up else 0)
        yield from (limit, in_flight, serving, connected)
