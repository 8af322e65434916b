"""An upstream that can't serve anyone is an incident: said at once to new requests, after a
grace to queued ones, once to the admins when it begins and once when it is over, on
``/healthz`` all along; and the bot serves again by itself. Real Flow client, fake Flow server,
both stores."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core import admin_texts, texts
from bot.core.errors import InvalidInput
from bot.core.monitoring import Outcome
from bot.core.people import UserKey
from bot.core.policy import Limits
from bot.core.ports import DeliveryError
from bot.core.service import Service, accounts
from bot.core.stats import StatsView
from bot.observability.metrics import Metrics
from bot.providers.flow import FlowClient
from tests.conftest import AnyStore, build_service, owner
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.notifier import RecordingNotifier
from tests.outages import GRACE, OUTAGE_TUNING, every_outage


async def until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def refused(service: Service, prompt: str = "a fox --count 1") -> str:
    with pytest.raises(InvalidInput) as refusal:
        await service.submit(owner(), prompt)
    return refusal.value.message


@every_outage
async def test_an_upstream_that_serves_no_one_is_said_at_once_and_mends_by_itself(
    flow: FakeFlowServer, store: AnyStore, break_it: Any, mend_it: Any, reason: str
) -> None:
    break_it(flow)  # as found at start
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client, tuning=OUTAGE_TUNING)
        async with service:
            told = RecordingNotifier()
            service.attach("console", told)
            await told.wait_alerts(1)
            assert told.alerts[0][0] == "99"
            assert told.alerts[0][1] == (
                f"⚠️ Operator action needed: {reason}. {admin_texts.NOTHING_SERVES}"
            )
            started = time.monotonic()
            assert await refused(service) == texts.OPERATOR
            assert time.monotonic() - started < 1.0  # at once, not after a wait
            health = await service.health()
            assert (health.store_writable, health.upstream_serving) == (True, False)
            assert health.reasons == (reason,)

            await asyncio.sleep(3 * GRACE)  # several refreshes meet the same problem
            assert len(told.alerts) == 1  # told once

            mend_it(flow)
            await told.wait_alerts(2)  # the refresh loop sees it mended, unasked
            assert told.alerts[1][1] == f"✅ Working again. It was: {reason}"
            assert (await service.health()).healthy
            submitted = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(submitted.job_id)
            assert told.result(submitted.job_id).images
            assert len(told.alerts) == 2


async def test_jobs_queued_when_the_outage_begins_are_told_after_the_grace(
    flow: FakeFlowServer, store: AnyStore
) -> None:
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(
            store, client, tuning=OUTAGE_TUNING, limits=Limits(running_per_user=1)
        )
        async with service:
            told = RecordingNotifier()
            service.attach("console", told)
            admin = UserKey("console", "99")
            await service.admin(admin, "pause")  # both wait, one behind the other
            running = await service.submit(owner(), "first --count 1")
            waiting = await service.submit(owner(), "second --count 1")
            flow.fail_next(401)  # the token is revoked as the first job is asked for
            await service.admin(admin, "resume")
            await told.wait_answered(running.job_id)
            flow.token = "revoked"  # and stays so: an outage began
            began = time.monotonic()
            assert told.failure(running.job_id) == texts.OPERATOR
            await told.wait_answered(waiting.job_id, timeout=GRACE * 4)
            assert time.monotonic() - began >= GRACE * 0.8  # a blip would have passed unseen
            assert told.failure(waiting.job_id) == texts.OPERATOR
            await told.wait_alerts(1)
            await asyncio.sleep(GRACE)
            refused = admin_texts.ADMIN_REASONS["auth"]
            assert [text for _, text in told.alerts] == [
                f"⚠️ Operator action needed: {refused}. {admin_texts.NOTHING_SERVES}"
            ]
            job = await store.get_job(waiting.job_id)
            assert job is not None
            assert job.error == texts.OPERATOR


async def test_one_account_out_leaves_the_others_serving_and_says_which(
    store: AnyStore,
) -> None:
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:
        flow.set_health("bob@example.com", "Session expired")
        async with FlowClient("test-token", flow.base_url) as client:
            service = build_service(store, client, tuning=OUTAGE_TUNING)
            async with service:
                told = RecordingNotifier()
                service.attach("console", told)
                await told.wait_alerts(1)
                assert told.alerts[0][1] == (
                    "⚠️ Operator action needed (account bob@example.com): "
                    f"{admin_texts.ADMIN_REASONS['unhealthy']}"
                )
                health = await service.health()
                assert health.healthy
                assert health.reasons == (
                    f"{admin_texts.ADMIN_REASONS['unhealthy']} (account bob@example.com)",
                )
                submitted = await service.submit(owner(), "a fox --count 1")
                await told.wait_answered(submitted.job_id)
                assert told.result(submitted.job_id).images[0].ref.account == "alice@example.com"


async def test_an_account_out_of_credits_stays_out_though_the_listing_calls_it_healthy(
    flow: FakeFlowServer, store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /accounts' health is the account's Google session, not its credits (those are in
    GET /accounts/{email}): a refresh that lists it as OK proves nothing about a 402. Brought
    back at each refresh, it would take a job into the same 402 every 15 s of an outage. It
    stays out its time instead, as a one-key road does, and the next job there is the probe."""
    monkeypatch.setattr(accounts, "TRY_AGAIN_AFTER", 3.0)
    flow.fail_next(402)
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client, tuning=OUTAGE_TUNING)
        async with service:
            told = RecordingNotifier()
            service.attach("console", told)
            sent_at = time.monotonic()  # its time out begins later, so ends after sent_at + 3 s
            lost = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(lost.job_id)
            assert told.failure(lost.job_id) == texts.OPERATOR
            listed = len(listings(flow))
            for more in (1, 2):  # refreshes that list it as healthy
                await until(lambda: len(listings(flow)) >= listed + more)  # noqa: B023 — awaited here
                assert time.monotonic() < sent_at + 3.0
                assert not (await service.health()).upstream_serving
            assert await refused(service) == texts.OPERATOR
            assert len(flow.images_requests()) == 1  # no call but the refused one

            # Its time out over (the operator bought credits meanwhile), the next job tells.
            async with asyncio.timeout(8):
                while not (await service.health()).upstream_serving:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert time.monotonic() > sent_at + 3.0
            served = await service.submit(owner(), "a dog --count 1")
            await told.wait_answered(served.job_id)
            assert [job for job, _ in told.failed] == [lost.job_id]


