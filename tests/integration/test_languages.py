"""Whose answer is told in what language (issue 16), on SQLite and PostgreSQL: the language a
user's app said when they last wrote is kept in the store, their /settings choice wins, the
operator's default stands in for a language not shipped; answers delivered later and admin
alerts are made in their reader's language."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.core import i18n
from bot.core.domain import UserKey, UserSettings
from bot.core.policy import Access
from bot.core.service import progress
from bot.core.service.identities import Identities
from bot.core.service.languages import Readers
from bot.core.settings import AUTO
from bot.providers.flow import FlowClient
from tests.conftest import AnyStore, build_service, owner, wait_delivered
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.notifier import RecordingNotifier
from tests.languages import TELEGRAM as SPOKEN

TAG, CODE = SPOKEN
USER = UserKey("console", "1")


@pytest.fixture
def operator_default() -> Iterator[None]:
    yield
    i18n.set_default(i18n.DEFAULT)


async def test_the_apps_language_is_kept_and_a_choice_wins(
    store: AnyStore, operator_default: None
) -> None:
    readers = Readers(store, Identities(store))
    assert (await readers.of(USER)).code == "en"  # never heard: the operator's
    assert (await readers.heard(USER, TAG)).code == CODE
    assert await store.language(USER) == TAG
    assert (await readers.of(USER)).code == CODE  # later, in another process: the same
    assert (await readers.heard(USER, None)).code == CODE  # an app that doesn't say
    await store.save_user_settings(USER, UserSettings(language="en"))
    assert (await readers.heard(USER, TAG)).code == "en"  # the choice wins
    await store.save_user_settings(USER, UserSettings(language=AUTO))
    assert (await readers.of(USER)).code == CODE
    assert (await readers.heard(USER, "tlh")).code == "en"  # not shipped: the default
    assert await store.language(USER) == "tlh"  # as it came: if it ships, it applies
    i18n.set_default(CODE)  # BOT_DEFAULT_LANGUAGE
    assert (await readers.of(USER)).code == CODE
    await store.save_language(USER, "x" * 35)
    assert await store.language(USER) == "x" * 35


async def test_answers_and_alerts_are_made_in_each_readers_language(
    flow: FakeFlowServer, store: AnyStore
) -> None:
    admins = Access(admins=frozenset({"console:99", "console:98"}))
    await store.save_language(UserKey("console", "99"), TAG)
    await store.save_language(USER, TAG)
    flow.fail_next(402)  # no credits: the operator's to fix, told to every admin
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client, access=admins)
        told = RecordingNotifier()
        service.attach("console", told)
        async with service:
            submitted = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(submitted.job_id)
            await wait_delivered(store, submitted.job_id)
            await told.wait_alerts(2)
    made = dict(told.languages)
    assert made["failed"] == CODE  # the job's owner
    assert made["alert 99"] == CODE
    assert made["alert 98"] == "en"  # an admin whose language nobody knows: the operator's


async def test_live_progress_is_made_in_its_readers_language(
    flow: FakeFlowServer, store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "SETTLE", 0.1)  # "generating" once a run lasted 0.1 s
    flow.latency = 0.5
    await store.save_language(USER, TAG)
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client)
        told = RecordingNotifier()
        service.attach("console", told)
        async with service:
            submitted = await service.submit(owner(), "a fox --count 1")
            await told.wait_answered(submitted.job_id)
    assert [job for job, _ in told.progress] == [submitted.job_id]  # "generating", once
    made = dict(told.languages)
    assert made["progress"] == CODE
    assert made["finished"] == CODE
