"""A character on a road without characters, end to end: ``app.run_bot`` as ``python -m bot`` runs
it with Flow first and Gemini next, on both platforms. The same ``@name`` prompt is drawn on Flow
by the character's id, and once Flow is out of credits, by Gemini with the character's pictures
inline (the fake Gemini server decodes each as an image), the prompt naming them in words."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot import app
from bot.config import Settings
from bot.core import character_texts
from tests.conftest import as_uploaded, image_bytes
from tests.e2e.test_one_road import DC_USER, TG_TOKEN, TG_USER, answered_with_files
from tests.fakes.discord_server import FakeDiscordServer, RestCall
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer, inline_pictures, prompt_of
from tests.fakes.telegram_server import FakeTelegramServer

RED = image_bytes(size=(40, 30), color="red")
BLUE = image_bytes("JPEG", size=(30, 40), color="blue")


@contextlib.asynccontextmanager
async def running(
    flow: FakeFlowServer, gemini: FakeGeminiServer, tmp_path: Path
) -> AsyncIterator[tuple[FakeTelegramServer, FakeDiscordServer]]:
    """The bot on both platforms, Flow its first road and Gemini the next."""
    async with FakeTelegramServer(token=TG_TOKEN) as tg, FakeDiscordServer() as dc:
        settings = Settings.from_env(
            {
                "USEAPI_TOKEN": "test-token",
                "USEAPI_BASE_URL": flow.base_url,
                "GEMINI_API_KEY": gemini.api_key,
                "GEMINI_BASE_URL": gemini.base_url,
                "BOT_PROVIDERS": "flow,gemini",
                "TELEGRAM_TOKEN": TG_TOKEN,
                "TELEGRAM_API_URL": tg.root,
                "DISCORD_TOKEN": "discord-token",
                "DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3",
            },
            env_file=None,
        )
        with dc.patch_discord():
            bot = asyncio.create_task(app.run_bot(settings))
            try:
                await dc.wait_ready(timeout=10)
                await tg.wait_for("deleteWebhook")
                yield tg, dc
            finally:
                bot.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await bot


async def said(tg: FakeTelegramServer, text: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not any(m.get("text") == text for m in tg.sent_messages(TG_USER)):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def told_privately(text: str) -> Callable[[RestCall], bool]:
    def match(call: RestCall) -> bool:
        data = call.json.get("data", call.json) if isinstance(call.json, dict) else {}
        return call.method == "POST" and isinstance(data, dict) and data.get("content") == text

    return match


async def draw_on_both(tg: FakeTelegramServer, dc: FakeDiscordServer, photos: int) -> None:
    """The same prompt with the user's character, from each platform: both answered."""
    await tg.post_message(TG_USER, TG_USER, "@carol rides a bike --model 2 --count 1")
    # The status message becomes the picture.
    await tg.wait_for("editMessageMedia", count=photos, timeout=20)
    await dc.slash_command(
        "imagine", {"prompt": "@tom rides a bike --model 2", "count": 1}, user_id=DC_USER
    )
    await dc.wait_for(answered_with_files, count=photos, timeout=20)


async def test_the_same_character_prompt_goes_to_gemini_as_pictures_when_flow_cannot(
    tmp_path: Path,
) -> None:
    async with (
        FakeFlowServer(accounts=["alice@example.com"]) as flow,
        FakeGeminiServer() as gemini,
        running(flow, gemini, tmp_path) as (tg, dc),
    ):
        await tg.post_album(TG_USER, TG_USER, [RED, BLUE], "/character create Carol")
        await said(tg, character_texts.character_created("Carol"))
        await dc.slash_command(
            "character create",
            {"name": "Tom"},
            user_id=DC_USER,
            attachments={"image1": ("tom.jpg", BLUE, "image/jpeg")},
        )
        await dc.wait_for(told_privately(character_texts.character_created("Tom")))

        await draw_on_both(tg, dc, photos=1)  # on Flow, by the characters' ids
        flow.fail_next(402, count=100)  # the subscription ran out
        await draw_on_both(tg, dc, photos=2)  # the same prompts, on Gemini

    on_flow = [r.json for r in flow.images_requests() if r.status == 200]
    assert [(b["prompt"], "character_1" in b) for b in on_flow] == [  # type: ignore[index, operator]
        ("@character_1 rides a bike", True),
        ("@character_1 rides a bike", True),
    ]
    asked = gemini.generate_requests()
    assert [prompt_of(r) for r in asked] == [
        "Carol (shown in images 1 and 2) rides a bike",
        "Tom (shown in image 1) rides a bike",
    ]
    # The character's own pictures, as it was made of them (checked and re-encoded once).
    assert [inline_pictures(r) for r in asked] == [
        [as_uploaded(RED), as_uploaded(BLUE)],
        [as_uploaded(BLUE)],
    ]
    captions = [str(c.params["media"].get("caption", "")) for c in tg.calls_of("editMessageMedia")]
    assert "via Gemini API" in captions[-1]
    assert "Characters: Carol" in captions[-1]
