"""A bot with one road and no ``USEAPI_TOKEN``: ``app.run_bot`` as ``python -m bot`` runs it,
serving both platforms, a user's picture as the reference (Discord's fake needs discord.py
patched in-process, so the wiring runs in the test's loop). Wireflow fetches a user's picture
from the bot's own public listener, at ``BOT_PUBLIC_URL``, as the real service would."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot import app
from bot.config import Settings
from tests.conftest import as_uploaded, image_bytes
from tests.e2e.bot_process import free_port, run_bot
from tests.e2e.whole_bot import (
    DC_USER,
    TG_TOKEN,
    TG_USER,
    answered_with_files,
    running,
    wireflow_env,
)
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.nbpro_server import FakeNbproServer
from tests.fakes.telegram_server import Call, FakeTelegramServer
from tests.fakes.wireflow_server import FakeWireflowServer


def one_road(
    road_env: dict[str, str], tmp_path: Path
) -> contextlib.AbstractAsyncContextManager[tuple[FakeTelegramServer, FakeDiscordServer]]:
    """The bot on both platforms with only ``road_env`` for a road: no ``USEAPI_TOKEN``."""
    assert "USEAPI_TOKEN" not in road_env
    return running(road_env, tmp_path)


async def both_platforms_with_a_picture(
    tg: FakeTelegramServer, dc: FakeDiscordServer, timeout: float = 15
) -> tuple[bytes, bytes]:
    """A photo with a caption on Telegram, ``/imagine`` with an attachment on Discord: both
    answered with pictures. The two pictures, as the road should have been sent them."""
    tg_picture = image_bytes("PNG", size=(40, 30), color="blue")
    dc_picture = image_bytes("JPEG", size=(30, 40), color="green")
    await tg.post_photo(TG_USER, TG_USER, tg_picture, caption="a fox in the snow --count 1")
    await tg.wait_for("editMessageMedia", timeout=timeout)  # the status becomes the picture
    await dc.slash_command(
        "imagine",
        {"prompt": "a cat on a roof", "count": 1},
        user_id=DC_USER,
        attachments={"image1": ("cat.jpg", dc_picture, "image/jpeg")},
    )
    await dc.wait_for(answered_with_files, timeout=timeout)
    return as_uploaded(tg_picture), as_uploaded(dc_picture)


def refuses_pictures(call: Call) -> bool:
    return "its operator can give it one (BOT_PUBLIC_URL" in str(call.params.get("text", ""))


def inline_pictures(body: Any) -> list[bytes]:
    parts = body["contents"][0]["parts"]
    return [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]


async def test_a_road_without_a_platform_asks_for_a_platform_not_for_useapi(
    tmp_path: Path,
) -> None:
    code, out, err = await run_bot(env={"GEMINI_API_KEY": "AIza-secret"}, cwd=tmp_path)
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "error: no chat platform is configured: set DISCORD_TOKEN and/or TELEGRAM_TOKEN "
        "(or try `python -m bot console`)"
    ]


async def test_only_a_gemini_key_serves_both_platforms_with_references(tmp_path: Path) -> None:
    async with FakeGeminiServer() as gemini:
        env = {"GEMINI_API_KEY": gemini.api_key, "GEMINI_BASE_URL": gemini.base_url}
        async with one_road(env, tmp_path) as (tg, dc):
            sent = await both_platforms_with_a_picture(tg, dc)
    bodies: list[Any] = [r.json for r in gemini.generate_requests()]
    assert [inline_pictures(b) for b in bodies] == [[sent[0]], [sent[1]]]
    assert [b["contents"][0]["parts"][0]["text"] for b in bodies] == [
        "a fox in the snow",
        "a cat on a roof",
    ]


async def test_only_a_nano_banana_pro_net_key_serves_both_platforms_with_references(
    tmp_path: Path,
) -> None:
    async with FakeNbproServer() as nbpro:
        env = {"NBPRO_API_KEY": nbpro.api_key, "NBPRO_BASE_URL": nbpro.base_url}
        async with one_road(env, tmp_path) as (tg, dc):
            sent = await both_platforms_with_a_picture(tg, dc)
    assert [[u.data for u in uploads] for uploads in nbpro.uploads] == [[sent[0]], [sent[1]]]


def image_inputs(wireflow: FakeWireflowServer) -> list[str]:
    """Every image input of every execution asked for, in order."""
    return [
        value
        for r in wireflow.execute_requests()
        for key, value in r.json["nodes"][1]["data"]["params"].items()  # type: ignore[index]
        if key.startswith("image")
    ]


async def test_only_a_wireflow_key_serves_both_platforms(tmp_path: Path) -> None:
    async with FakeWireflowServer(plan="pro") as wireflow:
        env = wireflow_env(wireflow)
        async with one_road(env, tmp_path) as (tg, dc):
            await tg.post_message(TG_USER, TG_USER, "a lighthouse --count 1")
            await tg.wait_for("editMessageMedia", timeout=20)
            await dc.slash_command("imagine", {"prompt": "a harbour", "count": 1}, user_id=DC_USER)
            await dc.wait_for(answered_with_files, timeout=20)
            # A user's picture is refused with a sentence, and nothing reaches Wireflow.
            before = len(wireflow.execute_requests())
            await tg.post_photo(TG_USER, TG_USER, image_bytes(), caption="a fox")
            await tg.wait_for("sendMessage", predicate=refuses_pictures, timeout=10)
            assert len(wireflow.execute_requests()) == before
    assert wireflow.executed == 2


async def test_only_a_wireflow_key_and_a_public_address_serve_users_pictures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Wireflow fetches each picture from the bot's public listener, over a signed link: the bytes
    it gets are the checked, re-encoded ones; no Telegram file URL (it holds the bot's token)
    and no link reaches the logs."""
    port = free_port()
    caplog.set_level(logging.DEBUG)
    async with (
        FakeWireflowServer(plan="pro") as wireflow,
        one_road(wireflow_env(wireflow, port), tmp_path) as (tg, dc),
    ):
        sent = await both_platforms_with_a_picture(tg, dc, timeout=30)
    links = image_inputs(wireflow)
    assert [link.startswith(f"http://127.0.0.1:{port}/references/") for link in links] == [
        True,
        True,
    ]
    assert [(f.url, f.status, f.data) for f in wireflow.fetched] == [
        (links[0], 200, sent[0]),
        (links[1], 200, sent[1]),
    ]
    bodies = json.dumps([r.json for r in wireflow.execute_requests()])
    assert TG_TOKEN not in bodies
    assert tg.root not in bodies
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [link for link in links if link in logged]
    assert "/references/" not in logged


