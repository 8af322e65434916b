"""Fixtures for the attack tests: the whole bot on each platform, against the local fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.telegram.harness import BotUnderTest, unstarted
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.telegram_server import FakeTelegramServer


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[BotUnderTest]:
    """The Telegram bot, not started yet: ``await telegram.start(limits=...)``."""
    async with unstarted(tmp_path) as under_test:
        yield under_test


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscordServer]:
    async with FakeDiscordServer(token="discord-test-token") as fake:
        with fake.patch_discord():
            yield fake


def answer_of(tg: FakeTelegramServer, query_id: str) -> dict[str, Any]:
    """What the user was shown for a callback query: its text and whether as an alert."""
    call = next(
        c for c in tg.calls_of("answerCallbackQuery") if c.params["callback_query_id"] == query_id
    )
    return {"text": call.params.get("text"), "show_alert": bool(call.params.get("show_alert"))}


def to_chat(chat_id: int) -> Callable[[Any], bool]:
    """Matches a Bot API call that posts or edits something in ``chat_id``."""
    return lambda call: call.params.get("chat_id") == chat_id


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait for state the bot writes (no event to wait on from outside)."""
    async with asyncio.timeout(timeout):
        while not await _truth(condition()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def _truth(value: Any) -> bool:
    return bool(await value) if asyncio.iscoroutine(value) else bool(value)
