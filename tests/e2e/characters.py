"""What the character tests on both platforms share: Carol, made on Telegram of two pictures,
and Tom, made on Discord of one, each drawn by the same ``@name`` prompt on whatever road."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.core import character_texts
from tests.conftest import image_bytes
from tests.e2e.whole_bot import DC_USER, TG_USER, answered_with_files
from tests.fakes.discord_server import FakeDiscordServer, RestCall
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.telegram_server import Call, FakeTelegramServer


def pictures(tg: FakeTelegramServer) -> list[Call]:
    """The pictures answered on Telegram: a status message edited into one, or a new one."""
    return [c for c in tg.calls if c.method in ("editMessageMedia", "sendPhoto")]


def caption_of(call: Call) -> str:
    return str(call.params.get("media", call.params).get("caption", ""))


RED = image_bytes(size=(40, 30), color="red")
BLUE = image_bytes("JPEG", size=(30, 40), color="blue")


def flow_then_gemini(flow: FakeFlowServer, gemini: FakeGeminiServer) -> dict[str, str]:
    """Flow the first road, Gemini the next."""
    return {
        "USEAPI_TOKEN": "test-token",
        "USEAPI_BASE_URL": flow.base_url,
        "GEMINI_API_KEY": gemini.api_key,
        "GEMINI_BASE_URL": gemini.base_url,
        "BOT_PROVIDERS": "flow,gemini",
    }


async def said(tg: FakeTelegramServer, text: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not any(m.get("text") == text for m in tg.sent_messages(TG_USER)):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def told_privately(text: str) -> Callable[[RestCall], bool]:
    def match(call: RestCall) -> bool:
        data = call.json.get("data", call.json) if isinstance(call.json, dict) else {}
        return call.method == "POST" and isinstance(data, dict) and data.get("content") == text

    return match


async def create_carol_and_tom(tg: FakeTelegramServer, dc: FakeDiscordServer) -> None:
    """Carol of RED and BLUE on Telegram, Tom of BLUE on Discord: both made."""
    await tg.post_album(TG_USER, TG_USER, [RED, BLUE], "/character create Carol")
    await said(tg, character_texts.character_created("Carol"))
    await dc.slash_command(
        "character create",
        {"name": "Tom"},
        user_id=DC_USER,
        attachments={"image1": ("tom.jpg", BLUE, "image/jpeg")},
    )
    await dc.wait_for(told_privately(character_texts.character_created("Tom")))


async def draw_on_both(tg: FakeTelegramServer, dc: FakeDiscordServer, photos: int) -> None:
    """The same prompt with the user's character, from each platform: both answered."""
    await tg.post_message(TG_USER, TG_USER, "@carol rides a bike --model 2 --count 1")
    # The picture: on its status message, or in a reply of its own if it came first.
    async with asyncio.timeout(20):
        while len(pictures(tg)) < photos:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await dc.slash_command(
        "imagine", {"prompt": "@tom rides a bike --model 2", "count": 1}, user_id=DC_USER
    )
    await dc.wait_for(answered_with_files, count=photos, timeout=20)
