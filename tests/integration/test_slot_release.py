"""A job's capacity slot is given back when the upstream has answered, before its pictures are
downloaded; a download that fails or outlives the process still ends the job (the real Flow
client against the fake Flow server, on both stores)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.core.domain import JobState
from tests.conftest import FAST, AnyStore, image_bytes, owner
from tests.fakes.flow_server import FakeFlowServer, RawAnswer

ALICE = "alice@example.com"


def slow_picture(seconds: float) -> RawAnswer:
    """A whole JPEG whose second half comes ``seconds`` after its first."""
    data = image_bytes("JPEG")
    half = len(data) // 2
    return RawAnswer(200, {"Content-Type": "image/jpeg"}, [data[:half], data[half:]], seconds)


async def downloading(flow: FakeFlowServer) -> None:
    """Until the fake's first picture download has begun."""
    async with asyncio.timeout(5):
        while not flow.fife_requests():  # noqa: ASYNC110 - the fake records as requests come
            await asyncio.sleep(0.01)


async def test_the_slot_is_free_while_the_pictures_download(
    make_service: Any, flow: FakeFlowServer, store: AnyStore
) -> None:
    flow.fife_answer_next(slow_picture(1.0))
    service, told = await make_service()
    slow = await service.submit(owner("1"), "slow --count 1")
    await downloading(flow)
    # The upstream answered: nothing holds its capacity while the picture comes.
    assert service.scheduler.in_flight == 0
    job = await store.get_job(slow.job_id)
    assert job is not None
    assert job.state is JobState.RUNNING
    assert told.answers(slow.job_id) == 0
    # Another job takes the slot at once and is answered before the slow download ends.
    quick = await service.submit(owner("2"), "quick --count 1")
    await told.wait_answered(quick.job_id, timeout=0.9)
    assert told.answers(slow.job_id) == 0
    await told.wait_answered(slow.job_id)
    assert told.result(slow.job_id).images
    assert len(flow.images_requests()) == 2


async def test_a_failed_download_is_retried_without_cutting_the_accounts_limit(
    make_service: Any, flow: FakeFlowServer
) -> None:
    flow.fife_answer_next(RawAnswer(503, {"Content-Type": "text/plain"}, [b"storage busy"]))
    service, told = await make_service(tuning=FAST)
    account = service.scheduler.accounts[ALICE]
    limit = account.limit
    submitted = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(submitted.job_id)
    assert told.result(submitted.job_id).images
    # The job was made again (the first pictures were lost), and the storage's 503 measured
    # nothing about the account's generation capacity.
    assert [r.status for r in flow.images_requests()] == [200, 200]
    assert flow.throttled == 0
    assert account.limit >= limit


async def test_a_job_stopped_while_its_pictures_download_is_made_again_on_restart(
    make_service: Any, flow: FakeFlowServer, store: AnyStore
) -> None:
    flow.fife_answer_next(slow_picture(5.0))
    service, _ = await make_service()
    submitted = await service.submit(owner(), "a fox --count 1")
    await downloading(flow)
    await service.aclose()
    job = await store.get_job(submitted.job_id)
    assert job is not None
    assert job.state is JobState.RUNNING
    assert await store.results(submitted.job_id) == []

    _again, told = await make_service()
    await told.wait_answered(submitted.job_id)
    assert told.result(submitted.job_id).images
    assert len(flow.images_requests()) == 2
