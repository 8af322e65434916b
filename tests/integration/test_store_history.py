"""What the stores keep for history and identity (schema 5): public ids, lineage, the chats a job
was shown in, where its images were posted, linked users and their codes.

Each test runs on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import replace

import psycopg
import pytest

from bot.core.buttons import Action
from bot.core.domain import GenerationRequest, ImageRef, Lineage, ResultImage, UpscaleRequest
from bot.core.people import UserKey
from bot.core.public_ids import PUBLIC_ID
from bot.store import StoreUrl, open_store
from bot.store.migrations import LATEST, MIGRATIONS
from tests.conftest import AnyStore, owner

DAY = "2026-01-01"
# The steps before the one that gave jobs public ids (whatever its number).
BEFORE_HISTORY = next(n for n, step in enumerate(MIGRATIONS) if "public_id" in step.sqlite)
TG, DC = UserKey("telegram", "42"), UserKey("discord", "555")


def request(prompt: str = "a fox") -> GenerationRequest:
    return GenerationRequest(prompt, "nano-banana-2", "1:1", 1, 5)


def image(index: int = 1) -> ResultImage:
    return ResultImage(index, ImageRef(f"m{index}", "alice@example.com"), 5, "nano-banana-2", "x")


async def test_a_job_gets_a_public_id_and_is_found_by_it(store: AnyStore) -> None:
    jobs = [await store.add_job(owner(), request(), {}, day=DAY) for _ in range(20)]
    ids = [job.public_id for job in jobs]
    assert all(re.fullmatch(PUBLIC_ID, public_id) for public_id in ids)
    assert len(set(ids)) == len(ids)
    for job in jobs:
        found = await store.job_by_public_id(job.public_id)
        assert found is not None
        assert found.id == job.id
    assert await store.job_by_public_id("zzzzzzz") is None


@pytest.fixture
def one_id_then_another(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Public ids drawn: the same one twice, then a fresh one (a clash, as luck may have it)."""
    draws = iter(["aaaaaaa", "aaaaaaa", "bbbbbbb"])
    drawn: list[str] = []

    def draw() -> str:
        drawn.append(next(draws))
        return drawn[-1]

    monkeypatch.setattr("bot.store.sqlite.new_public_id", draw)
    monkeypatch.setattr("bot.store.postgres.new_public_id", draw)
    return drawn


async def test_a_public_id_that_is_taken_is_drawn_again(
    store: AnyStore, one_id_then_another: list[str]
) -> None:
    first = await store.add_job(owner(), request(), {}, day=DAY)
    second = await store.add_job(owner(), request(), {}, day=DAY)
    assert (first.public_id, second.public_id) == ("aaaaaaa", "bbbbbbb")
    assert one_id_then_another == ["aaaaaaa", "aaaaaaa", "bbbbbbb"]
    assert await store.images_on(owner().user, DAY) == 2  # the clash counted nothing twice


async def test_history_is_newest_first_for_the_users_asked_only(store: AnyStore) -> None:
    tg = [await store.add_job(owner("42", "telegram"), request(f"t{n}"), {}, day=DAY) for n in "12"]
    await store.add_job(owner("9", "telegram"), request("someone else"), {}, day=DAY)
    dc = await store.add_job(owner("555", "discord"), request("d1"), {}, day=DAY)
    both = await store.history([TG, DC], offset=0, limit=10)
    assert [job.id for job in both] == [dc.id, tg[1].id, tg[0].id]
    assert [job.id for job in await store.history([TG], offset=1, limit=1)] == [tg[0].id]
    assert await store.history([TG], offset=2, limit=5) == []


async def test_a_job_knows_the_result_it_was_made_from(store: AnyStore) -> None:
    first = await store.add_job(owner("1"), request(), {}, day=DAY)
    reroll = await store.add_job(
        owner("2"), request(), {}, day=DAY, parent=Lineage(first.id, Action.REROLL)
    )
    edit = await store.add_job(
        owner("3"), request("at night"), {}, day=DAY, parent=Lineage(reroll.id, Action.REUSE, 2)
    )
    upscale = UpscaleRequest(edit.id, 1, ImageRef("m", "alice@example.com"), "2k", "nano-banana-2")
    # An upscale's parent is its request's source, whatever else is passed.
    up = await store.add_job(owner("3"), upscale, {}, day=DAY)

    assert first.parent is None
    assert reroll.parent == Lineage(
        first.id, Action.REROLL, 0, first.public_id, UserKey("console", "1")
    )
    found = await store.job_by_public_id(edit.public_id)
    assert found is not None
    assert found.parent == Lineage(
        reroll.id, Action.REUSE, 2, reroll.public_id, UserKey("console", "2")
    )
    assert up.parent == Lineage(edit.id, Action.UPSCALE, 1, edit.public_id, UserKey("console", "3"))
    # Only upscales count as an image's upscales.
    assert [job.id for job in await store.upscales_of(edit.id)] == [up.id]
    assert await store.upscales_of(first.id) == []


async def test_the_chats_a_job_was_shown_in(store: AnyStore) -> None:
    job = await store.add_job(owner(), request(), {}, day=DAY)
    assert not await store.shown_in(job.id, "telegram:-100")
    await store.add_shown(job.id, "telegram:-100")
    await store.add_shown(job.id, "telegram:-100")  # shown twice: still once
    assert await store.shown_in(job.id, "telegram:-100")
    assert not await store.shown_in(job.id, "telegram:-200")


