"""``python -m bot migrate-store``: a SQLite store copied whole into an empty PostgreSQL one."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.core.character_records import CharacterImage
from bot.core.domain import ImageRef, Job, ResultImage, UserSettings
from bot.core.people import UserKey
from bot.store import open_store
from tests.conftest import AnyStore, owner
from tests.e2e.bot_process import run_bot
from tests.integration.test_store import request

DAY = "2026-11-23"
PICTURES = (CharacterImage("cd" * 32, "image/png", b"face"),)


async def fill(store: AnyStore) -> None:
    """One job in each state a store can hold, with everything that hangs off jobs."""
    image = ResultImage(
        1,
        ImageRef("user:1-image:a", "alice@example.com"),
        7,
        "nano-banana-2",
        "image/jpeg",
        b"jpeg",
    )
    delivered = await store.add_job(owner("1"), request("delivered"), {}, day=DAY)
    await store.mark_running(delivered.id, "alice@example.com")
    await store.finish_job(delivered.id, [image])
    await store.mark_delivered(delivered.id)
    undelivered = await store.add_job(owner("1"), request("undelivered"), {}, day=DAY)
    await store.mark_running(undelivered.id, "alice@example.com")
    await store.finish_job(undelivered.id, [replace(image, index=1), replace(image, index=2)])
    failed = await store.add_job(owner("2"), request("failed"), {}, day=DAY)
    await store.fail_job(failed.id, "The image service is busy.")
    cancelled = await store.add_job(owner("2"), request("cancelled"), {}, day=DAY)
    await store.cancel_job(cancelled.id)
    await store.add_job(owner("3"), request("queued", "ab" * 32), {"ab" * 32: b"photo"}, day=DAY)
    running = await store.add_job(owner("3"), request("running"), {}, day=DAY)
    await store.mark_running(running.id, "bob@example.com")
    await store.add_job(owner("4"), request("pruned later"), {}, day=DAY)
    await store.save_user_settings(
        UserKey("console", "1"), UserSettings(model="nano-banana-pro", count=2)
    )
    await store.cache_asset("ab" * 32, "alice@example.com", "user:1-image:ref")
    await store.add_pending("album", "chat:1", '{"file": 1}')
    await store.add_pending("album", "chat:1", '{"file": 2}')
    carol = await store.add_character(
        UserKey("telegram", "1"), "Carol", "alice@example.com", "user:1-character:c", PICTURES
    )
    assert carol is not None
    await store.share_character("telegram:-100", carol.id, carol.name)


async def test_everything_is_copied_and_new_ids_continue_past_the_old(
    tmp_path: Path, postgres_url: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/bot.sqlite3"
    async with open_store(sqlite_url) as old:
        await fill(old)
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:  # what pruning old jobs would do
        db.execute("DELETE FROM jobs WHERE id = 7")

    code, out, err = await run_bot(
        "migrate-store", "--from", sqlite_url, env={"DATABASE_URL": postgres_url}, cwd=tmp_path
    )
    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    assert "jobs: 6 rows" in lines
    assert "images: 3 rows" in lines
    assert "jobs: new ids start at 8" in lines  # 7 was given once: it is never given again

    async with open_store(sqlite_url) as old, open_store(postgres_url) as new:
        for job_id in range(1, 8):
            assert _comparable(await new.get_job(job_id)) == _comparable(await old.get_job(job_id))
            assert await new.results(job_id) == await old.results(job_id)
        for read in ("unfinished_jobs", "undelivered_jobs"):
            assert [j.id for j in await getattr(new, read)()] == [
                j.id for j in await getattr(old, read)()
            ]
        user = UserKey("console", "1")
        assert await new.user_settings(user) == await old.user_settings(user)
        assert await new.images_on(user, DAY) == await old.images_on(user, DAY) == 2
        assert await new.blob("ab" * 32) == b"photo"
        assert await new.cached_asset("ab" * 32, "alice@example.com", max_age=1e10) == (
            "user:1-image:ref"
        )
        assert await new.pending_keys("album", older_than=-1) == ["chat:1"]
        assert await new.take_pending("album", "chat:1") == ['{"file": 1}', '{"file": 2}']
        assert (await new.add_job(owner(), request(), {}, day=DAY)).id == 8
        [carol] = await new.shared_characters("telegram:-100")
        assert carol == (await old.characters(UserKey("telegram", "1")))[0]
        assert await new.character_images(carol.id) == list(PICTURES)


def _comparable(job: Job | None) -> Job | None:
    # PostgreSQL keeps microseconds; SQLite kept the float the clock gave.
    if job is None:
        return None
    return replace(
        job,
        created_at=pytest.approx(job.created_at, abs=1e-5),  # type: ignore[arg-type]
        updated_at=pytest.approx(job.updated_at, abs=1e-5),  # type: ignore[arg-type]
    )


async def test_a_database_in_use_is_refused_without_showing_the_password(
    tmp_path: Path, postgres_url: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/bot.sqlite3"
    async with open_store(sqlite_url) as old:
        await fill(old)
    # The test cluster lets its superuser in without a password: this one is only to be hidden.
    parts = urlsplit(postgres_url)
    with_password = urlunsplit(parts._replace(netloc=parts.netloc.replace("@", ":s3cr3t-x@")))
    args = ("migrate-store", "--from", sqlite_url, "--to", with_password)
    assert (await run_bot(*args, env={}, cwd=tmp_path))[0] == 0

    code, out, err = await run_bot(*args, env={}, cwd=tmp_path)
    assert code == 2
    assert err.splitlines() == [
        f"error: {with_password.replace('s3cr3t-x', '***')} already holds jobs: "
        "copy into an empty database only"
    ]
    assert "s3cr3t-x" not in out + err


async def test_a_missing_source_is_refused_not_created(tmp_path: Path, postgres_url: str) -> None:
    code, _, err = await run_bot(
        "migrate-store", "--from", "sqlite:///nowhere/bot.sqlite3", "--to", postgres_url,
        env={}, cwd=tmp_path,
    )  # fmt: skip
    assert code == 2
    assert err.splitlines() == ["error: there is no SQLite store at nowhere/bot.sqlite3"]
    assert not (tmp_path / "nowhere").exists()


async def test_the_copy_goes_only_from_sqlite_to_postgresql(tmp_path: Path) -> None:
    code, _, err = await run_bot(
        "migrate-store", "--from", "sqlite:///a.sqlite3", "--to", "sqlite:///b.sqlite3",
        env={}, cwd=tmp_path,
    )  # fmt: skip
    assert code == 2
    assert err.splitlines() == [
        "error: migrate-store copies a sqlite:/// store into a postgresql:// one"
    ]
