"""A job is queued before its status message is sent (``status_book``): which of the status
message and the answer comes first, with the real python-telegram-bot against the fake Bot API.
Whatever the order, one answer, no status left saying "queued", two calls at most; and a
restarted process still finds a status message that went."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.frontends.telegram import board, status_book
from bot.frontends.telegram.status import UNDER_WAY, saying
from tests.e2e.telegram.harness import (
    TOKEN,
    USER,
    BotUnderTest,
    spend_the_chats_budget,
    text_of,
)
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import Call, FakeTelegramServer

ROOT = Path(__file__).resolve().parents[3]


def to_the_chat(tg: FakeTelegramServer, since: int = 0) -> list[Call]:
    return [c for c in tg.calls[since:] if c.params.get("chat_id") == USER]


async def test_an_answer_that_comes_before_its_status_message_is_the_only_message(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The chat's budget a message every 0.4 s, spent by three /start answers: the status
    # message waits for room, and the fake upstream answers in the meantime.
    since = await spend_the_chats_budget(bot)
    tg = bot.tg
    command = await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    await asyncio.sleep(1.5)  # the status message's turn has come and gone

    calls = to_the_chat(tg, since)
    assert [c.method for c in calls] == ["sendPhoto"]
    assert calls[0].params["reply_parameters"]["message_id"] == command["message"]["message_id"]
    assert await bot.store.peek_pending(status_book.KIND, "1") == []


async def test_an_answer_that_comes_while_its_status_message_is_on_its_way_takes_its_place(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    tg.delays = {"sendMessage": 0.5}  # the status message is with Telegram for half a second
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    await asyncio.sleep(0.3)

    calls = to_the_chat(tg)
    assert [c.method for c in calls] == ["sendMessage", "editMessageMedia"]
    assert text_of(calls[0]) == saying(UNDER_WAY)
    sent = tg.sent_messages(USER)
    assert len(sent) == 1
    assert calls[1].params["message_id"] == sent[0]["message_id"]
    assert "photo" in sent[0]


async def test_a_status_message_sent_before_a_restart_becomes_the_answer(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg, flow = bot.tg, bot.flow
    flow.hold()  # the job runs until the process is gone
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await tg.wait_for("sendMessage")
    await bot.parked(status_book.KIND)
    [queued] = tg.sent_messages(USER)
    await bot.restart()  # the memory is gone, the store keeps where the status message is
    flow.release()
    await bot.delivered(1)

    assert [c.method for c in to_the_chat(tg)] == ["sendMessage", "editMessageMedia"]
    [answer] = tg.sent_messages(USER)
    assert answer["message_id"] == queued["message_id"]
    assert "photo" in answer


# Killed with SIGKILL (``python -m bot`` as deployed, its store a SQLite file): a job queued
# before its status message went, and one whose status message went and was parked.
HOST_SETTINGS = ("USEAPI_", "TELEGRAM_", "DISCORD_", "BOT_", "DATABASE_", "GEMINI_", "NBPRO_")


async def bot_process(
    tg: FakeTelegramServer, flow: FakeFlowServer, tmp: Path, starts: int
) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(HOST_SETTINGS)}
    env.update(
        PYTHONPATH=str(ROOT),
        USEAPI_TOKEN="test-token",
        USEAPI_BASE_URL=flow.base_url,
        DATABASE_URL=f"sqlite:///{tmp / 'bot.sqlite3'}",
        TELEGRAM_TOKEN=TOKEN,
        TELEGRAM_API_URL=tg.root,
    )
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await tg.wait_for("deleteWebhook", count=starts, timeout=30)
    return bot


def parked_status(tmp: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(tmp / "bot.sqlite3")) as db:
        rows = db.execute("SELECT value FROM pending WHERE kind = ?", (status_book.KIND,))
        return [str(value) for (value,) in rows]


async def killed(bot: asyncio.subprocess.Process) -> None:
    if bot.returncode is None:
        bot.kill()
    await bot.wait()


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegramServer, FakeFlowServer]]:
    async with (
        FakeTelegramServer(token=TOKEN) as tg,
        FakeFlowServer(accounts=["alice@example.com"]) as flow,
    ):
        yield tg, flow


async def test_a_job_queued_before_a_kill_and_its_status_message_is_answered_anew(
    fakes: tuple[FakeTelegramServer, FakeFlowServer], tmp_path: Path
) -> None:
    tg, flow = fakes
    bot = await bot_process(tg, flow, tmp_path, starts=1)
    try:
        flow.hold()
        for _ in range(3):  # the chat's burst: the status message must wait two seconds
            await tg.post_message(USER, USER, "/start")
        await tg.wait_for("sendMessage", count=3)
        since = len(tg.calls)
        command = await tg.post_message(USER, USER, "/imagine a fox --count 1")
        async with asyncio.timeout(10):
            while not flow.held:  # noqa: ASYNC110 - queued, and running upstream
                await asyncio.sleep(0.01)
        await killed(bot)
        assert to_the_chat(tg, since) == []  # its status message had not gone

        bot = await bot_process(tg, flow, tmp_path, starts=2)
        flow.release()
        [answer] = await tg.wait_for("sendPhoto", timeout=30)
        await asyncio.sleep(1.5)  # nothing else comes
        assert [c.method for c in to_the_chat(tg, since)] == ["sendPhoto"]
        asked = command["message"]["message_id"]
        assert answer.params["reply_parameters"]["message_id"] == asked
    finally:
        await killed(bot)


async def test_a_status_message_parked_before_a_kill_becomes_the_answer(
    fakes: tuple[FakeTelegramServer, FakeFlowServer], tmp_path: Path
) -> None:
    tg, flow = fakes
    bot = await bot_process(tg, flow, tmp_path, starts=1)
    try:
        flow.hold()
        command = await tg.post_message(USER, USER, "/imagine a fox --count 1")
        [status] = await tg.wait_for("sendMessage", timeout=10)
        async with asyncio.timeout(10):
            while not parked_status(tmp_path):  # noqa: ASYNC110 - another process writes it
                await asyncio.sleep(0.01)
        await killed(bot)
        [queued] = tg.sent_messages(USER)
        assert queued["text"] == saying(UNDER_WAY)

        bot = await bot_process(tg, flow, tmp_path, starts=2)
        flow.release()
        [edit] = await tg.wait_for("editMessageMedia", timeout=30)
        await asyncio.sleep(1.5)
        assert [c.method for c in to_the_chat(tg)] == ["sendMessage", "editMessageMedia"]
        assert edit.params["message_id"] == queued["message_id"]
        [answer] = tg.sent_messages(USER)
        assert "photo" in answer
        asked = command["message"]["message_id"]
        assert status.params["reply_parameters"]["message_id"] == asked
    finally:
        await killed(bot)


def parked_boards(tmp: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(tmp / "bot.sqlite3")) as db:
        rows = db.execute("SELECT key FROM pending WHERE kind = ?", (board.KIND,))
        return [str(key) for (key,) in rows]


async def test_a_busy_chats_board_kept_through_a_kill_is_taken_up_and_goes_with_its_jobs(
    fakes: tuple[FakeTelegramServer, FakeFlowServer], tmp_path: Path
) -> None:
    tg, flow = fakes
    bot = await bot_process(tg, flow, tmp_path, starts=1)
    try:
        flow.hold()
        asked = [await tg.post_message(USER, USER, f"/imagine fox {n} --count 1") for n in range(3)]
        async with asyncio.timeout(10):
            while not parked_boards(tmp_path):  # noqa: ASYNC110 - another process writes it
                await asyncio.sleep(0.01)
        await killed(bot)
        [listing] = [m for m in tg.sent_messages(USER) if board.HEADING in m["text"]]
        assert "“fox 1”" in listing["text"]
        since = len(tg.calls)

        bot = await bot_process(tg, flow, tmp_path, starts=2)
        flow.release()

        def answered() -> list[int]:
            return [
                m["reply_to_message"]["message_id"]
                for m in tg.sent_messages(USER)
                if "photo" in m and "reply_to_message" in m
            ]

        async with asyncio.timeout(30):
            while len(answered()) < 3 or any(  # noqa: ASYNC110
                "photo" not in m for m in tg.sent_messages(USER)
            ):
                await asyncio.sleep(0.05)
        # Each command answered once; the board the first run left was taken up again (edited
        # or removed by the second run), and is gone with its jobs: nothing says "queued".
        assert sorted(answered()) == sorted(c["message"]["message_id"] for c in asked)
        board_id = listing["message_id"]
        assert [c for c in tg.calls[since:] if c.params.get("message_id") == board_id]
        assert tg.message(USER, board_id) is None
        # Unparked just after Telegram took the removal, by the bot's process: not yet, maybe.
        async with asyncio.timeout(5):
            while parked_boards(tmp_path):  # noqa: ASYNC110 - another process writes it
                await asyncio.sleep(0.01)
    finally:
        await killed(bot)


async def test_a_board_taken_up_after_a_kill_is_in_its_readers_language(
    fakes: tuple[FakeTelegramServer, FakeFlowServer], tmp_path: Path
) -> None:
    tg, flow = fakes
    tg.set_language(USER, "de")
    bot = await bot_process(tg, flow, tmp_path, starts=1)
    try:
        flow.hold()
        for n in range(3):
            await tg.post_message(USER, USER, f"/imagine fox {n} --count 1")
        async with asyncio.timeout(10):
            while not parked_boards(tmp_path):  # noqa: ASYNC110 - another process writes it
                await asyncio.sleep(0.01)
        await killed(bot)
        [listing] = [m for m in tg.sent_messages(USER) if "“fox 1”" in m["text"]]
        assert listing["text"].startswith("Aufträge in diesem Chat:")
        since = len(tg.calls)

        bot = await bot_process(tg, flow, tmp_path, starts=2)
        [taken_up] = await tg.wait_for(
            "editMessageText",
            predicate=lambda c: c.params.get("message_id") == listing["message_id"],
            timeout=30,
        )
        assert tg.calls.index(taken_up) >= since
        assert text_of(taken_up).startswith("Aufträge in diesem Chat:"), text_of(taken_up)
        assert "In der Warteschlange" in text_of(taken_up)
        flow.release()
        async with asyncio.timeout(30):
            while sum("photo" in m for m in tg.sent_messages(USER)) < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await killed(bot)
