"""The service against the real Flow client, the fake Flow server and a real store (each test
runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import re
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image

from bot.core import option_texts, rules_texts, texts
from bot.core.buttons import Action, Button
from bot.core.captions import ResultView
from bot.core.domain import ImageRef, JobState
from bot.core.errors import AlreadyMade, InvalidInput
from bot.core.people import Owner, UserKey
from bot.core.policy import Access, Limits, Tuning
from bot.core.presenters import label
from bot.store import open_store
from bot.store.migrations import LATEST
from tests.conftest import (
    FAST,
    AnyStore,
    as_uploaded,
    build_service,
    image_bytes,
    owner,
    wait_delivered,
)
from tests.fakes.flow_server import FakeFlowServer, Recorded


async def test_a_prompt_becomes_images_with_buttons(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    submitted = await service.submit(owner(), "a red fox --count 2 --ar 16:9 --model 2 --seed 9")
    assert submitted.position == 1
    await told.wait_answered(submitted.job_id)

    result = told.result(submitted.job_id)
    assert [i.index for i in result.images] == [1, 2]
    for image in result.images:
        assert image.data is not None
        with Image.open(io.BytesIO(image.data)) as img:
            assert img.format == "JPEG"
    # A row per image, its number on each button, then one to draw the prompt again.
    assert [[label(b) for b in row] for row in result.buttons] == [
        ["⬆️ Upscale 1", "✏️ Edit 1"],
        ["⬆️ Upscale 2", "✏️ Edit 2"],
        ["🎲 Draw again"],
    ]
    assert told.progress == []  # answered at once: no "generating" on the way
    sent = body(flow.images_requests()[-1])
    assert sent == {
        "prompt": "a red fox",
        "model": "nano-banana-2",
        "aspectRatio": "16:9",
        "count": 2,
        "seed": 9,
        "email": "alice@example.com",
    }
    await wait_delivered(service.store, submitted.job_id)
    job = await service.store.get_job(submitted.job_id)
    assert job is not None
    assert job.state is JobState.DONE
    # Delivered bytes are not kept; what buttons need is.
    stored = await service.store.results(submitted.job_id)
    assert [i.data for i in stored] == [None, None]
    assert all(i.ref.media_id for i in stored)


async def test_no_upscale_buttons_where_the_model_cannot(make_service: Any) -> None:
    service, told = await make_service()
    submitted = await service.submit(owner(), "a fox --model lite --count 1")
    await told.wait_answered(submitted.job_id)
    result = told.result(submitted.job_id)
    assert [[label(b) for b in row] for row in result.buttons] == [["✏️ Edit 1"], ["🎲 Draw again"]]
    # The result says how to get upscale buttons, in the words of the user's platform.
    caption = ResultView.of(result, service.models, limit=1024).caption
    assert caption.endswith(
        "nano-banana-2-lite can't upscale; for ⬆️ Upscale buttons, use --model 2."
    )


async def test_bad_input_is_refused_before_any_upstream_call(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, _ = await make_service()
    flow.reset_records()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        ("x --model dalle", {}),
        ("x --count 9", {}),
        ("x --model lite", {"images": [image_bytes()] * 11}),
        ("x", {"images": [b"%PDF-1.4 not an image"]}),
    ]
    for text, extra in cases:
        with pytest.raises(InvalidInput):
            await service.submit(owner(), text, **extra)
    assert flow.requests == []
    assert await service.store.unfinished_jobs() == []


async def test_references_are_uploaded_once_per_account(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    photo = image_bytes("PNG")
    first = await service.submit(owner(), "make it blue --count 1", images=[photo])
    await told.wait_answered(first.job_id)
    second = await service.submit(owner(), "make it green --count 1", images=[photo])
    await told.wait_answered(second.job_id)
    await wait_delivered(service.store, second.job_id)
    uploads = [r for r in flow.requests if "/assets/" in r.path]
    assert len(uploads) == 1
    refs = [body(r)["reference_1"] for r in flow.images_requests()]
    assert refs[0] == refs[1]
    # The user's picture is not kept once its jobs are done.
    assert await service.store.blob(hashlib.sha256(as_uploaded(photo)).hexdigest()) is None


async def test_throttling_is_retried_and_lowers_the_limit(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    account = service.scheduler.accounts["alice@example.com"]
    account.limit = 8.0  # grown above the floor (3), as after a busy while: room to fall
    flow.fail_next(429, count=2, retry_after=0.05)
    submitted = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(submitted.job_id)
    assert told.result(submitted.job_id).images
    assert len(flow.images_requests()) == 3
    # Nothing else was in flight: the throttle measured no room beyond the floor.
    assert account.limit == 3


async def test_a_job_refused_for_capacity_takes_the_next_free_slot_not_a_timer(
    make_service: Any, flow: FakeFlowServer
) -> None:
    # The upstream holds 2 at a time, one less than the account's starting limit, and asks a
    # refused client to wait 30 s: a job that waited a timer would never be answered in time.
    flow.latency, flow.capacity, flow.retry_after = 0.3, 2, 30.0
    flow.hold()  # the three meet at the upstream at once, however slow the machine
    service, told = await make_service(tuning=Tuning(retry_min_seconds=30))
    jobs = [await service.submit(owner(str(user)), "a fox --count 1") for user in range(3)]
    async with asyncio.timeout(5):
        while flow.throttled == 0:  # noqa: ASYNC110 - the fake has nothing to await
            await asyncio.sleep(0.01)
    flow.release()
    await told.wait_answered(*(job.job_id for job in jobs), timeout=5)
    assert all(told.result(job.job_id).images for job in jobs)
    assert flow.throttled == 1
    # The refused job went upstream again when the first slot freed, and only then.
    requests = flow.images_requests()
    assert len(requests) == 4
    assert sum(1 for r in requests if r.status == 200) == 3


async def test_the_limit_an_account_was_found_to_take_survives_a_restart(
    make_service: Any, flow: FakeFlowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.service import learned as learned_limits

    monkeypatch.setattr(learned_limits, "LIMITS_EVERY", 0.05)
    flow.latency = 0.2
    service, told = await make_service()
    start = service.scheduler.accounts["alice@example.com"].limit
    jobs = [await service.submit(owner(str(user)), "a fox --count 1") for user in range(8)]
    jobs += [await service.submit(owner(str(user)), "a cat --count 1") for user in range(8)]
    await told.wait_answered(*(job.job_id for job in jobs))
    learned = service.scheduler.accounts["alice@example.com"].limit
    assert learned > start  # full rounds of successes raised it

    # Written while the bot runs (a crash loses at most LIMITS_EVERY of learning)...
    async def saved() -> int:
        return int((await service.store.account_limits()).get("alice@example.com", 0))

    async with asyncio.timeout(5):
        while await saved() != int(learned):  # noqa: ASYNC110 - the store has nothing to await
            await asyncio.sleep(0.01)
    # ...and a restart starts from it instead of the floor.
    restarted, _ = await make_service()
    assert int(restarted.scheduler.accounts["alice@example.com"].limit) == int(learned)


async def test_generating_is_not_shown_for_a_job_its_model_says_ends_within_a_second(
    make_service: Any, flow: FakeFlowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.service import progress

    monkeypatch.setattr(progress, "SETTLE", 0.1)  # "generating" once a run lasted 0.1 s
    flow.latency = 0.5
    service, told = await make_service()
    jobs = []
    for n in range(4):
        jobs.append((await service.submit(owner(), f"fox {n} --count 1")).job_id)
        await told.wait_answered(jobs[-1])
    # Nothing known of the model yet: each of the first three showed "generating"; then its
    # recent median says a run ends within a second of that: the fourth doesn't flicker.
    assert [job for job, _ in told.progress] == jobs[:3]
    assert all(status.running and status.text == texts.STARTED for _, status in told.progress)


async def test_retries_give_up_at_the_deadline_with_a_clear_message(
    make_service: Any, flow: FakeFlowServer
) -> None:
    tuning = Tuning(retry_min_seconds=0.01, retry_max_seconds=0.02, job_deadline_seconds=0.2)
    service, told = await make_service(tuning=tuning)
    flow.fail_next(503, count=1000)
    submitted = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(submitted.job_id)
    assert told.failure(submitted.job_id) == texts.UNAVAILABLE


async def test_moderation_is_retried_then_another_model_then_reported(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    flow.fail_next(500, count=2)
    submitted = await service.submit(owner(), "a fox --model pro --count 1")
    await told.wait_answered(submitted.job_id)
    models = [body(r)["model"] for r in flow.images_requests()]
    assert models == ["nano-banana-pro", "nano-banana-pro", "nano-banana-2"]
    assert told.result(submitted.job_id).images[0].model == "nano-banana-2"

    flow.empty_next(3)
    again = await service.submit(owner(), "a fox --model pro --count 1")
    await told.wait_answered(again.job_id)
    assert told.failure(again.job_id) == texts.moderated(texts.naming("console"))


async def test_moderation_fallback_can_be_turned_off(
    make_service: Any, flow: FakeFlowServer
) -> None:
    tuning = Tuning(retry_min_seconds=0.01, moderation_fallback=False)
    service, told = await make_service(tuning=tuning)
    flow.fail_next(500, count=2)
    submitted = await service.submit(owner(), "a fox --model pro --count 1")
    await told.wait_answered(submitted.job_id)
    assert told.failure(submitted.job_id) == texts.moderated(texts.naming("console"))
    assert len(flow.images_requests()) == 2


@pytest.mark.parametrize(
    ("inject", "message"),
    [
        (lambda f: f.fail_next_unsafe(), texts.CONTENT_POLICY),
        (
            lambda f: f.fail_next(400, body={"error": "Prompt must not mention brands"}),
            texts.rejected("Prompt must not mention brands"),
        ),
    ],
)
async def test_refusals_are_not_retried(
    make_service: Any, flow: FakeFlowServer, inject: Any, message: str
) -> None:
    service, told = await make_service()
    inject(flow)
    submitted = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(submitted.job_id)
    assert told.failure(submitted.job_id) == message
    assert len(flow.images_requests()) == 1


async def test_a_refused_reference_upload_is_told_and_nothing_generated(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    flow.fail_next(400, endpoint="assets", body={"error": "Image contains a prominent person"})
    submitted = await service.submit(owner(), "x --count 1", images=[image_bytes()])
    await told.wait_answered(submitted.job_id)
    assert told.failure(submitted.job_id) == texts.REFERENCE_REFUSED
    assert flow.images_requests() == []


async def test_operator_errors_alert_admins_once_and_fail_over(store: AnyStore) -> None:
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:
        service, told, client = await _two_account_service(flow, store)
        try:
            flow.fail_next(402)
            first = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(first.job_id)
            failed_on = flow.images_requests()[0].account
            assert told.result(first.job_id).images[0].ref.account != failed_on
            await told.wait_alerts(1)
            assert told.alerts[0][0] == "99"
            assert "no subscription or credits" in told.alerts[0][1]
            assert failed_on is not None
            assert failed_on in told.alerts[0][1]

            # The account stays out of rotation: no second 402, no second alert.
            second = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(second.job_id)
            assert len([r for r in flow.images_requests() if r.account == failed_on]) == 1

            # The last account fails too: the user hears the bot needs its operator.
            flow.fail_next(596)
            third = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(third.job_id)
            assert told.failure(third.job_id) == texts.OPERATOR
            await told.wait_alerts(2)
            assert "cookies" in told.alerts[1][1]
            with pytest.raises(InvalidInput, match="needs its operator"):
                await service.submit(owner(), "a fox --count 1")
        finally:
            await service.aclose()
            await client.aclose()


def body(request: Recorded) -> dict[str, Any]:
    assert isinstance(request.json, dict)
    return request.json


async def _two_account_service(flow: FakeFlowServer, store: AnyStore, tuning: Tuning = FAST) -> Any:
    from bot.providers.flow import FlowClient
    from tests.fakes.notifier import RecordingNotifier

    client = FlowClient("test-token", flow.base_url)
    told = RecordingNotifier()
    service = build_service(store, client, tuning=tuning)
    service.attach("console", told)
    await service.start()
    return service, told, client


async def test_jobs_with_generated_references_run_on_the_owning_account(store: AnyStore) -> None:
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:
        service, told, client = await _two_account_service(flow, store)
        try:
            first = await service.submit(owner(), "a fox --count 2 --model 2")
            await told.wait_answered(first.job_id)
            made_on = told.result(first.job_id).images[1].ref.account
            reused = await service.press(
                owner("2"), Button(Action.REUSE, first.public_id, 2), "at night"
            )
            await told.wait_answered(reused.job_id)
            request = flow.images_requests()[-1]
            assert body(request)["model"] == "nano-banana-2"  # the source image's model
            assert body(request)["email"] == made_on
            assert body(request)["reference_1"] == told.result(first.job_id).images[1].ref.media_id
            assert not [r for r in flow.requests if "/assets/" in r.path]  # no re-upload
            other = await service.press(
                owner("2"), Button(Action.REUSE, first.public_id, 1), "x --model pro"
            )
            await told.wait_answered(other.job_id)
            assert body(flow.images_requests()[-1])["model"] == "nano-banana-pro"
        finally:
            await service.aclose()
            await client.aclose()


async def test_reroll_and_upscale_buttons(make_service: Any, flow: FakeFlowServer) -> None:
    service, told = await make_service()
    first = await service.submit(owner(), "a fox --count 2 --model pro --seed 1")
    await told.wait_answered(first.job_id)

    reroll = await service.press(owner("2"), Button(Action.REROLL, first.public_id))
    await told.wait_answered(reroll.job_id)
    rerolled = told.result(reroll.job_id)
    assert rerolled.job.owner.user_id == "2"  # the presser's job
    assert body(flow.images_requests()[-1])["seed"] != 1
    assert body(flow.images_requests()[-1])["prompt"] == "a fox"

    up = await service.press(owner(), Button(Action.UPSCALE, first.public_id, 2))
    await told.wait_answered(up.job_id)
    upscaled = told.result(up.job_id)
    assert upscaled.buttons == ()
    assert upscaled.images[0].data is not None
    with Image.open(io.BytesIO(upscaled.images[0].data)) as img:
        assert img.width > 64
    sent = body([r for r in flow.requests if r.path.endswith("/images/upscale")][-1])
    assert sent["resolution"] == "2k"
    assert sent["mediaGenerationId"] == told.result(first.job_id).images[1].ref.media_id


async def test_upscale_refused_where_the_model_cannot(make_service: Any) -> None:
    service, told = await make_service()
    first = await service.submit(owner(), "a fox --count 1 --model lite")
    await told.wait_answered(first.job_id)
    with pytest.raises(InvalidInput, match="can't be upscaled"):
        await service.press(owner(), Button(Action.UPSCALE, first.public_id, 1))


async def test_an_upscale_is_made_once_per_image_and_size(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    first = await service.submit(owner(), "a fox --count 2 --model 2")
    await told.wait_answered(first.job_id)
    upscale = Button(Action.UPSCALE, first.public_id, 1)
    # One that failed is no upscale: it is made when asked again.
    flow.fail_next(400, endpoint="upscale")
    failed = await service.press(owner(), upscale)
    await told.wait_answered(failed.job_id)
    assert told.failure(failed.job_id)
    flow.upscale_latency = 0.5  # long enough to press again while it is being made
    made = await service.press(owner(), upscale)
    with pytest.raises(InvalidInput, match="already on its way"):
        await service.press(owner("2"), upscale)  # anyone's press, while it is being made
    await told.wait_answered(made.job_id)
    with pytest.raises(AlreadyMade) as again:
        await service.press(owner("2"), upscale)
    assert (again.value.job_id, again.value.message) == (made.job_id, texts.UPSCALE_AGAIN)
    # Another size, or another image, is another upscale.
    await service.update_settings(UserKey("console", "2"), upscale_resolution="4k")
    bigger = await service.press(owner("2"), upscale)
    other = await service.press(owner(), Button(Action.UPSCALE, first.public_id, 2))
    await told.wait_answered(bigger.job_id, other.job_id)
    assert len([r for r in flow.requests if r.path.endswith("/upscale")]) == 4


async def test_buttons_for_unknown_jobs_or_images(make_service: Any) -> None:
    service, told = await make_service()
    with pytest.raises(InvalidInput, match="no longer available"):
        await service.press(owner(), Button(Action.REROLL, "999"))
    first = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(first.job_id)
    with pytest.raises(InvalidInput, match="no longer available"):
        await service.press(owner(), Button(Action.REUSE, first.public_id, 4), "x")


async def test_queue_cap_and_cancel(make_service: Any, flow: FakeFlowServer) -> None:
    flow.hold()  # the first job runs until every check below is made, however slow the machine
    service, told = await make_service(limits=Limits(queued_per_user=2, running_per_user=1))
    running = await service.submit(owner(), "one --count 1")
    async with asyncio.timeout(5):
        while not await _is_running(service, running.job_id):  # noqa: ASYNC110 - a store read
            await asyncio.sleep(0.01)
    waiting = [await service.submit(owner(), f"job {i} --count 1") for i in range(2)]
    with pytest.raises(InvalidInput, match="already have 2 jobs waiting"):
        await service.submit(owner(), "one too many")
    queue = await service.queue(UserKey("console", "1"))
    assert [q.job.id for q in queue] == [running.job_id, *(w.job_id for w in waiting)]

    with pytest.raises(InvalidInput, match="Only the person"):
        await service.cancel(UserKey("console", "2"), waiting[0].job_id)
    assert await service.cancel(UserKey("console", "1"), waiting[0].job_id) == texts.CANCELLED
    await service.cancel(UserKey("console", "99"), waiting[1].job_id)  # an admin may
    flow.release()
    await told.wait_answered(running.job_id)
    with pytest.raises(InvalidInput, match="already finished"):
        await service.cancel(UserKey("console", "1"), running.job_id)
    assert len(flow.images_requests()) == 1
    for w in waiting:
        job = await service.store.get_job(w.job_id)
        assert job is not None
        assert job.state is JobState.CANCELLED


async def _is_running(service: Any, job_id: int) -> bool:
    job = await service.store.get_job(job_id)
    return job is not None and job.state is JobState.RUNNING


async def test_a_running_job_is_cancelled_and_its_images_thrown_away(
    make_service: Any, flow: FakeFlowServer
) -> None:
    flow.latency = 0.5
    service, told = await make_service()
    running = await service.submit(owner(), "one --count 2")
    async with asyncio.timeout(5):  # until the upstream call is under way
        while not await _is_running(service, running.job_id):  # noqa: ASYNC110 - a store read
            await asyncio.sleep(0.01)
    done = await service.cancel(UserKey("console", "1"), running.job_id)
    assert done == texts.CANCELLED_RUNNING
    # The upstream call can't be stopped: it runs to its end, and nothing of it is kept or told.
    async with asyncio.timeout(5):
        while service.scheduler.in_flight:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    after = await service.submit(owner(), "two --count 1")  # the slot was given back
    await told.wait_answered(after.job_id)
    job = await service.store.get_job(running.job_id)
    assert job is not None
    assert (job.state, job.delivered) == (JobState.CANCELLED, True)
    assert await service.store.results(running.job_id) == []
    assert told.answers(running.job_id) == 0
    assert await service.queue(UserKey("console", "1")) == []


async def test_daily_quota_counts_each_users_images(make_service: Any) -> None:
    service, told = await make_service(limits=Limits(daily_images_per_user=3))
    first = await service.submit(owner(), "a fox --count 2")
    with pytest.raises(InvalidInput, match="today's limit of 3 images"):
        await service.submit(owner(), "a fox --count 2")  # 2 + 2 > 3
    last = await service.submit(owner(), "a fox --count 1")  # 2 + 1: up to the limit
    with pytest.raises(InvalidInput, match="today's limit of 3 images"):
        await service.submit(owner(), "a fox --count 1")
    other = await service.submit(owner("2"), "my own three --count 3")  # a quota per user
    admins = [await service.submit(owner("99"), f"exempt {n} --count 4") for n in range(2)]
    done = [first, last, other, *admins]
    await told.wait_answered(*(s.job_id for s in done))


async def test_allowlist_lets_in_only_the_chats_and_users_it_names(make_service: Any) -> None:
    access = Access(
        admins=frozenset({"console:99"}),
        allowed_chats=frozenset({"console:ok"}),
        allowed_users=frozenset({"console:5"}),
    )
    service, told = await make_service(access=access)
    with pytest.raises(InvalidInput) as refused:
        await service.submit(owner(), "a fox")
    assert refused.value.message == rules_texts.NOT_ALLOWED
    in_chat = await service.submit(Owner("console", "1", chat_id="ok"), "a fox --count 1")
    by_user = await service.submit(owner("5"), "a fox --count 1")
    await told.wait_answered(in_chat.job_id, by_user.job_id)
    assert told.result(in_chat.job_id).images
    assert told.result(by_user.job_id).images


async def test_settings_are_validated_and_used(make_service: Any, flow: FakeFlowServer) -> None:
    service, told = await make_service()
    user = UserKey("console", "1")
    with pytest.raises(InvalidInput):
        await service.update_settings(user, model="dalle")
    with pytest.raises(InvalidInput):
        await service.update_settings(user, count="7")
    saved = await service.update_settings(user, model="pro", aspect_ratio="portrait", count="1")
    assert (saved.model, saved.aspect_ratio, saved.count) == ("nano-banana-pro", "9:16", 1)
    submitted = await service.submit(owner(), "a fox")
    await told.wait_answered(submitted.job_id)
    sent = body(flow.images_requests()[-1])
    assert (sent["model"], sent["aspectRatio"], sent["count"]) == ("nano-banana-pro", "9:16", 1)


async def test_delivery_faults_are_retried_then_given_up(make_service: Any) -> None:
    service, told = await make_service()
    told.fail_deliveries = 1
    submitted = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(submitted.job_id)
    assert told.answers(submitted.job_id) == 1

    told.fail_deliveries, told.permanent = 1, True
    gone = await service.submit(owner(), "a fox --count 1")
    await wait_delivered(service.store, gone.job_id)
    assert told.answers(gone.job_id) == 0


async def test_restart_redelivers_stored_results_without_regenerating(
    make_service: Any, flow: FakeFlowServer, store: AnyStore
) -> None:
    service, told = await make_service()
    # Stop the service right after the result is stored, before it is delivered.
    original = told.job_finished

    async def crash(result: Any) -> None:
        raise asyncio.CancelledError

    told.job_finished = crash
    submitted = await service.submit(owner(), "a fox --count 1")
    for _ in range(200):
        job = await store.get_job(submitted.job_id)
        if job is not None and job.state is JobState.DONE:
            break
        await asyncio.sleep(0.01)
    await service.aclose()
    told.job_finished = original
    generated = len(flow.images_requests())

    _again, told_again = await make_service()
    await told_again.wait_answered(submitted.job_id)
    assert len(flow.images_requests()) == generated
    assert told_again.result(submitted.job_id).images[0].data


async def test_restart_requeues_interrupted_generations(
    make_service: Any, flow: FakeFlowServer, store: AnyStore
) -> None:
    flow.latency = 5.0
    service, _ = await make_service()
    submitted = await service.submit(owner(), "a fox --count 1")
    for _ in range(200):
        if flow.in_flight.get("alice@example.com"):
            break
        await asyncio.sleep(0.01)
    await service.aclose()
    job = await store.get_job(submitted.job_id)
    assert job is not None
    assert job.state is JobState.RUNNING

    flow.latency = 0.0
    _again, told = await make_service()
    await told.wait_answered(submitted.job_id)
    assert told.result(submitted.job_id).images


async def test_pending_values_survive_in_the_store(store: AnyStore, store_url: str) -> None:
    await store.add_pending("album", "chat:1", "a")
    await store.add_pending("album", "chat:1", "b")
    await store.add_pending("prompt", "chat:1", "c")
    # Another connection, as a restarted process would open: what was parked is in the database.
    async with open_store(store_url) as reopened:
        assert await reopened.pending_keys("album", older_than=-1) == ["chat:1"]
        assert await reopened.pending_keys("album", older_than=60) == []
        assert await reopened.take_pending("album", "chat:1") == ["a", "b"]
        assert await reopened.take_pending("album", "chat:1") == []
        assert await reopened.take_pending("prompt", "chat:1") == ["c"]
        assert await reopened.schema_version() == LATEST
    assert await store.take_pending("album", "chat:1") == []  # taken once, for everyone


async def test_jobs_submitted_before_start_run_once(flow: FakeFlowServer, store: AnyStore) -> None:
    from bot.core.models_table import ModelTable
    from bot.core.service import Service
    from bot.providers.flow import FlowClient
    from tests.fakes.notifier import RecordingNotifier

    async with FlowClient("test-token", flow.base_url) as client:
        service = Service(store, [client], models=ModelTable.builtin(), tuning=FAST)
        told = RecordingNotifier()
        service.attach("console", told)
        submitted = await service.submit(owner(), "early --count 1")
        async with service:
            await told.wait_answered(submitted.job_id)
            await wait_delivered(store, submitted.job_id)
        assert len(flow.images_requests()) == 1


async def test_an_answer_waits_for_its_platform_to_attach(
    flow: FakeFlowServer, store: AnyStore
) -> None:
    from bot.providers.flow import FlowClient
    from tests.fakes.notifier import RecordingNotifier

    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client)
        async with service:
            submitted = await service.submit(owner(), "made before anyone listens --count 1")
            async with asyncio.timeout(5):
                while (job := await store.get_job(submitted.job_id)) is None or not job.state.final:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # a delivery would have been tried by now
            job = await store.get_job(submitted.job_id)
            assert job is not None
            assert (job.state, job.delivered) == (JobState.DONE, False)  # waiting, not failed

            told = RecordingNotifier()
            service.attach("console", told)
            await told.wait_answered(submitted.job_id)
            await wait_delivered(store, submitted.job_id)
            assert told.answers(submitted.job_id) == 1


async def test_an_alert_raised_before_its_platform_attaches_is_told_when_it_does(
    flow: FakeFlowServer, store: AnyStore
) -> None:
    from bot.providers.flow import FlowClient
    from tests.fakes.notifier import RecordingNotifier

    flow.fail_next(401, endpoint="accounts")  # the token is refused at start
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client)
        async with service:
            told = RecordingNotifier()
            service.attach("console", told)
            await told.wait_alerts(1)
            assert told.alerts[0][0] == "99"
            assert "USEAPI_TOKEN" in told.alerts[0][1]


async def test_an_alert_no_admin_could_take_is_kept_and_given_when_they_next_write(
    flow: FakeFlowServer, store: AnyStore
) -> None:
    from bot.providers.flow import FlowClient
    from tests.fakes.notifier import RecordingNotifier

    admins = Access(admins=frozenset({"console:99", "console:98"}))
    flow.fail_next(402)
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client, access=admins)
        told = RecordingNotifier(unreachable={"99"})  # never wrote to the bot, say
        service.attach("console", told)
        async with service:
            submitted = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(submitted.job_id)
            await told.wait_alerts(1)
            assert [admin for admin, _ in told.alerts] == ["98"]  # the other admin is told
            async with asyncio.timeout(5):
                while not await service.undelivered_alerts():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            [kept] = await service.undelivered_alerts()
            assert (kept.admin, kept.text) == (UserKey("console", "99"), told.alerts[0][1])

            service.seen(UserKey("console", "1"))  # not an admin: nothing to give
            service.seen(UserKey("console", "99"))  # still unreachable: kept again
            await asyncio.sleep(0.1)
            assert len(told.alerts) == 1
            assert len(await service.undelivered_alerts()) == 1
        told.unreachable.clear()  # they wrote to the bot at last; meanwhile, a restart

    async with FlowClient("test-token", flow.base_url) as client:
        again = build_service(store, client, access=admins)
        told_again = RecordingNotifier()
        async with again:
            again.attach("console", told_again)
            await told_again.wait_alerts(1)
            assert told_again.alerts == [("99", kept.text)]
            async with asyncio.timeout(5):
                while await again.undelivered_alerts():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)


async def test_a_write_cancelled_midway_leaves_the_store_usable(store: AnyStore) -> None:
    for _ in range(20):
        task = asyncio.create_task(store.add_pending("x", "k", "v"))
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await store.add_pending("x", "k", "last")
    assert (await store.take_pending("x", "k"))[-1] == "last"


async def test_a_cached_asset_the_upstream_forgot_is_uploaded_again(
    make_service: Any, flow: FakeFlowServer, store: AnyStore
) -> None:
    service, told = await make_service()
    photo = image_bytes("PNG", color="blue")
    sha = hashlib.sha256(as_uploaded(photo)).hexdigest()
    # What a cache entry looks like after the upstream dropped the asset (or after a restart
    # against another upstream): an id it no longer knows.
    await store.cache_asset(sha, "alice@example.com", "user:1-email:00-image:forgotten")
    submitted = await service.submit(owner(), "make it blue --count 1", images=[photo])
    await told.wait_answered(submitted.job_id)
    assert told.result(submitted.job_id).images
    refs = [body(r)["reference_1"] for r in flow.images_requests()]
    assert refs[0] == "user:1-email:00-image:forgotten"
    assert refs[1] != refs[0]
    assert len([r for r in flow.requests if "/assets/" in r.path]) == 1


async def test_cached_asset_ids_expire(store: AnyStore) -> None:
    await store.cache_asset("abc", "alice@example.com", "user:1-image:x")
    assert await store.cached_asset("abc", "alice@example.com", max_age=60) == "user:1-image:x"
    assert await store.cached_asset("abc", "alice@example.com", max_age=0) is None
    assert await store.cached_asset("abc", "bob@example.com", max_age=60) is None


async def test_a_job_pinned_to_an_account_gone_bad_is_answered(store: AnyStore) -> None:
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:
        # The refresh loop runs for real, every 0.1 s: nothing here calls its steps.
        tuning = Tuning(
            retry_min_seconds=0.01, job_deadline_seconds=0.3, accounts_refresh_seconds=0.1
        )
        service, told, client = await _two_account_service(flow, store, tuning=tuning)
        try:
            first = await service.submit(owner(), "a fox --count 1 --model 2")
            await told.wait_answered(first.job_id)
            made_on = told.result(first.job_id).images[0].ref.account
            flow.hold()  # the reuses run until the account is known to be bad
            busy = [  # three reuses fill the account the image lives on (limit 3)
                await service.press(owner(str(u)), Button(Action.REUSE, first.public_id, 1), "x")
                for u in (2, 3, 4)
            ]
            up = await service.press(owner(), Button(Action.UPSCALE, first.public_id, 1))
            assert service.scheduler.position(up.job_id) == 1  # waiting for room on its account
            flow.set_health(made_on, "needs new cookies")
            async with asyncio.timeout(5):
                while made_on in service.scheduler.healthy_accounts():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            flow.release()
            await told.wait_answered(up.job_id, *(b.job_id for b in busy))
            assert told.failure(up.job_id) == texts.UNAVAILABLE
            assert made_on not in service.scheduler.healthy_accounts()
        finally:
            await service.aclose()
            await client.aclose()


async def test_the_refresh_loop_brings_back_an_account_the_api_says_is_fine(
    make_service: Any, flow: FakeFlowServer, store: AnyStore
) -> None:
    from bot.core.domain import GenerationRequest

    # A job left by a previous run, resumed while the only account is down: it waits (within
    # its deadline) for the loop to see the account fine again.
    job = await store.add_job(
        owner(), GenerationRequest("a fox", "nano-banana-2-lite", "1:1", 1, 1), {}, day="2026-11-23"
    )
    flow.set_health("alice@example.com", "needs new cookies")
    service, told = await make_service(tuning=replace(FAST, accounts_refresh_seconds=0.1))
    assert service.scheduler.healthy_accounts() == []
    await asyncio.sleep(0.35)
    assert told.answers(job.id) == 0
    assert len([r for r in flow.requests if r.path.endswith("/accounts")]) >= 3
    flow.set_health("alice@example.com", "OK")
    await told.wait_answered(job.id, timeout=2)
    assert told.result(job.id).images


async def test_a_job_pinned_to_an_account_no_longer_used_fails_at_start(
    flow: FakeFlowServer, store: AnyStore
) -> None:
    from bot.core.domain import GenerationRequest
    from bot.providers.flow import FlowClient
    from tests.fakes.notifier import RecordingNotifier

    request = GenerationRequest(
        "x", "nano-banana-2", "1:1", 1, 1, (ImageRef("user:1-image:a", "gone@example.com"),)
    )
    job = await store.add_job(owner(), request, {}, day="2026-11-23")
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client)
        told = RecordingNotifier()
        service.attach("console", told)
        async with service:
            await told.wait_answered(job.id)
    assert told.failure(job.id) == texts.REFERENCE_NOT_USABLE


async def test_a_finished_job_stays_finished_when_its_cache_entry_vanishes(
    make_service: Any, flow: FakeFlowServer, store: AnyStore
) -> None:
    service, told = await make_service()
    photo = image_bytes("PNG", color="green")
    flow.latency = 0.3
    submitted = await service.submit(owner(), "x --count 1", images=[photo])
    async with asyncio.timeout(5):
        while not flow.images_requests():  # noqa: ASYNC110 — waiting on another server
            await asyncio.sleep(0.01)
    # Mid-generation: another job's refusal drops the cache, and uploads start failing.
    await store.forget_assets("alice@example.com", [hashlib.sha256(as_uploaded(photo)).hexdigest()])
    flow.fail_next(429, count=10, endpoint="assets")
    await told.wait_answered(submitted.job_id)
    assert told.result(submitted.job_id).images


@pytest.mark.parametrize("status", [500, 403, 400])
async def test_an_odd_answer_to_the_account_list_does_not_stop_the_start(
    make_service: Any, flow: FakeFlowServer, status: int
) -> None:
    flow.fail_next(status, endpoint="accounts")
    # The refresh that learns the accounts comes after BOT_ACCOUNTS_REFRESH_SECONDS at the
    # latest, however little the start learnt.
    service, told = await make_service(tuning=replace(FAST, accounts_refresh_seconds=0.2))
    assert len([r for r in flow.requests if r.path.endswith("/accounts")]) == 1
    # Until then no account is known to serve, and a request would be refused at once.
    async with asyncio.timeout(5):
        while not (await service.health()).healthy:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    submitted = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(submitted.job_id, timeout=5)
    assert told.result(submitted.job_id).images


async def test_a_platform_down_for_a_while_gets_the_answer_later(
    make_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.service import delivery

    monkeypatch.setattr(delivery, "DELIVERY_BACKOFF", 0.01)
    tuning = Tuning(retry_min_seconds=0.01, accounts_refresh_seconds=0.2)
    service, told = await make_service(tuning=tuning)
    told.fail_deliveries = delivery.DELIVERY_ATTEMPTS  # every attempt of the first round
    submitted = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(submitted.job_id)  # from the sweep, after the refresh interval
    assert told.result(submitted.job_id).images[0].data
    assert told.answers(submitted.job_id) == 1


async def test_concurrent_submissions_cannot_pass_the_caps(make_service: Any) -> None:
    service, _ = await make_service(limits=Limits(queued_per_user=2, daily_images_per_user=3))
    service.scheduler.accounts["alice@example.com"].limit = 0.0  # no room: everything waits
    outcomes = await asyncio.gather(
        *(service.submit(owner(), f"job {i} --count 1") for i in range(10)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 2
    assert all(isinstance(o, InvalidInput) for o in outcomes if isinstance(o, Exception))
    other = await asyncio.gather(
        *(service.submit(owner("5"), f"job {i} --count 2") for i in range(4)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, Exception) for o in other) == 1  # 2 + 2 > 3 images


@pytest.mark.parametrize("linked", [False, True], ids=["one account", "two linked accounts"])
async def test_a_quota_read_before_the_users_other_job_was_stored_lets_only_one_through(
    make_service: Any, store: AnyStore, monkeypatch: pytest.MonkeyPatch, linked: bool
) -> None:
    service, _ = await make_service(limits=Limits(queued_per_user=5, daily_images_per_user=2))
    service.scheduler.accounts["alice@example.com"].limit = 0.0  # no room: both would wait
    first, second = owner("1", "telegram"), owner("2" if linked else "1", "telegram")
    if linked:  # one person: the store, which counts each account apart, can't see it
        second = owner("2", "discord")
        offer = await service.link(first.user)
        code = re.search(r"code: (\S+)", offer.text)
        assert code is not None
        assert (await service.link(second.user, code[1])).linked
    # The second submission reads the day's images before the first is stored, and checks
    # them after the first has been stored and has let go of its reservation.
    read = store.images_on
    second_read, first_done = asyncio.Event(), asyncio.Event()
    reads: dict[asyncio.Task[Any] | None, int] = {}  # each submission's reads, in read order
    accounts = 2 if linked else 1  # the day's images are read account by account

    async def images_on(user: UserKey, day: str) -> int:
        reader = asyncio.current_task()
        reads[reader] = reads.get(reader, 0) + 1
        used = await read(user, day)
        if reader is next(iter(reads)):
            await second_read.wait()
        elif reads[reader] == accounts:
            second_read.set()
            await first_done.wait()
        return used

    async def submitting(who: Owner, prompt: str) -> Any:
        try:
            return await service.submit(who, prompt)
        finally:
            if asyncio.current_task() is next(iter(reads)):
                first_done.set()

    monkeypatch.setattr(store, "images_on", images_on)
    outcomes = await asyncio.gather(
        submitting(first, "a fox --count 2"),
        submitting(second, "a cat --count 2"),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert isinstance(refused[0], InvalidInput)
    assert str(refused[0]) == option_texts.daily_quota(2)


async def test_settings_refuse_odd_digits(make_service: Any) -> None:
    service, _ = await make_service()
    with pytest.raises(InvalidInput, match="from 1 to 4"):
        await service.update_settings(UserKey("console", "1"), count="²")
