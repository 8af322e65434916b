"""Wiring: open the store and the Flow client, start the service and front ends, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Protocol

from bot.config import Settings
from bot.console import PLATFORM as CONSOLE
from bot.console import Console
from bot.core.policy import Access
from bot.core.ports import Notifier
from bot.core.service import Service
from bot.flow.client import FlowClient, FlowTimeouts
from bot.store import open_store

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    """The store, the upstream client and the service, closed in reverse order."""
    timeouts = FlowTimeouts(generate=settings.tuning.generation_timeout_seconds)
    async with (
        FlowClient(
            settings.useapi_token.reveal(),
            settings.useapi_base_url,
            timeouts=timeouts,
            media_hosts=settings.upstream_media_hosts,
        ) as flow,
        open_store(settings.database) as store,
    ):
        yield Service(
            store,
            flow,
            models=settings.models,
            limits=settings.limits,
            tuning=settings.tuning,
            defaults=settings.defaults,
            access=Access(
                admins=frozenset(f"{p}:{i}" for p, i in settings.admins),
                allowed_users=settings.allowed_users,
                allowed_chats=settings.allowed_chats,
                accounts=settings.useapi_accounts,
            ),
        )


async def run_bot(settings: Settings) -> None:
    """``python -m bot``: every platform whose token is set, on one service, until cancelled."""
    async with open_service(settings) as service:
        front_ends: list[FrontEnd] = []
        if settings.telegram_token is not None:
            from bot.telegram_bot import TelegramFrontEnd

            front_ends.append(TelegramFrontEnd(service, settings))
        if settings.discord_token is not None:
            from bot.discord_bot import DiscordFrontEnd

            front_ends.append(DiscordFrontEnd(service, settings))
        for front_end in front_ends:
            service.register(front_end.PLATFORM, front_end)
        # The service starts first so that redeliveries after a restart wait for the front ends
        # (each one holds them until it is connected), not the other way round.
        async with service, asyncio.TaskGroup() as group:
            for front_end in front_ends:
                group.create_task(front_end.run(), name=front_end.PLATFORM)
            log.info("serving %s", ", ".join(f.PLATFORM for f in front_ends))


class FrontEnd(Notifier, Protocol):
    """A chat platform: a notifier for the service, and ``run()`` until cancelled."""

    PLATFORM: str

    async def run(self) -> None: ...


async def run_console(settings: Settings) -> None:
    """``python -m bot console``: the terminal front end on the real service."""
    async with open_service(settings) as service:
        console = Console(service, settings.console_dir)
        service.register(CONSOLE, console)
        async with service:
            await console.run()


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine until it ends, SIGINT or SIGTERM; either signal stops it cleanly."""

    async def guarded() -> None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            log.info("stopped")

    asyncio.run(guarded())
