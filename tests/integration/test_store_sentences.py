"""The store keeps a sentence as its message and parameters, never its words (issue 16): a
failed job's reason and an admin's held alerts are told in whoever reads them's language, also
for rows written before schema step 9. Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3

import psycopg

from bot.core import option_texts, rules_texts, texts
from bot.core.domain import GenerationRequest
from bot.core.i18n import Text, language
from bot.core.people import UserKey
from bot.store import StoreUrl, open_store
from bot.store.codec import ALERTS
from bot.store.migrations import LATEST, MIGRATIONS
from tests.conftest import AnyStore, owner

SPANISH = language("es")
BEFORE_SENTENCES = 8  # the schema version before step 9
ADMIN = UserKey("telegram", "42")
REQUEST = GenerationRequest("a fox", "nano-banana-2", "1:1", 1, 5)


async def test_a_failed_jobs_reason_is_kept_as_message_and_parameters(store: AnyStore) -> None:
    job = await store.add_job(owner(), REQUEST, {}, day="2026-01-01")
    reason = option_texts.image_too_many_pixels(9000, 9000, 40_000_000)
    assert await store.fail_job(job.id, reason)
    failed = await store.get_job(job.id)
    assert failed is not None
    assert isinstance(failed.error, Text)
    assert failed.error == reason  # its English words
    assert SPANISH.render(failed.error) == (
        "Esa imagen es demasiado grande (9000×9000); el límite es 40 megapíxeles. Envía una "
        "más pequeña, por favor."
    )


async def test_an_admins_cancel_reason_and_held_alerts_are_kept_as_messages(
    store: AnyStore,
) -> None:
    job = await store.add_job(owner(), REQUEST, {}, day="2026-01-01")
    assert await store.cancel_job(job.id, rules_texts.CANCELLED_BY_ADMIN)
    cancelled = await store.get_job(job.id)
    assert cancelled is not None
    assert cancelled.error is not None
    assert SPANISH.render(cancelled.error) == "El operador del bot canceló este trabajo."
    await store.hold_alert(ADMIN, texts.failed(texts.OPERATOR))
    [held] = await store.held_alerts()
    assert SPANISH.render(held.text).startswith("❌ El bot necesita ahora la atención")
    [taken] = await store.take_alerts(ADMIN)
    assert taken == texts.failed(texts.OPERATOR)
    assert SPANISH.render(taken) == SPANISH.render(held.text)


async def test_a_reason_stored_in_english_before_step_9_is_told_in_the_readers_language(
    store_url: str,
) -> None:
    where = StoreUrl.parse(store_url)
    request = json.dumps(
        {"kind": "generate", "prompt": "a fox", "model": "nano-banana-2", "aspect_ratio": "1:1"}
        | {"count": 1, "seed": 5, "references": []}
    )
    made_with_words = "Your prompt is 5000 characters long; the limit is 4000. Please shorten it."
    insert = (
        "INSERT INTO jobs (platform, user_id, chat_id, public_id, request, state, error, "
        "created_at, updated_at) VALUES ('console', '1', 'chat', {0}, {0}, 'failed', {0}, {1}, {1})"
    )
    alert = "INSERT INTO pending (kind, key, value, created_at) VALUES ({0}, {0}, {0}, {1})"
    if where.kind == "sqlite":
        with sqlite3.connect(where.path) as db:
            for step in MIGRATIONS[:BEFORE_SENTENCES]:
                for statement in filter(str.strip, step.sqlite.split(";")):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={BEFORE_SENTENCES}")
            db.execute(insert.format("?", "1.0e9"), ("a1b2c3d", request, str(texts.BUSY)))
            db.execute(insert.format("?", "1.0e9"), ("a1b2c3e", request, made_with_words))
            db.execute(alert.format("?", "1.0e9"), (ALERTS, str(ADMIN), str(texts.OPERATOR)))
    else:
        async with await psycopg.AsyncConnection.connect(store_url, autocommit=True) as db:
            await db.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, step in enumerate(MIGRATIONS[:BEFORE_SENTENCES], start=1):
                await db.execute(step.postgres)
                await db.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))
            await db.execute(insert.format("%s", "now()"), ("a1b2c3d", request, str(texts.BUSY)))
            await db.execute(insert.format("%s", "now()"), ("a1b2c3e", request, made_with_words))
            await db.execute(alert.format("%s", "now()"), (ALERTS, str(ADMIN), texts.OPERATOR))
    async with open_store(store_url) as store:
        assert await store.schema_version() == LATEST
        busy, long = await store.get_job(1), await store.get_job(2)
        assert busy is not None
        assert long is not None
        # A fixed sentence's words are its message: told in Spanish now.
        assert busy.error is not None
        assert SPANISH.render(busy.error) == SPANISH.render(texts.BUSY)
        assert SPANISH.render(busy.error) != texts.BUSY
        # One made with parameters stays in the words it was stored in.
        assert long.error is not None
        assert SPANISH.render(long.error) == made_with_words
        [taken] = await store.take_alerts(ADMIN)
        assert SPANISH.render(taken) == SPANISH.render(texts.OPERATOR)
