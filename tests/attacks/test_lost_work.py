"""Attacks on "every accepted request gets one answer": restarts, flaky platforms, full disks.

Nothing accepted may be lost or left on "⏳", and a generation that was paid for is not paid
for again when the store has a bad moment.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.core import texts
from bot.core.domain import GenerationRequest, ImageRef, JobState, ResultImage
from bot.core.service import delivery
from bot.frontends.telegram.status import UNDER_WAY, saying
from bot.store.sqlite import SqliteStore
from tests.attacks.conftest import until
from tests.conftest import AnyStore, as_uploaded, build_service, owner, wait_delivered
from tests.e2e.telegram.harness import USER, BotUnderTest, png, text_of, uploads
from tests.fakes.flow_server import FakeFlowServer, jpeg
from tests.fakes.notifier import RecordingNotifier

# Telegram.


async def test_a_restart_in_the_middle_of_an_album_loses_nothing(telegram: BotUnderTest) -> None:
    bot, tg = telegram, telegram.tg
    bot.album_wait = 0.1
    await bot.start()
    tg.download_delay = 5.0  # the first process stops while it fetches the album
    photos = [png(color=(0, 90, 0)), png(color=(200, 10, 10))]
    await tg.post_album(USER, USER, photos, "/imagine keep them --count 1")
    await tg.wait_for("getFile")
    await bot.restart()  # a clean stop, as systemd would do it
    tg.download_delay = 0.0
    # Taking up its status message again, the bot edits it to what it already says.
    bot.refusals.append("editMessageText: Bad Request: message is not modified")
    await bot.delivered(1)

    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(p) for p in photos]
    # One status message for the album, taken up again after the restart, and then the answer.
    assert len(tg.calls_of("sendMessage")) == 1
    [answer] = tg.calls_of("editMessageMedia")
    answered = tg.message(USER, answer.params["message_id"])
    assert answered is not None
    assert "photo" in answered
    assert "text" not in answered
    assert await bot.store.pending_keys("album", older_than=0) == []


async def test_a_status_message_failing_once_does_not_drop_the_request(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    tg.fail_next("sendMessage", error_code=500)
    bot.flow.hold()  # the job ends after its status message's second try (else: no status)
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await tg.wait_for("sendMessage", count=2)
    bot.flow.release()
    await bot.delivered(1)
    failed, status = tg.calls_of("sendMessage")
    assert failed.error is not None
    assert status.error is None
    assert text_of(status) == saying(UNDER_WAY)
    assert len(tg.calls_of("editMessageMedia")) == 1


async def test_a_status_message_that_never_goes_through_still_gets_the_answer(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    tg.fail_next("sendMessage", error_code=502, count=100)
    asked = await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1, timeout=15)
    [photo] = tg.calls_of("sendPhoto")
    assert photo.error is None
    assert photo.params["reply_parameters"]["message_id"] == asked["message"]["message_id"]


# The store.


# A full disk is made with SQLite's max_page_count: these run on SQLite only.
on_sqlite = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


async def _fill_the_disk(store: AnyStore) -> None:
    """No room for one more page: SQLite answers "database or disk is full", as on a full disk."""
    assert isinstance(store, SqliteStore)
    async with store.db.execute("PRAGMA page_count") as cur:
        row = await cur.fetchone()
    assert row is not None
    await store.db.execute(f"PRAGMA max_page_count = {row[0]}")


async def _free_the_disk(store: AnyStore) -> None:
    assert isinstance(store, SqliteStore)
    await store.db.execute("PRAGMA max_page_count = 1073741823")


@on_sqlite
async def test_a_full_disk_while_storing_a_result_does_not_pay_twice(
    make_service: Any, flow: FakeFlowServer, store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "STORE_BACKOFF", 0.05)
    service, told = await make_service()
    flow.image_size = (2000, 2000)  # ~60 kB: the result needs pages of its own
    flow.latency = 0.3
    submitted = await service.submit(owner(), "a fox --count 1")
    await until(lambda: flow.images_requests())
    await _fill_the_disk(store)
    await asyncio.sleep(0.6)  # the result came back and could not be stored, twice or more
    assert (await store.get_job(submitted.job_id)).state is JobState.RUNNING  # type: ignore[union-attr]
    await _free_the_disk(store)

    await told.wait_answered(submitted.job_id)
    assert told.result(submitted.job_id).images[0].data
    await wait_delivered(store, submitted.job_id)
    assert (await store.get_job(submitted.job_id)).state is JobState.DONE  # type: ignore[union-attr]
    assert len(flow.images_requests()) == 1  # generated (and paid for) once


@on_sqlite
async def test_a_disk_that_stays_full_fails_the_job_clearly(
    make_service: Any, flow: FakeFlowServer, store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "STORE_BACKOFF", 0.05)
    monkeypatch.setattr(delivery, "STORE_GIVE_UP", 0.3)
    service, told = await make_service()
    flow.image_size = (2000, 2000)
    flow.latency = 0.3
    submitted = await service.submit(owner(), "a fox --count 1")
    await until(lambda: flow.images_requests())
    await _fill_the_disk(store)
    await told.wait_answered(submitted.job_id)
    assert told.failure(submitted.job_id) == texts.NOT_SAVED
    job = await store.get_job(submitted.job_id)
    assert job is not None
    assert job.state is JobState.FAILED
    assert service.scheduler.entries() == []
    await _free_the_disk(store)
    again = await service.submit(owner(), "a fox --count 1")  # the bot carries on
    await told.wait_answered(again.job_id)


async def test_an_answer_waiting_through_a_long_outage_is_still_tried(
    flow: FakeFlowServer, store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.providers.flow import FlowClient

    request = GenerationRequest("a fox", "nano-banana-2", "1:1", 1, 5)
    job = await store.add_job(owner(), request, {}, day="2026-11-20")
    await store.mark_running(job.id, "alice@example.com")
    image = jpeg((64, 48), 5, "m1")
    ref = ImageRef("m1", "alice@example.com")
    await store.finish_job(job.id, [ResultImage(1, ref, 5, "nano-banana-2", "image/jpeg", image)])
    # The answer has waited (the platform, or the bot, was down) longer than the give-up window.
    monkeypatch.setattr(delivery, "DELIVERY_GIVE_UP", 0.0)

    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client)
        told = RecordingNotifier()
        service.attach("console", told)
        async with service:
            await told.wait_answered(job.id)
            await wait_delivered(store, job.id)
    assert told.result(job.id).images[0].data == image


async def test_an_answer_is_given_up_only_after_tries_spanning_the_window(
    make_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.policy import Tuning

    monkeypatch.setattr(delivery, "DELIVERY_BACKOFF", 0.01)
    monkeypatch.setattr(delivery, "DELIVERY_GIVE_UP", 0.5)
    service, told = await make_service(
        tuning=Tuning(retry_min_seconds=0.01, accounts_refresh_seconds=0.1)
    )
    told.fail_deliveries = 10**6
    started = time.monotonic()
    submitted = await service.submit(owner(), "a fox --count 1")
    await wait_delivered(service.store, submitted.job_id, timeout=10)  # given up, and recorded
    assert time.monotonic() - started >= 0.5
    assert 10**6 - told.fail_deliveries > delivery.DELIVERY_ATTEMPTS  # tried, round after round
