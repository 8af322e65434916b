"""A process stops when it should (it lost the lead, a front end failed, SIGTERM), also when a
front end swallowed its cancellation: on Python 3.11 discord.py and python-telegram-bot wait
with ``asyncio.wait_for``, which may (CPython gh-86296), and the process must not hang."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from bot import app, retention
from bot.core import cancellation
from bot.core.models_table import ModelTable
from bot.core.ports import LeaseLost
from bot.core.service import Service
from bot.frontends.telegram.albums import KIND, Album, AlbumItem, Albums
from bot.providers.flow import FlowClient
from bot.store import open_store
from bot.store.url import StoreUrl
from tests.conftest import FAST
from tests.fakes.flow_server import FakeFlowServer


@pytest.fixture(autouse=True)
def _cancel_again_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cancellation, "CANCEL_AGAIN_AFTER", 0.01)


class LosableLease:
    """``Leadership`` that leads from the start until ``lose()``, as a lease the database
    ended."""

    def __init__(self) -> None:
        self._lost = asyncio.Event()

    async def try_lead(self) -> bool:
        return True

    async def lead(self) -> None:
        return None

    async def hold(
        self,
        added: Callable[[int, bool], None],
        ended: Callable[[int], None],
        told: Callable[[int], None],
    ) -> None:
        await self._lost.wait()
        raise LeaseLost("its session was ended")

    async def follow(self, ended: Callable[[int], None]) -> None:
        await asyncio.Event().wait()  # it leads from the start: it never follows

    def holds(self) -> bool:
        return not self._lost.is_set()

    def lose(self) -> None:
        self._lost.set()


class Stubborn:
    """A front end whose ``run()`` goes on after its first cancellation, as if it had never
    been cancelled; the second one stops it."""

    PLATFORM = "telegram"

    def __init__(self, swallow: str) -> None:
        self._swallow = swallow
        self.serving = asyncio.Event()
        self.swallowed = False
        self.stopped = asyncio.Event()
        self.released = asyncio.Event()  # the test's clean-up: a failed test leaves no task

    async def run(self) -> None:
        self.serving.set()
        try:
            if self._swallow == "explicitly":
                with contextlib.suppress(asyncio.CancelledError):  # as a library may, by mistake
                    await self.released.wait()
                self.swallowed = True
            else:
                await self._poll()
            await self.released.wait()  # serves on
        finally:
            self.stopped.set()

    async def _poll(self) -> None:
        """As the libraries poll: each wait has ended before ``wait_for`` resumes, so on 3.11
        a cancellation coming meanwhile is swallowed and wait_for returns its result."""
        this = asyncio.current_task()
        assert this is not None
        ready = asyncio.Event()
        ready.set()
        while not this.cancelling():
            await asyncio.wait_for(ready.wait(), 10)
        self.swallowed = True


class Failing:
    """A front end that fails once the other one serves."""

    PLATFORM = "discord"

    def __init__(self, after: asyncio.Event) -> None:
        self._after = after
        self.fail = asyncio.Event()

    async def run(self) -> None:
        await self._after.wait()
        await self.fail.wait()
        raise RuntimeError("the platform went away")


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Service, LosableLease]]:
    lease = LosableLease()
    async with (
        FakeFlowServer(accounts=["alice@example.com"]) as flow,
        FlowClient("test-token", flow.base_url) as client,
        open_store(StoreUrl.parse(f"sqlite:///{tmp_path}/bot.sqlite3")) as store,
    ):
        yield (
            Service(store, [client], models=ModelTable.builtin(), tuning=FAST, leadership=lease),
            lease,
        )


@pytest.mark.parametrize("swallow", ["explicitly", "in_wait_for"])
@pytest.mark.parametrize("stop", ["lost_lead", "front_end_failed", "sigterm"])
async def test_a_front_end_that_swallows_its_cancellation_is_stopped_all_the_same(
    service: tuple[Service, LosableLease],
    swallow: str,
    stop: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served, lease = service
    stubborn = Stubborn(swallow)
    failing = Failing(after=stubborn.serving)
    serving = asyncio.create_task(app._serve(served, [stubborn, failing]))
    try:
        async with asyncio.timeout(5):
            await stubborn.serving.wait()
        await asyncio.sleep(0.05)  # the service has started and the front end polls
        if stop == "lost_lead":
            lease.lose()
        elif stop == "front_end_failed":
            failing.fail.set()
        else:
            serving.cancel()  # what SIGTERM does to main
        await asyncio.wait([serving], timeout=5)
        assert serving.done(), "the process hangs: a front end swallowed its cancellation"
    finally:
        stubborn.released.set()
        await asyncio.wait([serving], timeout=5)
    assert stubborn.stopped.is_set()
    assert stubborn.swallowed == (swallow == "explicitly" or sys.version_info < (3, 12))
    assert ("still runs after its cancellation" in caplog.text) == stubborn.swallowed
    # Each stop ends as it did before: exit 1 for a lost lead, the failure for a failure (both
    # in the group the TaskGroup raises), CancelledError for SIGTERM.
    if stop == "sigterm":
        assert serving.cancelled()
        return
    ended = serving.exception()
    assert isinstance(ended, ExceptionGroup)
    [error] = ended.exceptions
    if stop == "lost_lead":
        assert isinstance(error, LeaseLost)
    else:
        assert isinstance(error, RuntimeError)
        assert str(error) == "the platform went away"


async def swallows_one_cancellation(started: asyncio.Event, stopped: asyncio.Event) -> None:
    """Waits on after its first cancellation, as if it had never come; the second stops it."""
    started.set()
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        await asyncio.Event().wait()
    finally:
        stopped.set()


async def test_a_telegram_album_whose_handling_swallowed_its_cancellation_stops_all_the_same(
    tmp_path: Path,
) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def handle(album: Album) -> None:
        await swallows_one_cancellation(started, stopped)

    item = AlbumItem(1, 5, private=True, file_id="f", file_size=10, caption="a fox")
    async with open_store(StoreUrl.parse(f"sqlite:///{tmp_path}/bot.sqlite3")) as store:
        await store.add_pending(KIND, "5:album", json.dumps(asdict(item)))
        albums = Albums(store, handle, wait=0)
        await albums.recover()
        async with asyncio.timeout(5):
            await started.wait()
        async with asyncio.timeout(5):
            await albums.close()
    assert stopped.is_set()


class SwallowingStore:
    """A store whose pruning swallows its first cancellation."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()

    async def prune(self, older_than: float, *, limit: int) -> int:
        await swallows_one_cancellation(self.started, self.stopped)
        return 0


