"""``GET /healthz`` and ``GET /metrics`` on ``BOT_HTTP_LISTEN``, with aiohttp's web server.

``/healthz`` answers 200 when the store is writable and some road (a Flow account or another
provider) can serve, else 503; both as JSON with the reasons. A health source that fails or
takes longer than ``HEALTH_TIMEOUT`` is itself a reason. ``/metrics`` is the Prometheus text
exposition. Both name the upstream accounts' e-mails: this listener is for the operator's
machine, and serves nothing else (users' pictures have their own, ``bot.reference_links``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.core.monitoring import Health, HealthSource
from bot.listener import listening
from bot.observability.metrics import Metrics

HEALTH_TIMEOUT = 5.0  # seconds; Docker's HEALTHCHECK waits longer than this
log = logging.getLogger(__name__)


@asynccontextmanager
async def serve(
    listen: tuple[str, int], health: HealthSource, metrics: Metrics
) -> AsyncIterator[int]:
    """Serve until the block ends; yields the port (``listen``'s, or the one picked for 0)."""
    app = web.Application()
    app.router.add_get("/healthz", _Endpoints(health, metrics).healthz)
    app.router.add_get("/metrics", _Endpoints(health, metrics).metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    async with listening(runner, "BOT_HTTP_LISTEN", listen, "/healthz and /metrics") as port:
        yield port


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