async def test_where_images_were_posted_is_kept_while_the_images_are(store: AnyStore) -> None:
    job = await store.add_job(replace(owner(), name="@ana"), request(), {}, day=DAY)
    assert job.owner.name == "@ana"
    assert await store.mark_running(job.id, "alice@example.com") == 1
    assert await store.finish_job(job.id, [image(1), image(2)])
    await store.save_posted(job.id, "telegram", {1: "p:one", 2: "p:two", 3: "p:none"})
    await store.save_posted(job.id, "discord", {1: "https://cdn/one"})
    await store.save_posted(job.id, "telegram", {1: "d:one-again"})  # posted again: replaced
    assert await store.posted(job.id) == {
        1: {"telegram": "d:one-again", "discord": "https://cdn/one"},
        2: {"telegram": "p:two"},
    }
    await store.mark_delivered(job.id)
    assert await store.prune(-1, limit=10) >= 1  # everything is older than "in a second"
    assert await store.posted(job.id) == {}
    pruned = await store.get_job(job.id)
    assert pruned is not None
    assert pruned.pruned
    assert pruned.owner.name == ""  # how a caption named them goes with the prompt


async def test_two_users_are_linked_once_and_unlinked_together(store: AnyStore) -> None:
    assert (await store.identity(TG)).users == (TG,)
    assert await store.link(TG, DC)
    for user in (TG, DC):
        person = await store.identity(user)
        assert person.key == TG
        assert set(person.users) == {TG, DC}
    assert not await store.link(UserKey("telegram", "7"), DC)  # DC is linked already
    assert (await store.identity(UserKey("telegram", "7"))).users == (UserKey("telegram", "7"),)
    assert await store.unlink(DC) == sorted([TG, DC], key=str)
    assert (await store.identity(TG)).users == (TG,)
    assert await store.unlink(TG) == []


async def test_a_link_code_is_used_once_and_only_in_time(store: AnyStore) -> None:
    await store.add_link_code(TG, "hash-1", ttl=600)
    assert await store.take_link_code("hash-1") == TG
    assert await store.take_link_code("hash-1") is None
    await store.add_link_code(TG, "hash-2", ttl=600)
    await store.add_link_code(TG, "hash-3", ttl=600)  # a new code replaces the earlier one
    assert await store.take_link_code("hash-2") is None
    assert await store.take_link_code("hash-3") == TG
    await store.add_link_code(DC, "hash-4", ttl=-1)  # expired already
    assert await store.take_link_code("hash-4") is None


async def test_wrong_codes_are_counted_per_user_within_the_window(store: AnyStore) -> None:
    for _ in range(3):
        await store.add_link_try(TG, within=900)
    assert await store.link_tries(TG, within=900) == 3
    assert await store.link_tries(DC, within=900) == 0
    assert await store.link_tries(TG, within=-1) == 0  # none is that recent


async def test_jobs_stored_before_public_ids_get_them_with_their_lineage(store_url: str) -> None:
    # A store just before public ids, holding a job and an upscale of its image 2.
    where = StoreUrl.parse(store_url)
    generate = json.dumps(
        {"kind": "generate", "prompt": "a fox", "model": "nano-banana-2", "aspect_ratio": "1:1"}
        | {"count": 2, "seed": 5, "references": []}
    )
    upscale = json.dumps(
        {"kind": "upscale", "source_job": 1, "index": 2, "resolution": "2k"}
        | {"image": {"media_id": "m", "account": "alice@example.com"}, "model": "nano-banana-2"}
    )
    insert = (
        "INSERT INTO jobs (platform, user_id, chat_id, request, state, source_job, created_at, "
        "updated_at) VALUES ('console', '1', 'chat', {0}, 'done', {1}, {2}, {2})"
    )
    if where.kind == "sqlite":
        with sqlite3.connect(where.path) as db:
            for step in MIGRATIONS[:BEFORE_HISTORY]:
                for statement in filter(str.strip, step.sqlite.split(";")):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={BEFORE_HISTORY}")
            db.execute(insert.format("?", "NULL", "1.0e9"), (generate,))
            db.execute(insert.format("?", "1", "1.0e9"), (upscale,))
    else:
        async with await psycopg.AsyncConnection.connect(store_url, autocommit=True) as db:
            await db.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, step in enumerate(MIGRATIONS[:BEFORE_HISTORY], start=1):
                await db.execute(step.postgres)
                await db.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))
            await db.execute(insert.format("%s", "NULL", "now()"), (generate,))
            await db.execute(insert.format("%s", "1", "now()"), (upscale,))
    async with open_store(store_url) as store:
        assert await store.schema_version() == LATEST
        first, up = await store.get_job(1), await store.get_job(2)
        assert first is not None
        assert up is not None
        assert re.fullmatch(PUBLIC_ID, first.public_id)
        assert re.fullmatch(PUBLIC_ID, up.public_id)
        assert first.public_id != up.public_id
        assert up.parent == Lineage(1, Action.UPSCALE, 2, first.public_id, UserKey("console", "1"))
        # New jobs continue with fresh public ids.
        new = await store.add_job(owner(), request(), {}, day=DAY)
        assert new.public_id not in (first.public_id, up.public_id)
