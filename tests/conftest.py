"""Shared fixtures: the fake Flow server, a store (SQLite and PostgreSQL), a fast service (on Flow,
or on Flow then Gemini)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from PIL import Image

from bot import catalogues
from bot.core.images import prepare_reference
from bot.core.models_table import ModelTable
from bot.core.monitoring import Recorder
from bot.core.people import Owner
from bot.core.policy import Access, Limits, Tuning
from bot.core.providers import ImageProvider
from bot.core.service import Service
from bot.providers.flow import FlowClient
from bot.providers.gemini import GeminiClient
from bot.store import open_store
from bot.store.postgres import PostgresStore
from bot.store.postgres_lead import PostgresLeader
from bot.store.sqlite import SqliteStore
from bot.store.url import StoreUrl
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.notifier import RecordingNotifier
from tests.postgres_server import (
    ENV_REQUIRED,
    PostgresServer,
    Unavailable,
    postgres_server,
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The catalogues, as ``python -m bot`` installs them at startup."""
    catalogues.install()


AnyStore = SqliteStore | PostgresStore

FAST = Tuning(retry_min_seconds=0.01, retry_max_seconds=0.05, job_deadline_seconds=5)


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (32, 24), color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def as_uploaded(data: bytes) -> bytes:
    """What the upstream is sent for a user's picture: its pixels, re-encoded, nothing else."""
    limits = Limits()
    prepared = prepare_reference(
        data, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels
    )
    return prepared.data


def build_service(
    store: AnyStore,
    upstream: FlowClient,
    *,
    admin: str = "console:99",
    models: ModelTable | None = None,
    limits: Limits | None = None,
    tuning: Tuning = FAST,
    access: Access | None = None,
    recorder: Recorder | None = None,
    blocked_words: Sequence[str] = (),
) -> Service:
    """A service as the tests want it: fast retries, a fixed seed, one admin."""
    return Service(
        store,
        [upstream],
        models=models or ModelTable.builtin(),
        limits=limits or Limits(),
        tuning=tuning,
        access=access or Access(admins=frozenset({admin})),
        blocked_words=blocked_words,
        recorder=recorder,
        rng=random.Random(7),
    )


def owner(user: str = "1", platform: str = "console") -> Owner:
    return Owner(platform, user, chat_id="chat")


@pytest.fixture
async def flow() -> AsyncIterator[FakeFlowServer]:
    async with FakeFlowServer(accounts=["alice@example.com"]) as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session; the tests that need one skip (in CI: fail) without."""
    try:
        with postgres_server() as server:
            yield server
    except Unavailable as exc:
        if os.environ.get(ENV_REQUIRED):
            pytest.fail(f"{ENV_REQUIRED} is set: {exc}")
        pytest.skip(f"PostgreSQL tests skipped: {exc}")


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, empty database of its own for this test."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both stores: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bot.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[AnyStore]:
    async with open_store(store_url) as opened:
        yield opened


@pytest.fixture
async def make_service(flow: FakeFlowServer, store: AnyStore) -> AsyncIterator[Callable[..., Any]]:
    """Build and start a service on the fake server: ``await make_service(limits=...)``."""
    opened: list[tuple[Service, FlowClient]] = []

    async def build(**overrides: Any) -> tuple[Service, RecordingNotifier]:
        client = FlowClient("test-token", flow.base_url)
        notifier = RecordingNotifier()
        service = build_service(store, client, **overrides)
        service.attach("console", notifier)
        await service.start()
        opened.append((service, client))
        return service, notifier

    yield build
    for service, client in opened:
        await service.aclose()
        await client.aclose()


class TwoRoads(NamedTuple):
    """A started service on Flow, then Gemini (the next takes over when Flow can't serve)."""

    service: Service
    told: RecordingNotifier
    flow: FakeFlowServer
    gemini: FakeGeminiServer


@contextlib.asynccontextmanager
async def serving(
    store: AnyStore, *providers: ImageProvider
) -> AsyncIterator[tuple[Service, RecordingNotifier]]:
    """A started service on ``providers`` (in that order), with one admin, and the clients
    closed after it."""
    async with contextlib.AsyncExitStack() as stack:
        for provider in providers:
            await stack.enter_async_context(provider)  # type: ignore[arg-type]
        service = Service(
            store,
            providers,
            models=ModelTable.builtin(),
            tuning=FAST,
            access=Access(admins=frozenset({"console:99"})),
            rng=random.Random(7),
        )
        told = RecordingNotifier()
        service.attach("console", told)
        async with service:
            yield service, told


@pytest.fixture
async def flow_then_gemini(flow: FakeFlowServer, store: AnyStore) -> AsyncIterator[TwoRoads]:
    async with (
        FakeGeminiServer() as gemini,
        serving(
            store,
            FlowClient("test-token", flow.base_url),
            GeminiClient(gemini.api_key, gemini.base_url),
        ) as (service, told),
    ):
        yield TwoRoads(service, told, flow, gemini)


async def wait_delivered(store: AnyStore, job_id: int, timeout: float = 5.0) -> None:
    """The final answer is recorded just after the notifier returns: wait for that write."""
    async with asyncio.timeout(timeout):
        while not ((job := await store.get_job(job_id)) and job.delivered):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


# ``await sharing(limits=..., lease=..., tuning=...)``: a started service with a store, pool and
# leadership of its own on the test's PostgreSQL database, as one of several processes would have.
Sharing = Callable[..., Awaitable[tuple[Service, RecordingNotifier, PostgresStore]]]


@pytest.fixture
async def sharing(flow: FakeFlowServer, postgres_url: str) -> AsyncIterator[Sharing]:
    async with AsyncExitStack() as stack:

        async def build(
            limits: Limits | None = None, lease: float = 3.0, tuning: Tuning = FAST
        ) -> tuple[Service, RecordingNotifier, PostgresStore]:
            store = await stack.enter_async_context(PostgresStore(StoreUrl.parse(postgres_url)))
            client = await stack.enter_async_context(FlowClient("test-token", flow.base_url))
            service = Service(
                store,
                [client],
                models=ModelTable.builtin(),
                limits=limits or Limits(),
                tuning=tuning,
                access=Access(admins=frozenset({"console:99"})),
                leadership=PostgresLeader(store, lease=lease),
            )
            told = RecordingNotifier()
            service.attach("console", told)
            await service.start()
            stack.push_async_callback(service.aclose)
            return service, told, store

        yield build
