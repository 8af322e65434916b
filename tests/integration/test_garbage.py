"""What starting made lives as long as the process: the bot leaves it out of every later garbage
collection, whose full passes would otherwise walk it all with the event loop standing still
(35-60 ms, in the middle of a burst of answers: bench/README.md)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import app
from bot.core.models_table import ModelTable
from bot.core.service import Service
from bot.providers.flow import FlowClient
from bot.store import open_store
from bot.store.url import StoreUrl
from tests.conftest import FAST
from tests.fakes.flow_server import FakeFlowServer


class Cycle:
    def __init__(self) -> None:
        self.me = self


class Noting:
    """A front end that notes what the collector holds back when it starts, then returns."""

    PLATFORM = "telegram"

    def __init__(self, garbage: weakref.ref[Cycle]) -> None:
        self._garbage = garbage
        self.frozen = 0
        self.garbage_left = True

    async def run(self) -> None:
        self.frozen = gc.get_freeze_count()
        self.garbage_left = self._garbage() is not None


@pytest.fixture
def collector_by_hand() -> Iterator[None]:
    """No collection but the bot's own while the test runs, and none held back after it."""
    gc.unfreeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


@pytest.mark.usefixtures("collector_by_hand")
async def test_what_starting_made_is_held_back_from_later_collections_and_its_garbage_is_not(
    tmp_path: Path,
) -> None:
    cycle = Cycle()
    garbage = weakref.ref(cycle)
    del cycle  # garbage only a collection finds (a cycle)
    noting = Noting(garbage)
    async with (
        FakeFlowServer(accounts=["alice@example.com"]) as flow,
        FlowClient("test-token", flow.base_url) as client,
        open_store(StoreUrl.parse(f"sqlite:///{tmp_path}/bot.sqlite3")) as store,
    ):
        service = Service(store, [client], models=ModelTable.builtin(), tuning=FAST)
        await app._serve(service, [noting], may_end=True)
    assert noting.frozen > 0
    assert not noting.garbage_left
