"""Attacks on ``GET /healthz`` from outside.

With ``BOT_PUBLIC_URL`` the bot's HTTP server faces the internet (a road fetches references
from it), and ``/healthz`` answers anyone. Each check writes to the store (and rolls back) to
know it is writable: a stranger asking a thousand times at once must not queue a thousand
writes ahead of the bot's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bot.observability import server
from bot.observability.metrics import Metrics


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
