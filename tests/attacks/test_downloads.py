"""Attacks that make the bot download: albums it will refuse anyway, many albums at once.

Everything a request can be refused for without its images (access, queue, quota, prompt,
model and options, the number of references) is checked before a byte is downloaded, and
downloads are bounded per user and overall.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any

import pytest

from bot.core import models_file, option_texts, texts
from bot.core.models_table import ModelTable
from bot.core.policy import Limits
from bot.core.service import downloads
from bot.frontends.discord import interactions as discord_interactions
from bot.frontends.discord import views as discord_views
from bot.frontends.telegram.status import RESULT_HERE
from bot.store.sqlite import SqliteStore
from tests.conftest import image_bytes, owner
from tests.e2e.discord import harness as discord_harness
from tests.e2e.telegram.harness import USER, BotUnderTest, png, text_of
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer


def refused_with(sentence: str) -> Any:
    return lambda call: text_of(call) == texts.failed(sentence)


async def test_an_album_that_will_be_refused_is_never_downloaded(telegram: BotUnderTest) -> None:
    models = models_file.merged(
        ModelTable.builtin(), {"models": {"nano-banana-2-lite": {"max_references": 2}}}
    )
    bot, tg = telegram, telegram.tg
    await bot.start(models=models, limits=Limits(queued_per_user=1, daily_images_per_user=3))
    photos = [png(color=(c, 0, 0)) for c in (1, 2, 3)]

    # More references than the model takes; more images than today's quota leaves.
    too_many = option_texts.too_many_references(3, "nano-banana-2-lite", 2)
    await tg.post_album(USER, USER, photos, "/imagine x --model lite --count 1")
    await tg.wait_for("sendMessage", predicate=refused_with(too_many))
    await tg.post_album(USER, USER, photos, "/imagine x --model 2 --count 4", as_documents=True)
    await tg.wait_for("sendMessage", predicate=refused_with(option_texts.daily_quota(3)))

    # A full queue.
    bot.service.scheduler.accounts["alice@example.com"].limit = 0.0
    await tg.post_message(USER, USER, "/imagine waiting --count 1")
    await tg.wait_for("sendMessage", predicate=lambda c: RESULT_HERE in text_of(c))
    await tg.post_album(USER, USER, photos, "/imagine x --model 2 --count 1")
    await tg.wait_for("sendMessage", predicate=refused_with(option_texts.queue_full(1)))

    assert tg.calls_of("getFile") == []
    assert tg.calls_of("download") == []
    # Refused at once: one message each, no "⏳" status first.
    assert text_of(tg.calls_of("sendMessage")[0]) == texts.failed(too_many)


async def test_six_albums_at_once_are_fetched_one_after_another(telegram: BotUnderTest) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    tg.download_delay = 0.2
    for n in range(6):
        await tg.post_album(USER, USER, [png(color=(n, 9, 9))] * 2, f"/imagine album {n} --count 1")
    for job_id in range(1, 7):
        await bot.delivered(job_id, timeout=20)
    starts = sorted(c.at for c in tg.calls_of("download"))
    assert len(starts) == 12
    # One download of this user's at a time: each starts after the one before it ended.
    assert all(b - a >= 0.15 for a, b in itertools.pairwise(starts))


async def test_downloads_are_bounded_per_user_and_overall(make_service: Any) -> None:
    service, _ = await make_service()
    service.scheduler.accounts["alice@example.com"].limit = 0.0  # keep the jobs waiting
    in_flight: dict[str, int] = {}
    most: dict[str, int] = {}

    async def submit(user: str) -> None:
        async def fetch() -> list[bytes]:
            in_flight[user] = in_flight.get(user, 0) + 1
            in_flight["all"] = in_flight.get("all", 0) + 1
            for key in (user, "all"):
                most[key] = max(most.get(key, 0), in_flight[key])
            await asyncio.sleep(0.05)
            in_flight[user] -= 1
            in_flight["all"] -= 1
            return [image_bytes(color="blue")]

        async with service.admit(owner(user), "x --count 1", references=1) as admission:
            await admission.submit(fetch=fetch)

    await asyncio.gather(*(submit("greedy") for _ in range(6)))
    assert most["greedy"] == 1
    await asyncio.gather(*(submit(str(n)) for n in range(12)))
    assert most["all"] == downloads.DOWNLOAD_SLOTS


def unanswered_address() -> str:
    """An address where nothing listens (a port just freed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host, port = probe.getsockname()
    return f"http://{host}:{port}"


async def imagine_with_attachment_at(
    cdn: str,
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    store: SqliteStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/imagine with an attachment Discord says is at ``cdn``: refused as a failed download,
    no job stored, nothing sent upstream."""
    stored = dc._store_blob

    def elsewhere(*args: Any) -> dict[str, Any]:
        attachment = stored(*args)
        attachment["url"] = attachment["proxy_url"] = f"{cdn}/attachments/ref.png"
        return attachment

    monkeypatch.setattr(dc, "_store_blob", elsewhere)
    bot = await discord_harness.start_bot(dc, flow, store)
    try:
        inter = await dc.slash_command(
            "imagine",
            {"prompt": "a fox", "count": 1},
            user_id=discord_harness.USER,
            attachments={"image1": ("ref.png", png(), "image/png")},
        )
        reply = await discord_harness.ephemeral_reply(dc, inter)
        assert reply["content"] == texts.failed(discord_views.DOWNLOAD_FAILED)
    finally:
        await bot.stop()
    assert await store.get_job(1) is None
    assert flow.images_requests() == []


async def test_a_discord_attachment_whose_cdn_does_not_answer_is_a_download_failure(
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    store: SqliteStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await imagine_with_attachment_at(unanswered_address(), dc, flow, store, monkeypatch)


async def test_a_discord_attachment_whose_cdn_never_sends_a_byte_ends_in_time(
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    store: SqliteStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A CDN that takes the connection and says nothing: aiohttp's own deadline is 5 minutes.
    hung: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    monkeypatch.setattr(discord_interactions, "DOWNLOAD_SECONDS", 0.5)
    try:
        cdn = f"http://{host}:{port}"
        await imagine_with_attachment_at(cdn, dc, flow, store, monkeypatch)
    finally:
        for writer in hung:
            writer.close()
        server.close()
    assert hung  # the bot did reach the silent CDN