def listings(flow: FakeFlowServer) -> list[Any]:
    return [r for r in flow.requests if r.method == "GET" and r.path.endswith("/accounts")]


class Unreachable(RecordingNotifier):
    async def admin_alert(self, admin_id: str, text: str) -> None:
        raise DeliveryError(f"admin {admin_id} not reached (chat not found)")


async def test_an_alert_no_admin_got_is_kept_logged_and_counted(
    flow: FakeFlowServer, store: AnyStore, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    flow.token = "another-token"
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client, tuning=OUTAGE_TUNING, recorder=metrics)
        async with service:
            service.attach("console", Unreachable())
            await until(lambda: "alerts_undelivered" in _samples(metrics))
            [kept] = await service.undelivered_alerts()  # for when the admin next writes
            stats = await service.admin(kept.admin, "stats")
    assert kept.admin == UserKey("console", "99")
    assert _samples(metrics)["alerts_undelivered"] == {"console": 1.0}
    [line] = [r for r in caplog.records if "can't be alerted now" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert "chat not found" in line.getMessage()
    assert isinstance(stats, StatsView)
    [(_, unsent)] = [(h, lines) for h, lines in stats.sections() if h == "Alerts not given yet"]
    assert unsent == [admin_texts.unsent(kept.admin, 1, kept.since)]


def _samples(metrics: Metrics) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == "nanobanana_alerts_undelivered_total":
                found.setdefault("alerts_undelivered", {})[sample.labels["platform"]] = sample.value
    return found


async def test_jobs_and_upstream_calls_are_recorded(flow: FakeFlowServer, store: AnyStore) -> None:
    recorded: list[tuple[Any, ...]] = []

    class Recorder:
        def job_ended(self, outcome: Outcome) -> None:
            recorded.append(("job", outcome))

        def upstream_answered(
            self, call: Any, account: str | None, seconds: float, status: int | None
        ) -> None:
            recorded.append(("call", call.value, account, status))

        def delivery_failed(self, platform: str, *, permanent: bool) -> None:
            recorded.append(("delivery", platform, permanent))

        def alert_undelivered(self, platform: str) -> None:
            recorded.append(("alert", platform))

    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client, tuning=OUTAGE_TUNING, recorder=Recorder())
        async with service:
            told = RecordingNotifier(fail_deliveries=1)
            service.attach("console", told)
            flow.fail_next(429)
            done = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(done.job_id)
            flow.fail_next(400)
            rejected = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(rejected.job_id)
            snapshot = service.snapshot()
    assert recorded[0] == ("call", "accounts", None, 200)
    assert ("call", "generate", "alice@example.com", 429) in recorded
    assert ("call", "generate", "alice@example.com", 200) in recorded
    assert ("delivery", "console", False) in recorded
    assert [r for r in recorded if r[0] == "job"] == [
        ("job", Outcome.DONE),
        ("job", Outcome.REFUSED),
    ]
    assert (snapshot.queued, snapshot.running) == (0, 0)
    assert [(a.name, a.serving) for a in snapshot.accounts] == [("alice@example.com", True)]
    assert snapshot.platforms == {"console": True}


async def test_before_it_has_read_the_accounts_health_says_it_is_starting(
    flow: FakeFlowServer, store: AnyStore
) -> None:
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client, tuning=OUTAGE_TUNING)
        starting = await service.health()
        assert (starting.healthy, starting.reasons) == (False, (admin_texts.STARTING,))
        async with service:
            assert (await service.health()).healthy
