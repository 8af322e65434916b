"""Whose answer is told in what language (issue 16), on SQLite and PostgreSQL: the language a
user's app said when they last wrote is kept in the store, their /settings choice wins, the
operator's default stands in for a language not shipped; answers delivered later and admin
alerts are made in their reader's language."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from bot.core import i18n
from bot.core.domain import UserSettings
from bot.core.people import UserKey
from bot.core.policy import Access
from bot.core.service import progress
from bot.core.service.identities import Identities
from bot.core.service.languages import KEPT_FOR, Readers
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


class Counting:
    """A store whose every call is counted, by method."""

    def __init__(self, store: AnyStore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await method(*args, **kwargs)

        return counted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def readers_on(store: Any, clock: Clock | None = None) -> Readers:
    return Readers(store, Identities(store), clock=clock or Clock())


async def test_the_apps_language_is_kept_and_a_choice_wins(
    store: AnyStore, operator_default: None
) -> None:
    clock = Clock()
    readers = readers_on(store, clock)
    assert (await readers.of(USER)).code == "en"  # never heard: the operator's
    assert (await readers.heard(USER, TAG)).code == CODE
    assert await store.language(USER) == TAG
    assert (await readers_on(store).of(USER)).code == CODE  # in another process: the same
    assert (await readers.heard(USER, None)).code == CODE  # an app that doesn't say
    await store.save_user_settings(USER, UserSettings(language="en"))  # in another process
    clock.now += KEPT_FOR
    assert (await readers.heard(USER, TAG)).code == "en"  # the choice wins
    await store.save_user_settings(USER, UserSettings(language=AUTO))
    readers.forget([USER])  # as /settings does in this process
    assert (await readers.of(USER)).code == CODE
    assert (await readers.heard(USER, "tlh")).code == "en"  # not shipped: the default
    assert await store.language(USER) == "tlh"  # as it came: if it ships, it applies
    i18n.set_default(CODE)  # BOT_DEFAULT_LANGUAGE
    assert (await readers.of(USER)).code == CODE
    await store.save_language(USER, "x" * 35)
    assert await store.language(USER) == "x" * 35


async def test_an_update_reads_nothing_from_the_store_for_its_readers_language_once_known(
    store: AnyStore,
) -> None:
    """It read three things each time (the app's stored tag, the person, their settings): the
    language is now kept here a while, and a write only when the app's word changes."""
    counting = Counting(store)
    clock = Clock()
    readers = readers_on(counting, clock)
    assert (await readers.heard(USER, TAG)).code == CODE
    assert counting.calls == {"language": 1, "identity": 1, "user_settings": 1, "save_language": 1}
    counting.calls.clear()
    for _ in range(10):
        assert (await readers.heard(USER, TAG)).code == CODE
        assert (await readers.of(USER)).code == CODE  # its answer, delivered later
    assert sum(counting.calls.values()) == 0
    assert (await readers.heard(USER, "de")).code == "de"  # the app's word changed
    assert counting.calls == {"save_language": 1}
    clock.now += KEPT_FOR  # another process may have changed it since: read again
    counting.calls.clear()
    assert (await readers.heard(USER, "de")).code == "de"
    assert counting.calls == {"language": 1, "identity": 1, "user_settings": 1}


async def test_a_settings_choice_is_read_at_once_in_this_process(
    flow: FakeFlowServer, store: AnyStore
) -> None:
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client)
        async with service:
            assert (await service.reader(USER, TAG)).code == CODE
            await service.update_settings(USER, language="en")
            assert (await service.reader(USER, TAG)).code == "en"
            await service.update_settings(USER, language=None)
            assert (await service.reader(USER, TAG)).code == CODE


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
