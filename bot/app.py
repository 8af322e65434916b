"""Wiring: open the store and the roads to the models, start the service and front ends, stop
cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging
import queue
import signal
import sys
import threading
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

from bot import reference_links, retention, roads
from bot.config import Settings
from bot.core.cancellation import cancel_until_done
from bot.core.people import DISCORD, TELEGRAM, UserKey
from bot.core.policy import Access
from bot.core.ports import Leadership, Parking
from bot.core.service import Service
from bot.frontends.console import Console, writable_folder
from bot.observability.metrics import Metrics
from bot.observability.server import serve
from bot.reference_links import ReferenceLinks
from bot.store import SqliteStore, open_store

if TYPE_CHECKING:
    from bot.store.postgres import PostgresStore

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[tuple[Service, Parking]]:
    """The store, the roads' clients (in ``settings.providers`` order) and the service on them,
    closed in reverse order; and the store's parking, for the front ends."""
    metrics = Metrics() if settings.http_listen is not None else None
    links = _links(settings)
    async with AsyncExitStack() as stack:
        clients = [roads.client(settings, road) for road in settings.providers]
        for opened in clients:
            await stack.enter_async_context(opened)
        async with open_store(settings.database) as store:
            service = Service(
                store,
                clients,
                models=settings.models,
                limits=settings.limits,
                tuning=settings.tuning,
                defaults=settings.defaults,
                access=Access(
                    admins=frozenset(str(UserKey(*admin)) for admin in settings.admins),
                    allowed_users=settings.allowed_users,
                    allowed_chats=settings.allowed_chats,
                    accounts=settings.useapi_accounts,
                ),
                blocked_words=settings.blocked_words,
                recorder=metrics,
                leadership=_leadership(store),
                links=links,
            )
            async with _operating(settings, store, service, metrics, links):
                yield service, store


def _links(settings: Settings) -> ReferenceLinks | None:
    """Links to users' pictures for Wireflow (which fetches its references from URLs), where
    the bot has a public address (and, the settings made sure, ``BOT_PUBLIC_LISTEN`` to serve
    them on); without one, Wireflow takes only images it made."""
    if "wireflow" not in settings.providers:
        if settings.public_url is not None or settings.public_listen is not None:
            log.info(
                "BOT_PUBLIC_URL and BOT_PUBLIC_LISTEN are unused: only Wireflow fetches pictures "
                "from links"
            )
        return None
    if settings.public_url is None:
        if settings.public_listen is not None:
            log.info("BOT_PUBLIC_LISTEN is unused: it serves BOT_PUBLIC_URL's links")
        log.info(
            "Wireflow takes pictures users send and characters only from a web address: set "
            "BOT_PUBLIC_URL and BOT_PUBLIC_LISTEN (see the README) to serve them; until then "
            "they are refused with a sentence naming it"
        )
        return None
    assert settings.wireflow_api_key is not None
    return ReferenceLinks.keyed_by(settings.wireflow_api_key.reveal(), settings.public_url)


def _leadership(store: SqliteStore | PostgresStore) -> Leadership | None:
    """Processes sharing a PostgreSQL take turns leading; a SQLite file has one process."""
    if isinstance(store, SqliteStore):
        return None
    from bot.store.postgres_lead import PostgresLeader

    return PostgresLeader(store)


async def run_bot(settings: Settings) -> None:
    """``python -m bot``: every platform whose token is set, on one service, until cancelled."""
    async with open_service(settings) as (service, parking):
        # Every platform with a token gets its answers from here; those in BOT_PLATFORMS are
        # heard here too (the leader, whichever process it is, delivers every answer).
        front_ends: list[FrontEnd] = []
        hear = settings.receiving
        if settings.telegram_token is not None:
            from bot.frontends.telegram.frontend import TelegramFrontEnd

            telegram = TelegramFrontEnd(service, settings, parking, receive=TELEGRAM in hear)
            front_ends.append(telegram)
        if settings.discord_token is not None:
            from bot.frontends.discord.frontend import DiscordFrontEnd

            front_ends.append(DiscordFrontEnd(service, settings, parking, receive=DISCORD in hear))
        await _serve(service, front_ends)


async def run_console(settings: Settings) -> None:
    """``python -m bot console``: the terminal front end on the real service, whose user is
    its operator (told of operator problems, and allowed /admin)."""
    settings = replace(settings, admins=(*settings.admins, Console.OPERATOR))
    folder = writable_folder(settings.console_dir)  # before any job could have nowhere to go
    async with open_service(settings) as (service, _):
        lines = _StdinLines(sys.stdin)
        try:
            console = Console(service, folder, stdin=cast(TextIO, lines))
            await _serve(service, [console], may_end=True)
        finally:
            lines.close()


