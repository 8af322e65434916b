"""Outages with several roads: a road that can't serve while another does is an incident for
the admins, not a refusal for users; only when no road can serve are requests refused at once."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time

import pytest

from bot.core import admin_texts, texts
from bot.core.errors import InvalidInput
from bot.core.models_table import ModelTable
from bot.core.policy import Access, Tuning
from bot.core.service import Service, accounts
from bot.providers.flow import FlowClient
from bot.providers.gemini import GeminiClient
from tests.conftest import AnyStore, owner
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.notifier import RecordingNotifier

# Refreshes far apart: nothing here waits for one.
STEADY = Tuning(
    retry_min_seconds=0.01,
    retry_max_seconds=0.05,
    job_deadline_seconds=5,
    outage_grace_seconds=60,
    accounts_refresh_seconds=60,
)


async def test_flow_refused_while_gemini_serves_is_told_to_admins_and_users_are_served(
    store: AnyStore,
) -> None:
    async with (
        FakeFlowServer(accounts=["alice@example.com"]) as flow,
        FakeGeminiServer() as gemini,
        FlowClient("test-token", flow.base_url) as flow_client,
        GeminiClient(gemini.api_key, gemini.base_url) as gemini_client,
    ):
        flow.token = "another-token"  # refused from the start
        service = Service(
            store,
            [flow_client, gemini_client],
            models=ModelTable.builtin(),
            tuning=STEADY,
            access=Access(admins=frozenset({"console:99"})),
            rng=random.Random(7),
        )
        async with service:
            told = RecordingNotifier()
            service.attach("console", told)
            await told.wait_alerts(1)
            flow_refused = admin_texts.ADMIN_REASONS["auth"]
            # Another road serves: the admins read what to fix, not that nothing serves.
            assert told.alerts == [("99", f"⚠️ Operator action needed: {flow_refused}")]
            health = await service.health()
            assert (health.store_writable, health.upstream_serving) == (True, True)
            assert health.reasons == (flow_refused,)
            served = await service.submit(owner(), "a fox --model 2 --count 1")
            await told.wait_answered(served.job_id)
            assert {i.ref.provider for i in told.result(served.job_id).images} == {"gemini"}

            gemini.api_key = "another-key"  # now Gemini's key is refused too
            lost = await service.submit(owner(), "a cat --model 2 --count 1")
            await told.wait_answered(lost.job_id)
            assert told.failure(lost.job_id) == texts.OPERATOR
            await told.wait_alerts(2)
            gemini_refused = admin_texts.admin_reason("auth", "gemini")
            assert told.alerts[1][1] == (
                f"⚠️ Operator action needed: {gemini_refused}. {admin_texts.NOTHING_SERVES}"
            )
            # No road serves: a new request is refused at once, and health says why.
            started = time.monotonic()
            with pytest.raises(InvalidInput) as refusal:
                await service.submit(owner(), "a dog --model 2 --count 1")
            assert refusal.value.message == texts.OPERATOR
            assert time.monotonic() - started < 1.0
            health = await service.health()
            assert not health.upstream_serving
            assert set(health.reasons) == {flow_refused, gemini_refused}
            assert len(told.alerts) == 2


async def test_flow_never_answering_while_gemini_serves_refuses_only_what_flow_alone_makes(
    store: AnyStore,
) -> None:
    async with (
        FakeGeminiServer() as gemini,
        FlowClient("test-token", "http://127.0.0.1:9") as flow_client,  # nothing listens there
        GeminiClient(gemini.api_key, gemini.base_url) as gemini_client,
    ):
        service = Service(
            store,
            [flow_client, gemini_client],
            models=ModelTable.builtin(),
            tuning=STEADY,
            access=Access(admins=frozenset({"console:99"})),
            rng=random.Random(7),
        )
        async with service:
            told = RecordingNotifier()
            service.attach("console", told)
            await told.wait_alerts(1)
            unreachable = admin_texts.ADMIN_REASONS["unreachable"]
            assert told.alerts == [("99", f"⚠️ Operator action needed: {unreachable}")]
            assert (await service.health()).upstream_serving
            served = await service.submit(owner(), "a fox --model 2 --count 1")
            await told.wait_answered(served.job_id)
            assert {i.ref.provider for i in told.result(served.job_id).images} == {"gemini"}
            # Only Flow makes Lite: told at once rather than left waiting for a road that never
            # answered.
            with pytest.raises(InvalidInput) as refusal:
                await service.submit(owner(), "a fox --model lite --count 1")
            assert refusal.value.message == texts.UNAVAILABLE


async def test_a_one_key_road_taken_out_by_a_refused_key_stays_out_across_refreshes(
    store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing was fixed, so the refreshes don't bring it back: health says it can't serve,
    and a new request is refused at once; only once the wait is over is it tried again, and
    the next job there is the probe."""
    monkeypatch.setattr(accounts, "TRY_AGAIN_AFTER", 1.0)
    async with (
        FakeGeminiServer() as gemini,
        GeminiClient(gemini.api_key, gemini.base_url) as gemini_client,
    ):
        key, gemini.api_key = gemini.api_key, "another-key"  # the key is refused
        service = Service(
            store,
            [gemini_client],
            models=ModelTable.builtin(),
            tuning=dataclasses.replace(STEADY, accounts_refresh_seconds=0.05),
            access=Access(admins=frozenset({"console:99"})),
            rng=random.Random(7),
        )
        async with service:
            told = RecordingNotifier()
            service.attach("console", told)
            lost = await service.submit(owner(), "a cat --model 2 --count 1")
            await told.wait_answered(lost.job_id)
            assert told.failure(lost.job_id) == texts.OPERATOR
            out_at = time.monotonic()
            await asyncio.sleep(0.5)  # some ten refreshes
            assert not (await service.health()).upstream_serving
            with pytest.raises(InvalidInput) as refusal:
                await service.submit(owner(), "a dog --model 2 --count 1")
            assert refusal.value.message == texts.OPERATOR
            assert len(gemini.generate_requests()) == 1  # no call but the refused one

            gemini.api_key = key  # the operator had it unblocked
            await asyncio.sleep(max(0.0, out_at + 1.2 - time.monotonic()))
            assert (await service.health()).upstream_serving  # tried again: it may serve
            served = await service.submit(owner(), "a fox --model 2 --count 1")
            await told.wait_answered(served.job_id)
            assert [job for job, _ in told.failed] == [lost.job_id]
