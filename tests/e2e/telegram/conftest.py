"""Fixtures for the Telegram end-to-end tests: the whole bot on a fake Telegram and a fake Flow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.telegram.harness import PUBLIC, BotUnderTest, unstarted


@pytest.fixture
def api() -> str:
    """The Bot API the bot is configured for: api.telegram.org's (a module may ask for more)."""
    return PUBLIC


@pytest.fixture
async def bot(tmp_path: Path, api: str) -> AsyncIterator[BotUnderTest]:
    """The bot, not started yet: ``await bot.start(limits=...)``."""
    async with unstarted(tmp_path, api=api) as under_test:
        yield under_test
