"""Attacks on admission's places: a member who keeps the bot's checks busy so that everyone
else's commands wait (at most eight prompts are in their checks at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from bot.providers.flow import FlowClient
from tests.conftest import AnyStore, build_service, image_bytes, owner
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.notifier import RecordingNotifier

ANN, BOB = owner("1"), owner("2")


def red() -> Any:
    async def fetch() -> Sequence[bytes]:
        return [image_bytes(color="red")]

    return fetch


async def test_a_members_prompts_stuck_in_their_checks_do_not_hold_back_anothers_command(
    store: AnyStore,
) -> None:
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:
        async with FlowClient("test-token", flow.base_url) as client:
            service = build_service(store, client)
            service.attach("console", RecordingNotifier())
            async with service:
                made = await service.create_character(ANN, "Carol", images=1, fetch=red())
        # Its account gone, each prompt naming it makes it again on the other, in its checks:
        # a slow upstream (held here) keeps every such prompt of Ann's there.
        flow.accounts.remove(made.account)
        flow.hold("characters")
        async with FlowClient("test-token", flow.base_url) as client:
            service = build_service(store, client)
            told = RecordingNotifier()
            service.attach("console", told)
            async with service:
                flood = [
                    asyncio.create_task(service.submit(ANN, f"@carol waves {n} --count 1"))
                    for n in range(9)
                ]
                async with asyncio.timeout(5):
                    while not flow.held:  # noqa: ASYNC110 - the fake's own record
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(0.1)  # the rest of the flood reaches its checks
                    # Bob's command is checked and queued while Ann's wait for the upstream.
                    job = await service.submit(BOB, "a fox --count 1")
                    await told.wait_answered(job.job_id)
                assert not any(task.done() for task in flood)
                flow.release()
                for task in flood:
                    await told.wait_answered((await task).job_id)
