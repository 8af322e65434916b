"""``GET /healthz`` and ``GET /metrics`` on ``BOT_HTTP_LISTEN``, with aiohttp's web server.

``/healthz`` answers 200 when the store is writable and some road (a Flow account or another
provider) can serve, else 503; both as JSON with the reasons. A health source that fails or
takes longer than ``HEALTH_TIMEOUT`` is itself a reason. ``/metrics`` is the Prometheus text
exposition. No secret is reachable here, and no user's data but through ``routes`` the wiring
adds: with ``BOT_PUBLIC_URL``, users' pictures behind signed links (``bot.reference_links``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.config import ConfigError
from bot.core.monitoring import Health, HealthSource
from bot.observability.metrics import Metrics

HEALTH_TIMEOUT = 5.0  # seconds; Docker's HEALTHCHECK waits longer than this
# aiohttp waits without end for a request a client began and never finished, and for the first
# one on a connection: each such connection holds a file descriptor of the bot's process, which
# its chats, store and upstreams need. At most this many at once (Prometheus, a health check and
# a road fetching references need a handful), each for at most this many seconds (a reference
# is at most 20 MB).
MAX_CONNECTIONS = 256
CONNECTION_SECONDS = 60.0
log = logging.getLogger(__name__)


@asynccontextmanager
async def serve(
    listen: tuple[str, int],
    health: HealthSource,
    metrics: Metrics,
    routes: Iterable[web.RouteDef] = (),
) -> AsyncIterator[int]:
    """Serve until the block ends; yields the port (``listen``'s, or the one picked for 0)."""
    app = web.Application()
    app.router.add_get("/healthz", _Endpoints(health, metrics).healthz)
    app.router.add_get("/metrics", _Endpoints(health, metrics).metrics)
    app.router.add_routes(routes)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, port = listen
    assert runner.server is not None  # set up
    guarded = _Guarded.factory(runner.server)
    try:
        listener = await asyncio.get_running_loop().create_server(guarded, host, port)
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"BOT_HTTP_LISTEN {host}:{port} can't be listened on ({exc.strerror}): "
            "choose a free port, or an address of this machine"
        ) from None
    bound = int(listener.sockets[0].getsockname()[1])
    log.info("serving /healthz and /metrics on %s:%d", host, bound)
    try:
        yield bound
    finally:
        listener.close()
        await runner.cleanup()  # closes the connections still open
        await listener.wait_closed()


class _Guarded(asyncio.Protocol):
    """aiohttp's handler of one connection, unless ``MAX_CONNECTIONS`` are open (then the
    connection is dropped unread), closed after ``CONNECTION_SECONDS`` whatever it is doing."""

    def __init__(self, inner: asyncio.Protocol, live: set[_Guarded]) -> None:
        self._inner = inner
        self._live = live
        self._deadline: asyncio.TimerHandle | None = None

    @classmethod
    def factory(cls, handler: Callable[[], asyncio.Protocol]) -> Callable[[], _Guarded]:
        live: set[_Guarded] = set()
        return lambda: cls(handler(), live)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self._live) >= MAX_CONNECTIONS:
            transport.close()
            return
        self._live.add(self)
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(CONNECTION_SECONDS, transport.close)
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self not in self._live:
            return  # dropped unread: aiohttp never saw it
        self._live.discard(self)
        if self._deadline is not None:
            self._deadline.cancel()
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class _Endpoints:
    def __init__(self, health: HealthSource, metrics: Metrics) -> None:
        self._health = health
        self._metrics = metrics
        self._checking: asyncio.Future[Health] | None = None

    async def healthz(self, request: web.Request) -> web.Response:
        """200 or 503, with what is wrong."""
        health = await self._ask()
        body = {
            "status": "ok" if health.healthy else "unhealthy",
            "store_writable": health.store_writable,
            "upstream_serving": health.upstream_serving,
            "reasons": list(health.reasons),
        }
        return web.json_response(body, status=200 if health.healthy else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """The exposition, built on the event loop: the gauges read the core's own state."""
        return web.Response(
            body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _ask(self) -> Health:
        """The check under way, shared by whoever asks meanwhile: it writes to the store, and
        a flood of requests from outside must cost one write at a time, not one each queued
        before the bot's own. Shielded: one asker hanging up must not end it for the rest."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self._check())
        return await asyncio.shield(self._checking)

    async def _check(self) -> Health:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                return await self._health.health()
        except TimeoutError:
            reason = f"the health check took longer than {HEALTH_TIMEOUT:g} s"
        except Exception as exc:
            log.exception("the health check failed")
            reason = f"the health check failed ({type(exc).__name__}): see the bot's log"
        return Health(store_writable=False, upstream_serving=False, reasons=(reason,))
