"""Attacks that try to have the bot take a healthy upstream account out of service for
everyone: an account met with 402 (no subscription or credits) is held out ten minutes,
doubling up to an hour, and each incident alerts the admins. A member must not be able to
earn that hold with a request of their own."""

from __future__ import annotations

from typing import Any

from bot.core import texts
from bot.core.domain import Action, Button, UserKey
from tests.conftest import owner
from tests.fakes.flow_server import FakeFlowServer


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
