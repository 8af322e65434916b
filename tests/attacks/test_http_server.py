"""Attacks on the bot's HTTP listeners from outside: ``BOT_HTTP_LISTEN`` and
``BOT_PUBLIC_LISTEN``.

The public one faces the internet (a road fetches references from it), and ``/healthz``
answers anyone who reaches the private one. Each check writes to the store (and rolls back)
to know it is writable: a stranger asking a thousand times at once must not queue a thousand
writes ahead of the bot's own. And both run in the bot's process: a connection a stranger
opens and never finishes holds one of the file descriptors the bot needs for its chats, store
and upstreams."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from bot import listener, reference_links
from bot.core.monitoring import Health, Snapshot
from bot.observability import server
from bot.observability.metrics import Metrics
from bot.reference_links import ReferenceLinks


async def test_a_flood_of_health_checks_costs_one_store_write_at_a_time(
    make_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _told = await make_service()
    probe = service.store.probe_write
    writing = most = calls = 0

    async def counted() -> None:
        nonlocal writing, most, calls
        calls += 1
        writing += 1
        most = max(most, writing)
        try:
            await probe()
            await asyncio.sleep(0.05)  # a store under load
        finally:
            writing -= 1

    monkeypatch.setattr(service.store, "probe_write", counted)
    limits = httpx.Limits(max_connections=200)
    async with (
        server.serve(("127.0.0.1", 0), service, Metrics()) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http,
    ):
        answers = await asyncio.gather(*(http.get("/healthz", timeout=10) for _ in range(200)))
        assert {a.status_code for a in answers} == {200}
        assert most == 1
        assert calls <= 10
        # Asked again later, it checks again: a store that broke since is said at once.
        before = calls
        assert (await http.get("/healthz")).status_code == 200
        assert calls == before + 1


class Healthy:
    async def health(self) -> Health:
        return Health(store_writable=True, upstream_serving=True)

    def snapshot(self) -> Snapshot:
        return Snapshot()


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server hung up (its answer, if any, read to the end)."""
    await reader.read()
    return True


class NoPictures:
    async def picture(self, sha256: str) -> bytes | None:
        return None


def private() -> AbstractAsyncContextManager[int]:
    return server.serve(("127.0.0.1", 0), Healthy(), Metrics())


def public() -> AbstractAsyncContextManager[int]:
    return reference_links.serve(("127.0.0.1", 0), ReferenceLinks("", b"k" * 32), NoPictures())


@pytest.mark.parametrize(("listening", "path"), [(private, "/healthz"), (public, "/")])
async def test_connections_that_never_finish_a_request_are_bounded_and_cut(
    monkeypatch: pytest.MonkeyPatch,
    listening: Callable[[], AbstractAsyncContextManager[int]],
    path: str,
) -> None:
    monkeypatch.setattr(listener, "MAX_CONNECTIONS", 20)
    monkeypatch.setattr(listener, "CONNECTION_SECONDS", 3.0)
    async with listening() as port:
        slow = []
        for _ in range(30):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bot\r\n".encode())  # and never the end
            slow.append((reader, writer))
        hung_up = [asyncio.ensure_future(closed(reader)) for reader, _ in slow]
        # Those beyond the bound are hung up on at once,
        done, waiting = await asyncio.wait(hung_up, timeout=0.5)
        assert (len(done), len(waiting)) == (10, 20)
        # and the rest when their time is up: nothing stays open for ever.
        async with asyncio.timeout(10):
            await asyncio.gather(*waiting)
        for _, writer in slow:
            writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get(path)).status_code == (200 if listening is private else 404)
