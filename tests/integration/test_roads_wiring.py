"""The settings made into clients (``bot.roads``), against the fake servers."""

from __future__ import annotations

import time

import pytest

from bot import roads
from bot.config import Settings
from bot.core.providers import ImageRequest
from bot.core.upstream import UpstreamTimeout
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.nbpro_server import FakeNbproServer


@pytest.mark.parametrize("road", ["gemini", "nbpro"])
async def test_the_generation_timeout_bounds_a_render_on_every_road(road: str) -> None:
    async with FakeGeminiServer() as gemini, FakeNbproServer() as nbpro:
        settings = Settings.from_env(
            {
                "GEMINI_API_KEY": gemini.api_key,
                "GEMINI_BASE_URL": gemini.base_url,
                "NBPRO_API_KEY": nbpro.api_key,
                "NBPRO_BASE_URL": nbpro.base_url,
                "BOT_GENERATION_TIMEOUT_SECONDS": "1",
            },
            env_file=None,
        )
        gemini.stall_next(10)
        nbpro.stall_next(10)
        wire = {"gemini": "gemini-3.1-flash-image", "nbpro": "nano-banana-2"}[road]
        started = time.monotonic()
        async with roads.client(settings, road) as client:
            with pytest.raises(UpstreamTimeout):
                await client.generate(ImageRequest("a fox", wire, "1:1"))
        assert time.monotonic() - started < 5
