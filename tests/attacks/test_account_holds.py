"""Attacks that try to have the bot take a healthy upstream account out of service for
everyone: an account met with 402 (no subscription or credits) is held out ten minutes,
doubling up to an hour, and each incident alerts the admins. A member must not be able to
earn that hold with a request of their own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.core import texts
from bot.core.buttons import Action, Button
from bot.core.people import UserKey
from bot.core.service import accounts
from tests.conftest import AnyStore, owner, serving
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.wireflow_server import FakeWireflowServer
from tests.roads import wireflow_client


async def test_a_4k_upscale_on_a_free_account_is_refused_without_holding_the_account_out(
    make_service: Any, flow: FakeFlowServer
) -> None:
    """The Flow reference: 4k needs a paid Google account. A member on a free one pressing U
    at 4k, again and again, is told so; the account serves everyone else meanwhile."""
    flow.paid = False
    service, told = await make_service()
    made = await service.submit(owner(), "a fox --model 2 --count 1")
    await told.wait_answered(made.job_id)
    await service.update_settings(UserKey("console", "1"), upscale_resolution="4k")
    for _ in range(3):
        upscale = await service.press(owner(), Button(Action.UPSCALE, made.public_id, 1))
        await told.wait_answered(upscale.job_id)
        assert told.failure(upscale.job_id) != texts.OPERATOR
        assert "paid" in told.failure(upscale.job_id)
    assert (await service.health()).upstream_serving
    assert service.scheduler.accounts["alice@example.com"].healthy
    assert told.alerts == []
    other = await service.submit(owner("2"), "a cat --count 1")
    await told.wait_answered(other.job_id)
    assert told.result(other.job_id).images


async def test_a_request_costing_more_than_the_credits_left_does_not_hold_a_road_out(
    store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wireflow's 402 names what the request needed and what is left: a member asking for
    the dearest size while the balance still pays for smaller ones must not take the road
    out for ten minutes (doubling, to an hour, each time they ask again after it was tried)."""
    monkeypatch.setattr(accounts, "TRY_AGAIN_AFTER", 600.0)
    monkeypatch.setattr(accounts, "REFRESH_WHILE_DOWN", 0.05)
    async with (
        FakeWireflowServer(plan="pro", credits=20) as wireflow,  # a pro 4K costs 24, 1K 13
        serving(store, wireflow_client(wireflow)) as (service, told),
    ):
        dear = await service.submit(owner(), "a fox --model pro --size 4K --count 1")
        await told.wait_answered(dear.job_id)
        assert told.failure(dear.job_id)
        # Within a few refreshes, the next member's 1K (13 credits) is served there.
        async with asyncio.timeout(5):
            while not (await service.health()).upstream_serving:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        cheap = await service.submit(owner("2"), "a cat --model pro --size 1K --count 1")
        await told.wait_answered(cheap.job_id)
        assert told.result(cheap.job_id).images
        # Nothing left at all: that one is held out its time, as before.
        wireflow.credits = 0
        broke = await service.submit(owner("2"), "a dog --model pro --size 1K --count 1")
        await told.wait_answered(broke.job_id)
        await asyncio.sleep(0.5)  # some ten refreshes
        assert not (await service.health()).upstream_serving
