"""BOT_RETENTION_DAYS: old prompts, results and user images go; the job's row stays, marked.

Each test runs on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot import retention
from bot.core.domain import (
    GenerationRequest,
    ImageRef,
    JobState,
    ResultImage,
    Upload,
    UpscaleRequest,
)
from bot.store.sqlite import SqliteStore
from tests.conftest import AnyStore, owner

DAYS = 30
OLD = 40 * retention.DAY


def request(prompt: str, *uploads: str) -> GenerationRequest:
    refs = tuple(Upload(sha, "image/png") for sha in uploads)
    return GenerationRequest(prompt, "nano-banana-2", "16:9", 2, 5, refs)


async def age(store: AnyStore, seconds: float, table: str = "jobs") -> None:
    """Make every row of ``table`` ``seconds`` older than it is."""
    if isinstance(store, SqliteStore):
        async with store._transaction() as db:
            await db.execute(f"UPDATE {table} SET created_at = created_at - ?", (seconds,))  # noqa: S608
    else:
        async with store.pool.connection() as db:
            await db.execute(
                f"UPDATE {table} SET created_at = created_at - make_interval(secs => %s)",  # noqa: S608
                (seconds,),
            )


async def finished(
    store: AnyStore, req: GenerationRequest | UpscaleRequest, *, deliver: bool = True
) -> int:
    job = await store.add_job(
        owner(),
        req,
        {sha.sha256: b"user picture" for sha in getattr(req, "uploads", ())},
        day="2026-01-01",
    )
    await store.mark_running(job.id, "alice@example.com")
    image = ResultImage(
        1, ImageRef("user:m1", "alice@example.com"), 9, "nano-banana-2", "image/jpeg", b"jpeg"
    )
    await store.finish_job(job.id, [image])
    if deliver:
        await store.mark_delivered(job.id)
    return job.id


async def test_an_old_answered_job_loses_its_prompt_and_images_and_keeps_its_row(
    store: AnyStore,
) -> None:
    old = await finished(store, request("my secret birthday plan"))
    await age(store, OLD)
    recent = await finished(store, request("a fox"))
    assert await retention.prune(store, DAYS) == 1
    job = await store.get_job(old)
    assert job is not None
    assert job.pruned
    assert (job.state, job.delivered, job.owner.chat_id) == (JobState.DONE, True, "chat")
    assert isinstance(job.request, GenerationRequest)
    assert job.request.prompt == ""
    assert (job.request.model, job.request.aspect_ratio, job.request.count) == (
        "nano-banana-2",
        "16:9",
        2,
    )
    assert await store.results(old) == []
    kept = await store.get_job(recent)
    assert kept is not None
    assert not kept.pruned
    assert await store.results(recent) != []
    assert await retention.prune(store, DAYS) == 0  # once is enough


async def test_open_and_undelivered_jobs_are_kept_however_old(store: AnyStore) -> None:
    queued = await store.add_job(owner(), request("waiting", "sha-q"), {"sha-q": b"pic"}, day="d")
    undelivered = await finished(store, request("not yet answered"), deliver=False)
    await age(store, OLD)
    assert await retention.prune(store, DAYS) == 0
    for job_id in (queued.id, undelivered):
        job = await store.get_job(job_id)
        assert job is not None
        assert not job.pruned
    assert await store.blob("sha-q") == b"pic"
    assert [image.data for image in await store.results(undelivered)] == [b"jpeg"]


async def test_a_pruned_jobs_user_images_go_unless_an_open_job_still_needs_them(
    store: AnyStore,
) -> None:
    # An answered job that still holds its two pictures (the store normally drops them on
    # delivery; pruning must not rely on it), and a queued job that shares one of them.
    first = await store.add_job(
        owner(), request("a", "sha-1", "sha-2"), {"sha-1": b"1", "sha-2": b"2"}, day="d"
    )
    await store.mark_running(first.id, "alice@example.com")
    await store.fail_job(first.id, "failed")
    await age(store, OLD)
    second = await store.add_job(owner("2"), request("b", "sha-2"), {"sha-2": b"2"}, day="d")
    await _deliver_keeping_uploads(store, first.id)
    assert await retention.prune(store, DAYS) == 1
    assert await store.blob("sha-1") is None
    assert await store.blob("sha-2") == b"2"
    assert (await store.get_job(second.id)) is not None


async def _deliver_keeping_uploads(store: AnyStore, job_id: int) -> None:
    """Mark a job delivered without the store's own upload clean-up."""
    if isinstance(store, SqliteStore):
        async with store._transaction() as db:
            await db.execute("UPDATE jobs SET delivered_at = ? WHERE id = ?", (time.time(), job_id))
    else:
        async with store.pool.connection() as db:
            await db.execute("UPDATE jobs SET delivered_at = now() WHERE id = %s", (job_id,))


async def test_an_upscale_keeps_its_options_and_loses_its_image_id(store: AnyStore) -> None:
    source = await finished(store, request("a fox"))
    upscale = UpscaleRequest(
        source, 1, ImageRef("user:m1", "alice@example.com"), "4k", "nano-banana-2"
    )
    job_id = await finished(store, upscale)
    await age(store, OLD)
    assert await retention.prune(store, DAYS) == 2
    job = await store.get_job(job_id)
    assert job is not None
    assert job.pruned
    assert job.request == UpscaleRequest(source, 1, ImageRef("", ""), "4k", "nano-banana-2")


async def test_old_cached_uploads_and_parked_values_go_too(store: AnyStore) -> None:
    await store.cache_asset("sha-old", "alice@example.com", "user:asset-old")
    await store.add_pending("album", "k-old", "v")
    await age(store, OLD, "assets")
    await age(store, OLD, "pending")
    await store.cache_asset("sha-new", "alice@example.com", "user:asset-new")
    await store.add_pending("album", "k-new", "v")
    assert await retention.prune(store, DAYS) == 2
    assert await store.cached_asset("sha-old", "alice@example.com", max_age=1e9) is None
    assert await store.cached_asset("sha-new", "alice@example.com", max_age=1e9) == "user:asset-new"
    assert await store.take_pending("album", "k-old") == []
    assert await store.take_pending("album", "k-new") == ["v"]


async def test_a_large_backlog_goes_in_batches(
    store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    ids = [await finished(store, request(f"prompt {i}")) for i in range(8)]
    await age(store, OLD)
    batches: list[int] = []
    real = store.prune

    async def counted(older_than: float, *, limit: int) -> int:
        batches.append(pruned := await real(older_than, limit=limit))
        return pruned

    monkeypatch.setattr(store, "prune", counted)
    assert await retention.prune(store, DAYS) == 8
    assert batches == [3, 3, 2, 0]
    jobs = [await store.get_job(i) for i in ids]
    assert all(job is not None and job.pruned for job in jobs)


async def test_pruning_runs_at_start_and_then_every_period(
    store: AnyStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "bot.retention")
    await finished(store, request("old"))
    await age(store, OLD)
    async with retention.pruning(store, DAYS, every=0.05):
        async with asyncio.timeout(5):
            while sum("pruned" in r.message for r in caplog.records) < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if "pruned" in r.message]
    assert lines[0] == "pruned 1 rows older than 30 days (BOT_RETENTION_DAYS)"
    assert lines[1] == "pruned 0 rows older than 30 days (BOT_RETENTION_DAYS)"
