"""The roads other than Flow as the integration and attack suites drive them: Wireflow's client
against its fake, polling quickly, and a process's public listener answering reference links."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bot import reference_links
from bot.providers.plumbing import Timeouts
from bot.providers.wireflow import Polling, WireflowClient
from bot.reference_links import ReferenceLinks
from tests.conftest import AnyStore
from tests.fakes.wireflow_server import DEFAULT_WORKFLOW, FakeWireflowServer

# Polls every 50 ms: the documented 1 s × 1.5 backoff is the client suite's to check.
QUICK_POLLS = Polling(first=0.05, factor=1.0, cap=0.05, timeout=30.0)


def wireflow_client(server: FakeWireflowServer) -> WireflowClient:
    return WireflowClient(
        server.api_key,
        DEFAULT_WORKFLOW,
        server.base_url,
        plan="pro",
        media_hosts=("127.0.0.1",),
        polling=QUICK_POLLS,
        timeouts=Timeouts(),
    )


LOCAL = ("127.0.0.1", 0)


@contextlib.asynccontextmanager
async def answering(store: AnyStore, api_key: str) -> AsyncIterator[str]:
    """One process's public listener answering links from ``store``: its address."""
    async with reference_links.serve(LOCAL, ReferenceLinks.keyed_by(api_key, ""), store) as port:
        yield f"http://127.0.0.1:{port}"
