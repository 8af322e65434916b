"""Running the real Discord front end and service against the fake Discord and Flow servers."""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord

from bot.config import Secret, Settings
from bot.core.buttons import Button
from bot.core.domain import ResultImage
from bot.core.models_table import ModelTable
from bot.core.policy import Limits, Tuning
from bot.core.service import Service
from bot.frontends import discord as discord_frontend
from bot.frontends.discord.frontend import DiscordFrontEnd
from bot.providers.flow import FlowClient
from bot.store.sqlite import SqliteStore
from tests.conftest import FAST, AnyStore, build_service
from tests.fakes.discord_server import (
    FLAG_EPHEMERAL,
    FakeDiscordServer,
    InjectedInteraction,
    RestCall,
)
from tests.fakes.flow_server import FakeFlowServer, jpeg

TOKEN = "discord-test-token"
USER = 4444
OTHER = 5555
ADMIN = 7777


@dataclass
class Bot:
    """One "process": a service and a Discord front end on a shared store."""

    service: Service
    store: AnyStore
    frontend: DiscordFrontEnd
    upstream: FlowClient
    task: asyncio.Task[None]
    # Discord refusals a test provokes without ``fail_next`` (an expired token, a channel the
    # bot may not write in), by a piece of "METHOD path -> status".
    refusals: list[str] = field(default_factory=list)

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("run() must re-raise the cancellation")
        assert self.frontend.client.is_closed()
        await self.service.aclose()
        await self.upstream.aclose()
        # An interaction's handler may still be writing its last answer as the client closes
        # (discord.py runs each in a task of its own): it may end, it may not stay.
        if running := _discord_tasks():
            await asyncio.wait(running, timeout=5)
        assert (left := _discord_tasks()) == [], left


def unasked_refusals(dc: FakeDiscordServer, bot: Bot) -> list[str]:
    """What Discord refused that the test neither injected nor declared in ``bot.refusals``.
    A refused answer is recorded as given (it is never retried), so a test that only waits for
    "delivered" would not see it."""
    refused = [str(c) for c in dc.calls if c.status >= 400 and not c.injected]
    return [r for r in refused if not any(e in r for e in bot.refusals)]


# Where discord.py's code and our adapter's live (not these tests, in a folder named discord).
_DISCORD_CODE = tuple(
    str(Path(str(package.__file__)).parent) + os.sep for package in (discord, discord_frontend)
)


def _discord_tasks() -> list[asyncio.Task[Any]]:
    """Unfinished tasks running code of discord.py or of our adapter."""
    leftovers = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        where = code.co_filename if code is not None else ""
        if not task.done() and where.startswith(_DISCORD_CODE):
            leftovers.append(task)
    return leftovers


async def start_bot(
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    store: AnyStore,
    *,
    models: ModelTable | None = None,
    limits: Limits | None = None,
    tuning: Tuning = FAST,
    dev_guild: int | None = None,
) -> Bot:
    upstream = FlowClient("test-token", flow.base_url)
    service = build_service(
        store, upstream, models=models, limits=limits, tuning=tuning, admin=f"discord:{ADMIN}"
    )
    settings = Settings(
        useapi_token=Secret("test-token"),
        useapi_base_url=flow.base_url,
        discord_token=Secret(TOKEN),
        discord_dev_guild=dev_guild,
    )
    frontend = DiscordFrontEnd(service, settings, store, guild_ready_timeout=0.05)
    await service.start()
    task = asyncio.create_task(frontend.run())
    ready = asyncio.create_task(dc.wait_ready())
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # login or connect failed: raise it here
    await ready
    await asyncio.wait_for(frontend.client.wait_until_ready(), 5)
    return Bot(service, store, frontend, upstream, task)


@asynccontextmanager
async def process(
    dc: FakeDiscordServer, flow: FakeFlowServer, path: Path, **options: Any
) -> AsyncIterator[Bot]:
    """A bot with its own store on ``path``, closed with it: what a restart really is."""
    async with SqliteStore(path) as store:
        bot = await start_bot(dc, flow, store, **options)
        try:
            yield bot
        finally:
            await bot.stop()


