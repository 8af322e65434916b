"""The whole Telegram bot in the test's event loop: real TelegramFrontEnd, Service, FlowClient and
SqliteStore, against FakeTelegramServer and FakeFlowServer."""

from __future__ import annotations

import asyncio
import contextlib
import io
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image
from telegram import Bot

from bot.config import PUBLIC_TELEGRAM_API, Secret, Settings
from bot.core.domain import Job, ResultImage
from bot.core.models_table import ModelTable
from bot.core.policy import Limits, Tuning
from bot.core.service import Service
from bot.frontends.telegram.frontend import TelegramFrontEnd
from bot.frontends.telegram.line import TELEGRAM_LIMITS, FloodLimits
from bot.providers.flow import FlowClient
from bot.store.sqlite import SqliteStore
from tests.conftest import FAST, build_service, wait_delivered
from tests.fakes.flow_server import FakeFlowServer, Recorded, jpeg
from tests.fakes.telegram_server import Call, FakeTelegramServer

# Telegram's flood limits run twenty times as fast: the same bursts and the same turns, in a
# twentieth of the time (a chat's fourth message waits 55 ms, not 1.1 s). A test about the
# pacing itself sets ``BotUnderTest.flood`` (to Telegram's own, ``TELEGRAM_LIMITS``).
SPEEDUP = 20
QUICK = replace(
    TELEGRAM_LIMITS,
    overall_rate=TELEGRAM_LIMITS.overall_rate * SPEEDUP,
    chat_rate=TELEGRAM_LIMITS.chat_rate * SPEEDUP,
    group_period=TELEGRAM_LIMITS.group_period / SPEEDUP,
)

TOKEN = "123:ABC-fake-token"
USER = 42  # a private chat's id is its user's id
OTHER = 43
GROUP = -1001234567890
ADMIN = 7


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that claims ``width`` × ``height`` pixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def labels(markup: dict[str, Any]) -> list[list[str]]:
    return [[b["text"] for b in row] for row in markup["inline_keyboard"]]


def callback_data(markup: dict[str, Any]) -> list[list[str]]:
    return [[b["callback_data"] for b in row] for row in markup["inline_keyboard"]]


def uploads(flow: FakeFlowServer) -> list[Recorded]:
    return [r for r in flow.requests if r.method == "POST" and "/assets/" in r.path]


def generations(flow: FakeFlowServer) -> list[dict[str, Any]]:
    """The JSON bodies of every POST /images, in order."""
    requests = flow.images_requests()
    bodies = [r.json for r in requests if isinstance(r.json, dict)]
    assert len(bodies) == len(requests)
    return bodies


def upstream_posts(flow: FakeFlowServer) -> list[Recorded]:
    return [r for r in flow.requests if r.method == "POST"]


def text_of(call: Call) -> str:
    return str(call.params.get("text", ""))


async def spend_the_chats_budget(bot: BotUnderTest) -> int:
    """Start the bot with a chat budget of a message every 0.4 s, and spend it on three /start
    answers: what the bot sends next waits for room. The calls made so far (to look past)."""
    bot.flood = replace(TELEGRAM_LIMITS, chat_rate=2.5)
    await bot.start()
    for _ in range(3):
        await bot.tg.post_message(USER, USER, "/start")
    await bot.tg.wait_for("sendMessage", count=3)
    return len(bot.tg.calls)


# Which Bot API the bot is configured for: the default, api.telegram.org (its requests are
# routed to the fake, which keeps that API's limits), or a local Bot API server
# (``TELEGRAM_API_URL`` set to the fake, which then behaves as one run with --local).
PUBLIC, LOCAL = "public", "local"


