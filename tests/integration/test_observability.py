"""``GET /healthz`` and ``GET /metrics`` over real HTTP, behind hand-written sources."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import ConfigError
from bot.core.monitoring import AccountState, Health, Outcome, Snapshot, UpstreamCall
from bot.observability import server
from bot.observability.metrics import Metrics

LOCAL = ("127.0.0.1", 0)


class FakeCore:
    """A hand-written core: its health and its snapshot are whatever the test sets."""

    def __init__(self) -> None:
        self.current = Health(store_writable=True, upstream_serving=True)
        self.state = Snapshot()
        self.delay = 0.0

    async def health(self) -> Health:
        await asyncio.sleep(self.delay)
        return self.current

    def snapshot(self) -> Snapshot:
        return self.state


@asynccontextmanager
async def endpoints(core: FakeCore, metrics: Metrics) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        server.serve(LOCAL, core, metrics) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        yield http


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus-client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_healthz_turns_503_with_the_reasons_and_back() -> None:
    core = FakeCore()
    async with endpoints(core, Metrics()) as http:
        ok = await http.get("/healthz")
        assert ok.status_code == 200
        assert ok.json() == {
            "status": "ok",
            "store_writable": True,
            "upstream_serving": True,
            "reasons": [],
        }
        core.current = Health(True, False, ("no Google account is linked at useapi.net",))
        down = await http.get("/healthz")
        assert down.status_code == 503
        assert down.headers["content-type"].startswith("application/json")
        assert down.json()["status"] == "unhealthy"
        assert down.json()["upstream_serving"] is False
        assert down.json()["reasons"] == ["no Google account is linked at useapi.net"]
        core.current = Health(True, True)
        assert (await http.get("/healthz")).status_code == 200


async def test_a_health_check_that_hangs_is_a_503_not_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "HEALTH_TIMEOUT", 0.1)
    core = FakeCore()
    core.delay = 10
    async with endpoints(core, Metrics()) as http:
        answer = await http.get("/healthz", timeout=5)
    assert answer.status_code == 503
    assert answer.json()["reasons"] == ["the health check took longer than 0.1 s"]


async def test_metrics_parse_and_count() -> None:
    core = FakeCore()
    metrics = Metrics()
    metrics.watch(core)
    core.state = Snapshot(
        queued=7,
        running=3,
        accounts=(AccountState("alice@example.com", limit=5, in_flight=3, serving=True),),
        platforms={"telegram": True, "discord": False},
    )
    async with endpoints(core, metrics) as http:
        before = samples((await http.get("/metrics")).text)
        metrics.job_ended(Outcome.DONE)
        metrics.job_ended(Outcome.DONE)
        metrics.job_ended(Outcome.MODERATED)
        metrics.upstream_answered(UpstreamCall.GENERATE, "alice@example.com", 12.0, 200)
        metrics.upstream_answered(UpstreamCall.GENERATE, "alice@example.com", 0.2, 429)
        metrics.upstream_answered(UpstreamCall.GENERATE, "alice@example.com", 0.3, 503)
        metrics.delivery_failed("telegram", permanent=False)
        core.state = Snapshot(queued=6, running=4, accounts=core.state.accounts, platforms={})
        answer = await http.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    after = samples(answer.text)
    assert before[("nanobanana_jobs_total", (("outcome", "done"),))] == 0
    assert before[("nanobanana_queue_depth", ())] == 7
    assert before[("nanobanana_platform_connected", (("platform", "discord"),))] == 0
    assert before[("nanobanana_platform_connected", (("platform", "telegram"),))] == 1
    assert after[("nanobanana_jobs_total", (("outcome", "done"),))] == 2
    assert after[("nanobanana_jobs_total", (("outcome", "moderated"),))] == 1
    assert after[("nanobanana_jobs_total", (("outcome", "failed"),))] == 0
    assert after[("nanobanana_queue_depth", ())] == 6
    assert after[("nanobanana_jobs_running", ())] == 4
    alice = (("account", "alice@example.com"),)
    assert after[("nanobanana_account_limit", alice)] == 5
    assert after[("nanobanana_account_in_flight", alice)] == 3
    assert after[("nanobanana_account_serving", alice)] == 1
    generate = (("call", "generate"),)
    assert after[("nanobanana_upstream_seconds_count", generate)] == 3
    assert after[("nanobanana_upstream_seconds_bucket", (*generate, ("le", "15.0")))] == 3
    assert after[("nanobanana_upstream_seconds_bucket", (*generate, ("le", "10.0")))] == 2
    for status in ("429", "503"):
        key = ("nanobanana_upstream_refusals_total", (*alice, ("status", status)))
        assert after[key] == 1
    key = ("nanobanana_delivery_failures_total", (("permanent", "false"), ("platform", "telegram")))
    assert after[key] == 1
    assert ("nanobanana_platform_connected", (("platform", "telegram"),)) not in after
    assert any(name == "process_resident_memory_bytes" for name, _ in after)


async def test_nothing_else_is_served() -> None:
    async with endpoints(FakeCore(), Metrics()) as http:
        assert (await http.get("/")).status_code == 404
        assert (await http.post("/healthz")).status_code == 405


async def test_a_port_in_use_is_a_setting_to_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as refused:
            async with server.serve(("127.0.0.1", port), FakeCore(), Metrics()):
                pass
    assert str(refused.value).startswith(f"BOT_HTTP_LISTEN 127.0.0.1:{port} can't be listened on")