async def test_pruning_that_swallowed_its_cancellation_stops_all_the_same() -> None:
    store = SwallowingStore()
    async with asyncio.timeout(5):
        async with retention.pruning(store, days=30):
            await store.started.wait()
    assert store.stopped.is_set()


class Quitting:
    """A front end whose ``run()`` returns on its own once ``quit`` is set (a platform library
    that stopped polling), or swallows its cancellation and returns (``swallow``)."""

    PLATFORM = "telegram"

    def __init__(self, *, swallow: bool = False) -> None:
        self._swallow = swallow
        self.serving = asyncio.Event()
        self.quit = asyncio.Event()

    async def run(self) -> None:
        self.serving.set()
        if self._swallow:
            with contextlib.suppress(asyncio.CancelledError):  # as a library may, by mistake
                await asyncio.Event().wait()
            return
        await self.quit.wait()


async def test_a_front_end_that_swallows_its_cancellation_and_returns_is_still_cancelled() -> None:
    quitting = Quitting(swallow=True)
    running = asyncio.create_task(app._run(quitting))
    async with asyncio.timeout(5):
        await quitting.serving.wait()
    running.cancel()
    await asyncio.wait([running], timeout=5)
    assert running.cancelled()  # not a normal return: whoever cancelled it sees it stop


async def test_a_front_end_that_stops_on_its_own_stops_the_bot_with_an_error(
    service: tuple[Service, LosableLease], caplog: pytest.LogCaptureFixture
) -> None:
    served, _ = service
    quitting = Quitting()
    other = Stubborn("explicitly")
    other.PLATFORM = "discord"
    serving = asyncio.create_task(app._serve(served, [quitting, other]))
    try:
        async with asyncio.timeout(5):
            await quitting.serving.wait()
            await other.serving.wait()
        quitting.quit.set()  # telegram stops serving while discord still runs
        await asyncio.wait([serving], timeout=5)
        assert serving.done(), "the bot serves on, half deaf"
    finally:
        other.released.set()
        await asyncio.wait([serving], timeout=5)
    ended = serving.exception()
    assert isinstance(ended, ExceptionGroup)
    [error] = ended.exceptions
    assert isinstance(error, app.FrontEndStopped)
    assert str(error) == "telegram stopped on its own while the bot ran: start the bot again"
    assert other.stopped.is_set()


def test_a_front_end_that_stopped_on_its_own_ends_the_process_with_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot import __main__ as cli

    async def stopped() -> None:
        raise ExceptionGroup("unhandled errors in a TaskGroup", [app.FrontEndStopped("telegram")])

    assert cli._run(stopped()) == 1
    assert capsys.readouterr().err == (
        "error: telegram stopped on its own while the bot ran: start the bot again\n"
    )