async def ephemeral_reply(dc: FakeDiscordServer, inter: InjectedInteraction) -> dict[str, Any]:
    """The private message a refused interaction got: its first response when the core refused
    it before anything was fetched, else a followup after its public status (a refusal of the
    attachments' bytes). Returns the message's JSON."""

    def private(call: RestCall) -> bool:
        if call.status != 200 and call.status != 204:
            return False
        if call.path.startswith(f"/interactions/{inter.id}/"):
            data = call.json.get("data") or {}
            return bool(call.json["type"] == 4 and data.get("flags", 0) & FLAG_EPHEMERAL)
        return call.method == "POST" and call.path.startswith(
            f"/webhooks/{dc.application_id}/{inter.token}"
        )

    (reply,) = await dc.wait_for(private)
    message: dict[str, Any] = (
        reply.json["data"] if reply.path.startswith("/interactions/") else reply.json
    )
    assert message["flags"] & FLAG_EPHEMERAL
    return message


def on_original(
    inter: InjectedInteraction, *, files: bool = False, content: str | None = None
) -> Callable[[RestCall], bool]:
    """Matches a successful edit of the interaction's response (with files or text, if asked)."""

    def match(call: RestCall) -> bool:
        return (
            call.method == "PATCH"
            and call.path.endswith(f"/{inter.token}/messages/@original")
            and call.status == 200
            and (bool(call.files) or not files)
            and (content is None or call.json["content"] == content)
        )

    return match


def responded(inter: InjectedInteraction, content: str) -> Callable[[RestCall], bool]:
    """Matches the interaction's first response, public, saying ``content`` (a job's status:
    its place in the queue)."""

    def match(call: RestCall) -> bool:
        return (
            call.path.startswith(f"/interactions/{inter.id}/")
            and call.status in (200, 204)
            and call.json["type"] == 4
            and (call.json.get("data") or {}).get("content") == content
        )

    return match


def edits(dc: FakeDiscordServer, inter: InjectedInteraction) -> list[str]:
    """The contents the response was edited to, in order."""
    return [c.json["content"] for c in dc.interaction_responses(inter.id) if on_original(inter)(c)]


def buttons(message: dict[str, Any]) -> list[list[str]]:
    return [[c["custom_id"] for c in row["components"]] for row in message["components"]]


def public_id_of(message: dict[str, Any]) -> str:
    """The public id of the job a result message answers, read from its buttons."""
    parsed = Button.parse(buttons(message)[-1][-1])
    assert parsed is not None
    return parsed.job


def public_id_of_files(call: RestCall) -> str:
    """The public id of the job whose images a post uploaded (``banana-<id>-<n>.<ext>``)."""
    return next(iter(call.files)).split("-")[1]


async def job_of(store: AnyStore, message: dict[str, Any]) -> int:
    """The job a result message answers, read from its buttons."""
    job = await store.job_by_public_id(public_id_of(message))
    assert job is not None
    return job.id


def produced(image: ResultImage, size: tuple[int, int]) -> bytes:
    """The bytes the fake Flow server made for a generated image."""
    assert image.seed is not None
    return jpeg(size, image.seed, image.ref.media_id)


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge picture (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


async def private_replies(
    dc: FakeDiscordServer, inter: InjectedInteraction, count: int = 1
) -> list[dict[str, Any]]:
    """The private messages an interaction was answered with (first response or followups)."""

    def private(call: RestCall) -> bool:
        if call.status not in (200, 204) or call.method != "POST":
            return False
        if call.path.startswith(f"/interactions/{inter.id}/"):
            return bool(call.json["type"] == 4)
        return call.path.startswith(f"/webhooks/{dc.application_id}/{inter.token}")

    replies = await dc.wait_for(private, count=count)
    messages = [r.json["data"] if r.path.startswith("/interactions/") else r.json for r in replies]
    assert all(m["flags"] & FLAG_EPHEMERAL for m in messages)
    return messages


async def create(
    dc: FakeDiscordServer, name: str, *images: bytes, user_id: int = USER
) -> dict[str, Any]:
    attachments = {
        f"image{i}": (f"p{i}.png", data, "image/png") for i, data in enumerate(images, 1)
    }
    inter = await dc.slash_command(
        "character create", {"name": name}, user_id=user_id, attachments=attachments
    )
    [reply] = await private_replies(dc, inter)
    return reply
