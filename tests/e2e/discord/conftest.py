"""Fixtures for the Discord end-to-end tests: the fake Discord (discord.py patched to reach it)
and the whole bot on it, with the fake Flow and each store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import AnyStore
from tests.e2e.discord.harness import TOKEN, Bot, start_bot, unasked_refusals
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscordServer]:
    async with FakeDiscordServer(token=TOKEN) as fake:
        with fake.patch_discord():
            yield fake


@pytest.fixture(autouse=True)
def no_adapter_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever a test provokes, neither discord.py nor the adapter may log an error."""
    yield
    errors = [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.name.startswith(("discord", "bot.frontends.discord"))
    ]
    assert errors == []


@pytest.fixture
async def bot(dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore) -> AsyncIterator[Bot]:
    """The bot started; stopped after the test, which must have provoked every refusal."""
    running = await start_bot(dc, flow, store)
    yield running
    await running.stop()
    assert unasked_refusals(dc, running) == []