class FrontEnd(Protocol):
    """A front end: ``run()`` until cancelled (the console: until its input ends), attached to
    the service while it is ready."""

    PLATFORM: str

    async def run(self) -> None: ...


class FrontEndStopped(Exception):
    """A platform's front end returned on its own while the bot ran: it hears and answers
    nothing any more, so the bot stops (exit 1) rather than serve on half deaf."""

    def __init__(self, platform: str) -> None:
        super().__init__(f"{platform} stopped on its own while the bot ran: start the bot again")


async def _serve(
    service: Service, front_ends: Sequence[FrontEnd], *, may_end: bool = False
) -> None:
    """Run ``front_ends`` on ``service`` until cancelled, one fails, or (``may_end``: the
    console, whose input ended) they all returned."""
    # The service starts first (resuming the queue); each front end attaches itself once it is
    # ready, and only then are its answers delivered.
    for front_end in front_ends:
        service.expect(front_end.PLATFORM)
    _freeze_what_starting_made()
    async with service, asyncio.TaskGroup() as group:
        runs = [group.create_task(_run(f, may_end=may_end), name=f.PLATFORM) for f in front_ends]
        # A process that lost the lead stops: the new leader runs again what it was running.
        lead = group.create_task(service.deposed(), name="lead")
        log.info("serving %s", ", ".join(f.PLATFORM for f in front_ends) or "nothing")
        await asyncio.wait(runs)
        lead.cancel()  # the front ends are done (the console's input ended)


def _freeze_what_starting_made() -> None:
    """Leave what starting made (modules, the catalogues, the libraries' classes: it lives as
    long as the process) out of every later garbage collection. A full collection walks every
    object the collector tracks, and the event loop stands still meanwhile: 35-60 ms, taken in
    the middle of a burst of answers (bench/README.md). What was already garbage goes first."""
    gc.collect()
    gc.freeze()


async def _run(front_end: FrontEnd, *, may_end: bool = False) -> None:
    """``front_end.run()`` in a task of its own, which a cancellation of this one cancels until
    it ends; then its outcome: a failure (also while stopping) is the front end's failure, a
    cancellation stays one (also where the front end swallowed it and returned), and a return
    on its own, unless it ``may_end``, is ``FrontEndStopped``.

    A TaskGroup cancels its tasks once and waits for them for ever, and discord.py and
    python-telegram-bot may swallow that one cancellation (see ``cancel_until_done``): a
    process that lost the lead would serve on, a process told to stop would hang."""
    task = asyncio.create_task(front_end.run(), name=front_end.PLATFORM)
    try:
        await asyncio.wait([task])
    except asyncio.CancelledError:
        await cancel_until_done([task])
        if task.cancelled() or task.exception() is None:
            raise
    task.result()
    if not may_end:
        log.error("%s stopped on its own while the bot ran", front_end.PLATFORM)
        raise FrontEndStopped(front_end.PLATFORM)


@asynccontextmanager
async def _operating(
    settings: Settings,
    store: SqliteStore | PostgresStore,
    service: Service,
    metrics: Metrics | None,
    links: ReferenceLinks | None,
) -> AsyncIterator[None]:
    """What runs beside the service for its operator: retention, ``/healthz`` and ``/metrics``
    (the service answers both, and records into ``metrics``); and, on a listener of their own,
    the pictures ``links`` name, read from the store, so that any process sharing it answers a
    link another one made."""
    async with AsyncExitStack() as stack:
        if settings.retention_days:
            await stack.enter_async_context(retention.pruning(store, settings.retention_days))
        if settings.http_listen is not None and metrics is not None:
            metrics.watch(service)
            await stack.enter_async_context(serve(settings.http_listen, service, metrics))
        if links is not None:
            assert settings.public_listen is not None  # the settings refuse links without it
            public = reference_links.serve(settings.public_listen, links, store)
            await stack.enter_async_context(public)
        yield


class _StdinLines:
    """Standard input, read by a daemon thread: a stop never waits for the next line.

    The console reads lines in a worker thread; blocked in ``sys.stdin.readline`` it would hold
    the process (asyncio joins its workers on the way out) until someone pressed Enter.
    Here the worker waits on a queue instead, which ``close`` ends.
    """

    def __init__(self, stream: TextIO) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), name="stdin", daemon=True).start()

    def _read(self, stream: TextIO) -> None:
        for line in iter(stream.readline, ""):
            self._lines.put(line)
        self._lines.put("")

    def readline(self) -> str:
        return self._lines.get()

    def close(self) -> None:
        self._lines.put("")  # a reader waiting gets the end of input


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