@pytest.mark.parametrize("answer_lost", [False, True], ids=["answered", "answer-lost"])
async def test_a_picture_is_still_served_to_an_execution_resumed_after_a_restart(
    tmp_path: Path, answer_lost: bool
) -> None:
    """The bot stops while Wireflow has yet to fetch the picture; the bot that starts next
    resumes polling that execution (no second one) and serves the link the first one made:
    the key is derived, not drawn per process, and the picture is read from the store.
    ``answer-lost``: it stops before Wireflow's answer came, so it never stored the execution's
    id; the next bot asks again under the same idempotency key, and gets the same execution."""
    port = free_port()
    picture = image_bytes("PNG", size=(40, 30), color="purple")
    async with FakeWireflowServer(plan="pro") as wireflow, FakeTelegramServer(token=TG_TOKEN) as tg:
        wireflow.fetching.clear()
        if answer_lost:
            wireflow.stall_next_answer(30)
        settings = Settings.from_env(
            {
                **wireflow_env(wireflow, port),
                "TELEGRAM_TOKEN": TG_TOKEN,
                "TELEGRAM_API_URL": tg.root,
                "DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3",
            },
            env_file=None,
        )
        first = asyncio.create_task(app.run_bot(settings))
        await tg.wait_for("deleteWebhook", timeout=10)
        await tg.post_photo(TG_USER, TG_USER, picture, caption="a fox in the snow --count 1")
        async with asyncio.timeout(15):
            while not wireflow.execute_requests():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        second = asyncio.create_task(app.run_bot(settings))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                async with asyncio.timeout(10):
                    while True:
                        with contextlib.suppress(httpx.TransportError):
                            if (await http.get("/")).status_code == 404:  # it listens
                                break
                        await asyncio.sleep(0.05)
            wireflow.fetching.set()  # Wireflow fetches now, from the bot that runs now
            await tg.wait_for("editMessageMedia", timeout=30)  # the status became the picture
        finally:
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
    assert wireflow.executed == 1
    # Stopped before it stored the execution's id, the first bot leaves the second to ask
    # again, under the same idempotency key: Wireflow answers with the execution it made, which
    # fetches the first link (the second's expires a moment later; both are good).
    link, *again = image_inputs(wireflow)
    assert len(again) == 1 if answer_lost else len(again) <= 1  # unless the stop met the answer
    assert len({r.headers["idempotency-key"] for r in wireflow.execute_requests()}) == 1
    assert [(f.url, f.status, f.data) for f in wireflow.fetched] == [
        (link, 200, as_uploaded(picture))
    ]
