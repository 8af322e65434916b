"""The stores themselves: migrations, refusals, secrets, and what concurrent writers may not break.

Each test that takes ``store`` or ``store_url`` runs on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
import time
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from bot.core.domain import (
    GenerationRequest,
    ImageRef,
    JobState,
    ResultImage,
    Upload,
    UpscaleRequest,
)
from bot.core.models_table import ModelTable
from bot.core.people import UserKey
from bot.core.ports import CapReached, Caps
from bot.core.service import Service
from bot.providers.flow import FlowClient
from bot.store import SchemaTooNew, StoreError, StoreUrl, open_store
from bot.store.migrations import LATEST, MIGRATIONS
from bot.store.postgres import PostgresStore
from bot.store.postgres_server import Connection
from tests.conftest import FAST, AnyStore, owner
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.notifier import RecordingNotifier
from tests.postgres_server import PostgresServer

# The SQLite steps as they shipped: databases in the field ran exactly these texts.
SHIPPED_SQLITE = {
    1: "77274de66f01f698235287ca0873821893bbdb00504570946661ff8a4613c528",
    2: "8dcae19228ed9aedaaf472a733b33e196067ed5ff7e74ad22e0191133e8dc695",
}


def request(prompt: str = "a fox", *uploads: str) -> GenerationRequest:
    refs = tuple(Upload(sha, "image/png") for sha in uploads)
    return GenerationRequest(prompt, "nano-banana-2", "1:1", 1, 5, refs)


def test_shipped_sqlite_steps_keep_their_text() -> None:
    for version, digest in SHIPPED_SQLITE.items():
        assert hashlib.sha256(MIGRATIONS[version - 1].sqlite.encode()).hexdigest() == digest


async def test_a_sqlite_store_made_by_the_shipped_code_still_works(
    tmp_path: Path, flow: FakeFlowServer
) -> None:
    # What the bot before this change left on disk: the shipped steps run as it ran them, and
    # rows as it wrote them (epoch seconds, JSON text).
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for version in SHIPPED_SQLITE:
            for statement in filter(str.strip, MIGRATIONS[version - 1].sqlite.split(";")):
                db.execute(statement)
        db.execute(f"PRAGMA user_version={len(SHIPPED_SQLITE)}")
        done = json.dumps({**_old_request("a cat"), "references": []})
        db.execute(
            "INSERT INTO jobs (platform, user_id, chat_id, request, state, account, attempts, "
            "created_at, updated_at, delivered_at) VALUES "
            "('console', '1', 'chat', ?, 'done', 'alice@example.com', 1, 1.0e9, 1.0e9, 1.0e9)",
            (done,),
        )
        db.execute(
            "INSERT INTO images VALUES (1, 1, 'user:1-image:old', 'alice@example.com', 5, "
            "'nano-banana-2', 'image/jpeg', NULL)"
        )
        queued = json.dumps({**_old_request("a dog"), "references": []})
        db.execute(
            "INSERT INTO jobs (platform, user_id, chat_id, request, state, created_at, updated_at) "
            "VALUES ('console', '2', 'chat', ?, 'queued', 1.0e9, 1.0e9)",
            (queued,),
        )
        db.execute("INSERT INTO user_settings VALUES ('console', '1', '{\"count\": 2}')")
        db.execute("INSERT INTO usage VALUES ('console', '1', '2001-09-09', 1, 1)")
        db.execute("INSERT INTO pending (kind, key, value, created_at) VALUES ('a', 'k', 'v', 1)")

    async with open_store(f"sqlite:///{path}") as store:
        assert await store.schema_version() == LATEST
        old = await store.get_job(1)
        assert old is not None
        assert (old.state, old.delivered, old.account) == (JobState.DONE, True, "alice@example.com")
        assert [i.ref for i in await store.results(1)] == [
            ImageRef("user:1-image:old", "alice@example.com")
        ]
        assert (await store.user_settings(UserKey("console", "1"))).count == 2
        assert await store.images_on(UserKey("console", "1"), "2001-09-09") == 1
        assert await store.take_pending("a", "k") == ["v"]
        # The queued job runs and is answered; new jobs continue the old ids.
        async with FlowClient("test-token", flow.base_url) as client:
            service = Service(store, [client], models=ModelTable.builtin(), tuning=FAST)
            told = RecordingNotifier()
            service.attach("console", told)
            async with service:
                await told.wait_answered(2)
                assert told.result(2).images
                assert (await service.submit(owner(), "a bird --count 1")).job_id == 3


def _old_request(prompt: str) -> dict[str, object]:
    return {"kind": "generate", "prompt": prompt, "model": "nano-banana-2"} | {
        "aspect_ratio": "1:1",
        "count": 1,
        "seed": 5,
    }


async def test_a_store_newer_than_the_bot_is_refused(store_url: str) -> None:
    async with open_store(store_url) as store:
        assert await store.schema_version() == LATEST
    await _set_version(store_url, LATEST + 1)
    with pytest.raises(SchemaTooNew) as refused:
        async with open_store(store_url):
            pass
    message = str(refused.value)
    assert f"schema version {LATEST + 1}, newer than this bot knows ({LATEST})" in message
    assert message.endswith("upgrade the bot")


async def _set_version(url: str, version: int) -> None:
    where = StoreUrl.parse(url)
    if where.kind == "sqlite":
        with sqlite3.connect(where.path) as db:
            db.execute(f"PRAGMA user_version={version}")
        return
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await db.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))


async def test_both_stores_have_the_same_tables_and_columns(
    tmp_path: Path, postgres_url: str
) -> None:
    async with open_store(f"sqlite:///{tmp_path}/s.sqlite3"):
        pass
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        in_sqlite = {
            (t, c[1]) for t in tables if t != "sqlite_sequence" for c in db.execute(
                f"PRAGMA table_info({t})"
            )
        }  # fmt: skip
    async with open_store(postgres_url), await psycopg.AsyncConnection.connect(postgres_url) as db:
        cur = await db.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'schema_migrations'"
        )
        in_postgres = set(await cur.fetchall())
    assert in_postgres == in_sqlite


async def test_processes_starting_together_migrate_once(postgres_url: str) -> None:
    stores = [open_store(postgres_url) for _ in range(4)]
    await asyncio.gather(*(s.__aenter__() for s in stores))
    try:
        assert [await s.schema_version() for s in stores] == [LATEST] * 4
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    async with await psycopg.AsyncConnection.connect(postgres_url) as db:
        cur = await db.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [v for (v,) in await cur.fetchall()] == list(range(1, LATEST + 1))


async def test_an_image_shared_by_two_jobs_outlives_the_first_ones_delivery(
    store: AnyStore,
) -> None:
    """Delivering one job drops the user's image unless another open job still needs it.

    On PostgreSQL the two writes really overlap; the blob must survive whichever commits first.
    """
    for round_ in range(25):
        photo = f"photo {round_}".encode()
        sha = hashlib.sha256(photo).hexdigest()
        first = await store.add_job(owner(), request("one", sha), {sha: photo}, day="2026-01-01")
        await store.finish_job(first.id, [])
        second, _ = await asyncio.gather(
            store.add_job(owner(), request("two", sha), {sha: photo}, day="2026-01-01"),
            store.mark_delivered(first.id),
        )
        assert await store.blob(sha) == photo, round_
        await store.cancel_job(second.id)
        assert await store.blob(sha) is None


async def test_a_parked_value_is_taken_once(store: AnyStore) -> None:
    for i in range(10):
        await store.add_pending("album", "chat:1", str(i))
    taken = await asyncio.gather(*(store.take_pending("album", "chat:1") for _ in range(5)))
    assert sorted(v for values in taken for v in values) == [str(i) for i in range(10)]
    assert all(values == sorted(values) for values in taken)  # each in the order parked


async def test_a_parked_album_is_claimed_once_and_stays_parked_until_taken(
    store: AnyStore,
) -> None:
    for i in range(10):
        await store.add_pending("album", "chat:1", str(i))
    claims = await asyncio.gather(
        *(store.move_pending("album", "chat:1", "album.taken") for _ in range(5))
    )
    assert [values for values in claims if values] == [[str(i) for i in range(10)]]
    assert await store.pending_keys("album", older_than=0) == []
    assert await store.pending_keys("album.taken", older_than=0) == ["chat:1"]
    assert await store.move_pending("album.taken", "chat:1", "album") == [str(i) for i in range(10)]
    assert await store.take_pending("album", "chat:1") == [str(i) for i in range(10)]


async def test_a_peek_at_parked_values_leaves_them(store: AnyStore) -> None:
    await store.add_pending("answer.sent", "7", "album=12")
    await store.add_pending("answer.sent", "7", "post:3=3,4")
    assert await store.peek_pending("answer.sent", "7") == ["album=12", "post:3=3,4"]
    assert await store.peek_pending("answer.sent", "8") == []
    assert await store.take_pending("answer.sent", "7") == ["album=12", "post:3=3,4"]


async def test_kept_admin_alerts_are_listed_and_taken_per_admin(store: AnyStore) -> None:
    ann, bob = UserKey("telegram", "7"), UserKey("discord", "8")
    before = time.time()
    await store.hold_alert(ann, "first")
    await store.hold_alert(bob, "for bob")
    await store.hold_alert(ann, "second")
    held = await store.held_alerts()
    assert [(a.admin, a.text) for a in held] == [
        (ann, "first"),
        (bob, "for bob"),
        (ann, "second"),
    ]
    assert all(before - 5 <= a.since <= time.time() + 5 for a in held)
    assert await store.take_alerts(ann) == ["first", "second"]
    assert [a.admin for a in await store.held_alerts()] == [bob]


async def test_an_upscale_counts_one_image_of_the_day(store: AnyStore) -> None:
    upscale = UpscaleRequest(1, 1, ImageRef("m", "alice@example.com"), "2k", "nano-banana-2")
    await store.add_job(owner(), upscale, {}, day="2026-01-01")
    assert await store.images_on(owner().user, "2026-01-01") == 1


async def test_an_error_text_with_odd_characters_is_kept(store: AnyStore) -> None:
    job = await store.add_job(owner(), request(), {}, day="2026-01-01")
    await store.fail_job(job.id, "upstream said: \x00bad 'quote\" 😀")
    failed = await store.get_job(job.id)
    assert failed is not None
    assert failed.state is JobState.FAILED
    assert failed.error is not None
    assert failed.error.endswith("bad 'quote\" 😀")


async def test_results_keep_their_bytes_until_delivered(store: AnyStore) -> None:
    job = await store.add_job(owner(), request(), {}, day="2026-01-01")
    assert await store.mark_running(job.id, "alice@example.com") == 1
    image = ResultImage(1, ImageRef("m1", "alice@example.com"), 2**40, "nano-banana-2", "x", b"\0")
    await store.finish_job(job.id, [image])
    assert await store.results(job.id) == [image]
    assert await store.mark_running(job.id, "alice@example.com") == 0  # it has ended
    await store.mark_delivered(job.id)
    stored = await store.get_job(job.id)
    assert stored is not None
    assert (stored.state, stored.delivered) == (JobState.DONE, True)
    assert await store.results(job.id) == [ResultImage(1, image.ref, 2**40, image.model, "x")]
    assert await store.undelivered_jobs() == []


async def test_an_upscale_is_found_by_its_source_job(store: AnyStore) -> None:
    source = await store.add_job(owner(), request(), {}, day="2026-01-01")
    other = await store.add_job(owner(), request(), {}, day="2026-01-01")
    made = []
    for index, size in ((1, "2k"), (2, "4k"), (1, "4k")):
        image = ImageRef(f"m{index}", "alice@example.com")
        upscale = UpscaleRequest(source.id, index, image, size, "nano-banana-2")
        made.append(await store.add_job(owner("2"), upscale, {}, day="2026-01-01"))
    found = await store.upscales_of(source.id)
    assert [job.id for job in found] == [job.id for job in made]
    assert [(j.request.index, j.request.resolution) for j in found] == [  # type: ignore[union-attr]
        (1, "2k"),
        (2, "4k"),
        (1, "4k"),
    ]
    assert await store.upscales_of(other.id) == []


async def test_a_job_cancelled_while_it_ran_keeps_no_result(store: AnyStore) -> None:
    job = await store.add_job(owner(), request(), {}, day="2026-01-01")
    assert await store.mark_running(job.id, "alice@example.com") == 1
    assert await store.cancel_job(job.id)
    image = ResultImage(1, ImageRef("m1", "alice@example.com"), 5, "nano-banana-2", "x", b"\0")
    assert not await store.finish_job(job.id, [image])
    assert await store.results(job.id) == []
    cancelled = await store.get_job(job.id)
    assert cancelled is not None
    assert (cancelled.state, cancelled.delivered) == (JobState.CANCELLED, True)
    assert not await store.cancel_job(job.id)  # ended: nothing to cancel
    assert await store.unfinished_jobs() == []


async def test_upscales_stored_before_their_column_existed_are_found(store_url: str) -> None:
    # A store at schema 3 (before the source_job column), holding an upscale of job 1.
    where = StoreUrl.parse(store_url)
    upscale = json.dumps(
        {
            "kind": "upscale",
            "source_job": 1,
            "index": 2,
            "image": {"media_id": "m", "account": "alice@example.com"},
            "resolution": "2k",
            "model": "nano-banana-2",
        }
    )
    insert = (
        "INSERT INTO jobs (platform, user_id, chat_id, request, state, created_at, updated_at) "
        "VALUES ('console', '1', 'chat', {0}, 'done', {1}, {1})"
    )
    if where.kind == "sqlite":
        with sqlite3.connect(where.path) as db:
            for step in MIGRATIONS[:3]:
                for statement in filter(str.strip, step.sqlite.split(";")):
                    db.execute(statement)
            db.execute("PRAGMA user_version=3")
            db.execute(insert.format("?", "1.0e9"), (upscale,))
    else:
        async with await psycopg.AsyncConnection.connect(store_url, autocommit=True) as db:
            await db.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, step in enumerate(MIGRATIONS[:3], start=1):
                await db.execute(step.postgres)
                await db.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))
            await db.execute(insert.format("%s", "now()"), (upscale,))
    async with open_store(store_url) as store:
        assert await store.schema_version() == LATEST
        [found] = await store.upscales_of(1)
        assert found.request == UpscaleRequest(
            1, 2, ImageRef("m", "alice@example.com"), "2k", "nano-banana-2"
        )


async def test_learned_account_limits_are_kept_and_replaced_per_account(store: AnyStore) -> None:
    assert await store.account_limits() == {}
    await store.save_account_limits({"a@example.com": 7.5, "b@example.com": 3.0})
    await store.save_account_limits({"a@example.com": 9.25})
    assert await store.account_limits() == {"a@example.com": 9.25, "b@example.com": 3.0}


# PostgreSQL: the password stays out of every message, traceback and log line.


async def test_a_wrong_password_is_not_shown(
    postgres: PostgresServer, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if postgres.socket_dir is None:
        pytest.skip("needs the throwaway cluster, which asks other roles for their password")
    role = f"bot_{hashlib.sha256(postgres_url.encode()).hexdigest()[:8]}"
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
        await db.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-one'")
    database = urlsplit(postgres_url).path.lstrip("/")
    wrong = postgres.url(database, user=role, password="s3cr3t-x")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError) as refused:
        async with open_store(wrong):
            pass
    assert "password authentication failed" in str(refused.value)
    _assert_hidden("s3cr3t-x", refused.value, caplog)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bot:s3cr3t-x@/bot?host=/nonexistent/socket/dir",
        "postgresql://bot@/bot?host=/nonexistent/socket/dir&password=s3cr3t-x",
        "postgresql://bot:s3cr3t-x@127.0.0.1:1/bot?connect_timeout=2",
    ],
)
async def test_an_unreachable_server_is_one_line_without_the_password(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError) as refused:
        async with PostgresStore(StoreUrl.parse(url)):
            pass
    assert str(refused.value).startswith("can't open the store at postgresql://bot")
    _assert_hidden("s3cr3t-x", refused.value, caplog)


def test_libpq_quoting_a_url_it_cannot_parse_is_redacted() -> None:
    url = StoreUrl("postgresql", "postgresql://u:s3cr3t-x@[::1/db")
    with pytest.raises(psycopg.ProgrammingError) as raw:
        psycopg.conninfo.conninfo_to_dict(url.reveal())
    assert "s3cr3t-x" in str(raw.value)  # what we guard against
    assert "s3cr3t-x" not in url.redact(str(raw.value))
    assert url.redacted == "postgresql://u:***@[::1/db"


def _assert_hidden(secret: str, exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    shown = [str(exc), repr(exc), *traceback.format_exception(exc), caplog.text]
    assert not [text for text in shown if secret in text]


async def test_add_job_refuses_a_job_past_the_users_caps(store: AnyStore) -> None:
    caps = Caps(queued=2, images=2)
    day = "2026-01-01"
    first = await store.add_job(owner(), request("one"), {}, day=day, caps=caps)
    await store.add_job(owner(), request("two"), {}, day=day, caps=caps)
    with pytest.raises(CapReached) as full:
        await store.add_job(owner(), request("three"), {}, day=day, caps=caps)
    assert full.value.queued
    await store.mark_running(first.id, "alice@example.com")  # running: no longer waiting
    with pytest.raises(CapReached) as spent:  # but its 2 images are asked for already
        await store.add_job(owner(), request("three"), {}, day=day, caps=caps)
    assert not spent.value.queued
    # Another user, another day, no quota: their own counts.
    await store.add_job(owner("2"), request("four"), {}, day=day, caps=caps)
    await store.add_job(owner(), request("five"), {}, day="2026-01-02", caps=caps)
    await store.add_job(owner(), request("six"), {}, day=day, caps=Caps(queued=3, images=None))
    assert [j.request.prompt for j in await store.user_jobs(owner().user)] == [  # type: ignore[union-attr]
        "one",
        "two",
        "five",
        "six",
    ]


async def test_add_job_counts_a_persons_linked_accounts_together(store: AnyStore) -> None:
    caps = Caps(queued=2, images=3)
    day = "2026-01-01"
    discord, telegram = owner("1", "discord"), owner("2", "telegram")
    assert await store.link(discord.user, telegram.user)
    one = await store.add_job(discord, request("one"), {}, day=day, caps=caps)
    two = await store.add_job(telegram, request("two"), {}, day=day, caps=caps)
    with pytest.raises(CapReached) as full:  # 2 waiting, one on each account
        await store.add_job(discord, request("three"), {}, day=day, caps=caps)
    assert full.value.queued
    for job in (one, two):  # running: no longer waiting
        await store.mark_running(job.id, "alice@example.com")
    await store.add_job(telegram, request("three"), {}, day=day, caps=caps)
    with pytest.raises(CapReached) as spent:  # 3 images asked for: 1 by one, 2 by the other
        await store.add_job(discord, request("four"), {}, day=day, caps=caps)
    assert not spent.value.queued
    await store.add_job(owner("3", "discord"), request("five"), {}, day=day, caps=caps)


async def test_linked_accounts_in_two_processes_cant_pass_the_quota_together(
    store: AnyStore, store_url: str
) -> None:
    caps = Caps(queued=10, images=3)
    discord, telegram = owner("1", "discord"), owner("2", "telegram")
    assert await store.link(discord.user, telegram.user)
    async with open_store(store_url) as other:
        outcomes = await asyncio.gather(
            *(
                s.add_job(o, request(f"job {i}"), {}, day="2026-01-01", caps=caps)
                for i in range(4)
                for s, o in ((store, discord), (other, telegram))
            ),
            return_exceptions=True,
        )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 3
    assert all(isinstance(o, CapReached) for o in outcomes if isinstance(o, BaseException))


async def test_a_link_made_while_a_job_is_being_stored_cant_pass_the_quota(
    postgres_url: str,
) -> None:
    # The second account's job takes its turn under its own key while the link makes it the
    # first account's person: the first account's job must still wait for it before it counts.
    caps = Caps(queued=10, images=1)
    discord, telegram = owner("1", "discord"), owner("2", "telegram")
    async with open_store(postgres_url) as store, open_store(postgres_url) as other:
        assert isinstance(store, PostgresStore)
        async with await store.connect() as gate, await store.connect() as watch:
            async with gate.transaction():
                # Each job, counted, waits here to write its usage (before its commit).
                await gate.execute("LOCK TABLE usage IN EXCLUSIVE MODE")
                second = asyncio.ensure_future(
                    other.add_job(telegram, request("two"), {}, day="2026-01-01", caps=caps)
                )
                await until_waiting(watch, 1)
                linking = asyncio.ensure_future(store.link(discord.user, telegram.user))
                await until_waiting(watch, 2, unless=linking)  # made, or waiting its turn
                first = asyncio.ensure_future(
                    store.add_job(discord, request("one"), {}, day="2026-01-01", caps=caps)
                )
                await until_waiting(watch, 2 if linking.done() else 3)
            outcomes = await asyncio.gather(second, linking, first, return_exceptions=True)
    assert outcomes[1] is True  # linked, once the second job was stored
    assert not isinstance(outcomes[0], BaseException)
    assert isinstance(outcomes[2], CapReached)


async def until_waiting(db: Connection, n: int, unless: asyncio.Future[Any] | None = None) -> None:
    """Until ``n`` sessions of this database wait for a lock (a table's or an advisory one), or
    ``unless`` is done; ``db`` outside a transaction (one sees the sessions as they were at its
    start)."""
    async with asyncio.timeout(5):
        while unless is None or not unless.done():
            cur = await db.execute(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            row = await cur.fetchone()
            if row is not None and row["n"] >= n:
                return
            await asyncio.sleep(0.01)


async def test_a_job_is_read_back_whatever_else_is_being_read(store: AnyStore) -> None:
    """Each ``add_job`` returns the job it stored while lists of jobs are read at the same
    time: a read that spans several steps (here, every queued job) must not leave the stored
    job invisible to the read that follows the write (SQLite's reader sat in an old snapshot
    while a long read went on, and a burst of 60 commands lost one to an AssertionError)."""
    for i in range(40):
        await store.add_job(owner(str(i)), request(), {}, day="2026-11-26")

    async def reading() -> None:
        for _ in range(30):
            await store.unfinished_jobs()

    readers = asyncio.gather(*(reading() for _ in range(3)))
    try:
        added = [
            await store.add_job(owner(str(i)), request(), {}, day="2026-11-26") for i in range(40)
        ]
    finally:
        await readers
    assert all(job.state is JobState.QUEUED for job in added)


async def test_jobs_started_finished_and_posted_together_each_get_their_own_outcome(
    store: AnyStore,
) -> None:
    # A burst: SQLite writes these together (group commit), PostgreSQL side by side.
    jobs = [await store.add_job(owner(str(n)), request(), {}, day="2026-01-01") for n in range(5)]
    first, cancelled, *rest = [job.id for job in jobs]
    assert await store.mark_running(first, "alice@example.com") == 1
    assert await store.cancel_job(cancelled)
    started = await asyncio.gather(
        *(store.mark_running(job.id, f"{job.id}@example.com") for job in jobs)
    )
    assert started == [2, 0, 1, 1, 1]

    def made(job_id: int) -> ResultImage:
        ref = ImageRef(f"m{job_id}", f"{job_id}@example.com")
        return ResultImage(1, ref, job_id, "nano-banana-2", "image/png", bytes([job_id]))

    finished = await asyncio.gather(*(store.finish_job(job.id, [made(job.id)]) for job in jobs))
    assert finished == [True, False, True, True, True]
    for job_id in (first, *rest):
        assert await store.results(job_id) == [made(job_id)]
        done = await store.get_job(job_id)
        assert done is not None
        assert (done.state, done.account) == (JobState.DONE, f"{job_id}@example.com")
    assert await store.results(cancelled) == []

    await asyncio.gather(
        *(store.save_posted(job.id, "telegram", {1: f"telegram:{job.id}"}) for job in jobs)
    )
    for job_id in (first, *rest):
        assert await store.posted(job_id) == {1: {"telegram": f"telegram:{job_id}"}}
    assert await store.posted(cancelled) == {}