@dataclass
class BotUnderTest:
    """Start with ``await bot.start(...)``; ``restart()`` keeps the store, loses the memory."""

    tg: FakeTelegramServer
    flow: FakeFlowServer
    db: Path
    album_wait: float = 0.3
    api: str = PUBLIC
    flood: FloodLimits = QUICK
    # Telegram refusals a test provokes without ``fail_next`` (a deleted message, a user who
    # never started the bot), by a piece of "method: description".
    refusals: list[str] = field(default_factory=list)
    service: Service = field(init=False)
    store: SqliteStore = field(init=False)
    front_end: TelegramFrontEnd = field(init=False)
    _client: FlowClient = field(init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _routes: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, init=False)
    _options: dict[str, Any] = field(default_factory=dict, init=False)
    _starts: int = field(default=0, init=False)

    async def start(
        self,
        *,
        models: ModelTable | None = None,
        limits: Limits | None = None,
        tuning: Tuning = FAST,
        **settings: Any,
    ) -> None:
        self._options = {"models": models, "limits": limits, "tuning": tuning, **settings}
        self.store = SqliteStore(self.db)
        await self.store.open()
        self._client = FlowClient("test-token", self.flow.base_url)
        self.service = build_service(
            self.store,
            self._client,
            models=models,
            limits=limits,
            tuning=tuning,
            admin=f"telegram:{ADMIN}",
        )
        self.tg.local_server = self.api == LOCAL
        if self.api == PUBLIC:
            self._routes.enter_context(self.tg.patch_public_api())
        config = Settings(
            useapi_token=Secret("test-token"),
            telegram_token=Secret(TOKEN),
            telegram_api_url=self.tg.root if self.api == LOCAL else PUBLIC_TELEGRAM_API,
            admins=(("telegram", str(ADMIN)),),
            **settings,
        )
        self.front_end = TelegramFrontEnd(
            self.service, config, self.store, album_wait=self.album_wait, flood=self.flood
        )
        await self.service.start()
        self._task = asyncio.create_task(self.front_end.run())
        self._starts += 1
        # Polling has started once PTB has made sure no webhook is set; a webhook run sets one.
        method = "setWebhook" if config.telegram_webhook_url else "deleteWebhook"
        await self.tg.wait_for(method, count=self._starts)

    async def stop(self) -> None:
        """Cancel the front end as the wiring's TaskGroup would; it must stop cleanly."""
        if self._task is None:
            self._routes.close()
            return
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled(), "run() must end by re-raising CancelledError"
        await self.service.aclose()
        await self._client.aclose()
        await self.store.close()
        self._routes.close()

    async def restart(self) -> None:
        options = self._options
        await self.stop()
        await self.start(**options)

    def unasked_refusals(self) -> list[str]:
        """What Telegram refused that the test neither injected nor declared in ``refusals``.
        A delivery Telegram refuses is recorded as given (it is never retried), so a test that
        only waits for "delivered" would not see it."""
        refused = [
            f"{c.method}: {c.error}"
            for c in self.tg.calls
            if c.error and not c.injected and c.method != "getUpdates"  # a poll cut at a stop
        ]
        return [r for r in refused if not any(e in r for e in self.refusals)]

    async def job(self, job_id: int) -> Job:
        found = await self.store.get_job(job_id)
        assert found is not None
        return found

    async def stored(self, job_id: int, timeout: float = 5.0) -> Job:
        """The job is stored, and so queued (nothing awaits between the two). Its status
        message comes first: it is sent before the job exists, which keeps where it lives."""
        async with asyncio.timeout(timeout):
            while (job := await self.store.get_job(job_id)) is None:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        return job

    async def delivered(self, job_id: int, timeout: float = 10.0) -> Job:
        """The job's final answer was given (or found undeliverable) and recorded."""
        await wait_delivered(self.store, job_id, timeout)
        return await self.job(job_id)

    async def parked(self, kind: str, timeout: float = 5.0) -> None:
        """Wait until the front end has parked a ``kind`` value in the store."""
        async with asyncio.timeout(timeout):
            while not await self.store.pending_keys(kind, older_than=0):  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def results(self, job_id: int) -> list[ResultImage]:
        return await self.store.results(job_id)

    async def generated(self, job_id: int) -> list[bytes]:
        """The exact bytes the fake Flow server made for a job's images (seeded, and named by
        their media id, so they can be made again)."""
        return [
            jpeg(self.flow.image_size, image.seed or 0, image.ref.media_id)
            for image in await self.results(job_id)
        ]

    def raw_bot(self) -> Bot:
        """Another client of the fake Bot API, e.g. an admin deleting a message."""
        return Bot(TOKEN, base_url=f"{self.tg.root}/bot", base_file_url=f"{self.tg.root}/file/bot")


@contextlib.asynccontextmanager
async def unstarted(tmp_path: Path, *, api: str = PUBLIC) -> AsyncIterator[BotUnderTest]:
    """The bot on a fake Telegram and a fake Flow, not started yet (``await bot.start(...)``);
    stopped at the end, and it must have met no refusal the test did not ask for."""
    async with (
        FakeTelegramServer(token=TOKEN) as tg,
        FakeFlowServer(accounts=["alice@example.com"]) as flow,
    ):
        under_test = BotUnderTest(tg, flow, tmp_path / "bot.sqlite3", api=api)
        try:
            yield under_test
        finally:
            await under_test.stop()
        assert under_test.unasked_refusals() == []
