"""The service on several roads at once, through the real clients against the fake servers and a
real store (each test runs on SQLite and on PostgreSQL): the next road taking over, a Wireflow
execution waited for again after a restart, and each road alone serving references."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from typing import Any

import pytest
from PIL import Image

from bot.core import texts
from bot.core.buttons import Action, Button
from bot.core.captions import ResultView
from bot.core.domain import JobState
from bot.core.errors import InvalidInput
from bot.providers.flow import FlowClient
from bot.providers.gemini import GeminiClient
from bot.providers.nbpro import NbproClient
from tests.conftest import (
    AnyStore,
    as_uploaded,
    image_bytes,
    owner,
    serving,
    wait_delivered,
)
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.nbpro_server import FakeNbproServer
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.wireflow_server import FakeWireflowServer
from tests.roads import wireflow_client


def gemini_client(server: FakeGeminiServer) -> GeminiClient:
    return GeminiClient(server.api_key, server.base_url)


def made_by(told: RecordingNotifier, job_id: int) -> set[str]:
    return {image.ref.provider for image in told.result(job_id).images}


async def test_flow_out_of_credits_mid_queue_every_job_answered_once_on_gemini(
    store: AnyStore,
) -> None:
    async with (
        FakeFlowServer(accounts=["alice@example.com"], latency=0.2) as flow,
        FakeGeminiServer(latency=0.05) as gemini,
    ):
        async with serving(
            store, FlowClient("test-token", flow.base_url), gemini_client(gemini)
        ) as (service, told):
            users = [owner(str(u)) for u in range(1, 5)]
            jobs = []
            flow.hold()  # the first calls are made and held there, however slow the machine
            for round_ in range(3):
                for who in users:
                    submitted = await service.submit(who, f"a fox {round_} --model 2 --count 2")
                    jobs.append(submitted.job_id)
            async with asyncio.timeout(5):
                while not flow.held:  # noqa: ASYNC110 - the fake has nothing to await
                    await asyncio.sleep(0.01)
            flow.fail_next(402, count=1000)  # the subscription ran out, mid-queue
            flow.release()
            started = time.monotonic()
            await told.wait_answered(*jobs, timeout=30)
            took = time.monotonic() - started
            for job_id in jobs:
                await wait_delivered(store, job_id)

        # Every job answered exactly once, with its images, and none failed.
        assert told.failed == []
        assert [told.answers(j) for j in jobs] == [1] * len(jobs)
        assert all(len(told.result(j).images) == 2 for j in jobs)
        roads = [made_by(told, j) for j in jobs]
        assert {"flow"} in roads
        assert {"gemini"} in roads
        assert all(len(r) == 1 for r in roads)
        # None doubled: every image Gemini made was delivered (a count of 2 is two calls).
        on_gemini = sum(r == {"gemini"} for r in roads)
        assert gemini.generated == 2 * on_gemini
        # Each user is told which road made their images.
        for job_id, road in zip(jobs, roads, strict=True):
            caption = ResultView.of(told.result(job_id), service.models, limit=1024).caption
            assert caption.splitlines()[0].endswith(texts.via(road.pop()))
        last = ResultView.of(told.result(jobs[-1]), service.models, limit=1024).caption
        assert "via Gemini API" in last
        # The admin was told once, naming the road and what to do.
        assert len(told.alerts) == 1
        admin, text = told.alerts[0]
        assert admin == "99"
        assert "no subscription or credits" in text
        for job_id, road in zip(jobs, [made_by(told, j) for j in jobs], strict=True):
            job = await store.get_job(job_id)
            assert job is not None
            assert job.state is JobState.DONE
            assert job.delivered
            # The store records the road that made each image (buttons are read from it).
            assert {image.ref.provider for image in await store.results(job_id)} == road
        print(f"\nfailover: {on_gemini} of {len(jobs)} jobs moved to Gemini in {took:.2f} s")


async def test_an_image_flow_made_stays_on_flow_when_flow_cannot_serve(store: AnyStore) -> None:
    async with (
        FakeFlowServer(accounts=["alice@example.com"]) as flow,
        FakeGeminiServer() as gemini,
        serving(store, FlowClient("test-token", flow.base_url), gemini_client(gemini)) as (
            service,
            told,
        ),
    ):
        first = await service.submit(owner(), "a fox --model 2 --count 1")
        await told.wait_answered(first.job_id)
        flow.fail_next(402, count=10)
        # R on Flow's image: its reference lives on Flow's account, no other road has it.
        edit = await service.press(owner(), Button(Action.REUSE, first.public_id, 1), "in snow")
        await told.wait_answered(edit.job_id)
        assert told.failure(edit.job_id) == texts.OPERATOR
        assert gemini.generated == 0


async def test_a_wireflow_execution_is_waited_for_again_after_a_restart(store: AnyStore) -> None:
    async with FakeWireflowServer(plan="pro", latency=1.0) as wireflow:
        async with serving(store, wireflow_client(wireflow)) as (service, told):
            submitted = await service.submit(owner(), "a lighthouse --model pro --count 2")
            job_id = submitted.job_id
            async with asyncio.timeout(10):  # the execution ids are stored before waiting
                while not ((job := await store.get_job(job_id)) and job.execution):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
                while not (job.execution and len(job.execution.ids) == 2):
                    await asyncio.sleep(0.02)
                    job = await store.get_job(job_id)
                    assert job is not None
            assert told.answers(job_id) == 0
        # The process stopped while Wireflow rendered; the next one waits for the same runs.
        assert wireflow.executed == 2
        async with serving(store, wireflow_client(wireflow)) as (service, told):
            await told.wait_answered(job_id, timeout=20)
            assert len(told.result(job_id).images) == 2
        assert wireflow.executed == 2  # nothing submitted (nor paid) twice
        assert len(wireflow.execute_requests()) == 2
        assert made_by(told, job_id) == {"wireflow"}


async def test_a_stop_between_submitting_and_storing_replays_what_wireflow_already_runs(
    store: AnyStore,
) -> None:
    async with FakeWireflowServer(plan="pro", latency=0.5) as wireflow:
        wireflow.stall_next(0, endpoint="execute")
        wireflow.stall_next(60, endpoint="execute")  # the second execution's answer never comes
        async with serving(store, wireflow_client(wireflow)) as (service, told):
            submitted = await service.submit(owner(), "a lighthouse --model pro --count 2")
            async with asyncio.timeout(10):
                while len(wireflow.execute_requests()) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            job = await store.get_job(submitted.job_id)
            assert job is not None
            assert job.execution is None  # stopped before the ids could be stored
        assert wireflow.executed == 1
        async with serving(store, wireflow_client(wireflow)) as (service, told):
            await told.wait_answered(submitted.job_id, timeout=20)
            assert len(told.result(submitted.job_id).images) == 2
        # The same key again: Wireflow answers the first execution it already runs (paid once),
        # and starts only the one it never started.
        assert wireflow.replays == 1
        assert wireflow.executed == 2


async def test_a_failed_wireflow_execution_is_submitted_again_under_a_new_key(
    store: AnyStore,
) -> None:
    async with FakeWireflowServer(plan="pro") as wireflow:
        async with serving(store, wireflow_client(wireflow)) as (service, told):
            wireflow.fail_next_execution()
            submitted = await service.submit(owner(), "a lighthouse --model pro --count 1")
            await told.wait_answered(submitted.job_id, timeout=20)
            assert len(told.result(submitted.job_id).images) == 1
        keys = [r.headers["idempotency-key"] for r in wireflow.execute_requests()]
        assert len(keys) == 2
        assert keys[0] != keys[1]  # the same key would replay the failure
        assert wireflow.replays == 0


def pixels(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def gemini_pictures(request: Any) -> list[bytes]:
    parts = request.json["contents"][0]["parts"]
    return [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]


async def test_gemini_alone_serves_references_and_every_button(store: AnyStore) -> None:
    picture = image_bytes(size=(64, 48), color="blue")
    async with (
        FakeGeminiServer() as gemini,
        serving(store, gemini_client(gemini)) as (service, told),
    ):
        first = await service.submit(owner(), "a fox --count 2 --ar 21:9", images=[picture])
        await told.wait_answered(first.job_id)
        [call, _] = gemini.generate_requests()
        assert gemini_pictures(call) == [as_uploaded(picture)]
        result = told.result(first.job_id)
        assert made_by(told, first.job_id) == {"gemini"}
        actions = {b.action for row in result.buttons for b in row}
        assert actions == {Action.UPSCALE, Action.REUSE, Action.REROLL}
        await wait_delivered(store, first.job_id)

        # R: Gemini keeps nothing, so the image itself goes back as the reference.
        edit = await service.press(owner(), Button(Action.REUSE, first.public_id, 2), "at night")
        await told.wait_answered(edit.job_id)
        [sent] = gemini_pictures(gemini.generate_requests()[-1])
        made = told.result(first.job_id).images[1].data
        assert made is not None
        assert pixels(sent) == pixels(made)
        # 🎲 sends the user's picture again (kept for the buttons).
        again = await service.press(owner(), Button(Action.REROLL, first.public_id, 0))
        await told.wait_answered(again.job_id)
        assert gemini_pictures(gemini.generate_requests()[-1]) == [as_uploaded(picture)]
        # U: no upscale endpoint on Gemini; it renders the same prompt and seed at 2K.
        up = await service.press(owner(), Button(Action.UPSCALE, first.public_id, 1))
        await told.wait_answered(up.job_id)
        upscaled = gemini.generate_requests()[-1].json
        assert upscaled is not None
        config = upscaled["generationConfig"]
        assert config["imageConfig"]["imageSize"] == "2K"
        assert told.answers(up.job_id) == 1
        assert not told.failed


async def test_nano_banana_pro_net_alone_serves_references(store: AnyStore) -> None:
    picture = image_bytes(size=(64, 48), color="green")
    async with FakeNbproServer() as nbpro:
        client = NbproClient(nbpro.api_key, nbpro.base_url, media_hosts=("127.0.0.1",))
        async with serving(store, client) as (service, told):
            first = await service.submit(owner(), "a fox --count 1", images=[picture])
            await told.wait_answered(first.job_id)
            assert made_by(told, first.job_id) == {"nbpro"}
            [uploads] = nbpro.uploads
            assert [u.data for u in uploads] == [as_uploaded(picture)]


async def test_wireflow_alone_refuses_a_users_picture_with_a_sentence_and_edits_its_own(
    store: AnyStore,
) -> None:
    async with (
        FakeWireflowServer(plan="pro") as wireflow,
        serving(store, wireflow_client(wireflow)) as (service, told),
    ):
        first = await service.submit(owner(), "a fox --model pro --count 1")
        await told.wait_answered(first.job_id, timeout=20)
        made = told.result(first.job_id).images[0]
        edit = await service.press(owner(), Button(Action.REUSE, first.public_id, 1), "at dusk")
        await told.wait_answered(edit.job_id, timeout=20)
        assert made_by(told, edit.job_id) == {"wireflow"}
        graph = wireflow.execute_requests()[-1].json
        assert made.ref.media_id in str(graph)  # its own result, by URL
        assert not told.failed
        before = len(wireflow.requests)
        with pytest.raises(InvalidInput) as refused:
            await service.submit(owner(), "a fox", images=[image_bytes()])
        print(f"\nrefusal: {refused.value}")
        assert len(wireflow.requests) == before  # nothing sent


async def test_a_bot_without_flow_says_characters_need_it_before_fetching_a_picture(
    store: AnyStore,
) -> None:
    fetched: list[int] = []

    async def fetch() -> list[bytes]:
        fetched.append(1)
        return [image_bytes()]

    async with FakeGeminiServer() as gemini, serving(store, gemini_client(gemini)) as (service, _):
        with pytest.raises(InvalidInput) as refused:
            await service.create_character(owner(), "Carol", images=1, fetch=fetch)
    assert refused.value.message == texts.CHARACTERS_NEED_FLOW
    assert fetched == []
    assert gemini.requests == []
