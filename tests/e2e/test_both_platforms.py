"""One process, both platforms, one queue: ``app.run_bot`` as ``python -m bot`` runs it.

Discord's fake needs discord.py patched in-process, so the real wiring runs in the test's loop
rather than in a subprocess; everything else is what an operator starts.
"""

from __future__ import annotations

import asyncio
import re
from functools import partial
from pathlib import Path

import pytest

from bot.core import history_texts, texts
from bot.frontends.telegram import frontend
from bot.frontends.telegram.frontend import TelegramFrontEnd
from bot.frontends.telegram.status import RESULT_HERE
from tests.e2e.discord.harness import on_original
from tests.e2e.telegram.harness import QUICK, text_of
from tests.e2e.whole_bot import DC_USER, TG_USER, answered_with_files, running
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import Call, FakeTelegramServer, Json


def queued(call: Call) -> bool:
    """A job's own status message."""
    return RESULT_HERE in str(call.params.get("text", ""))


async def test_a_discord_job_overtakes_a_telegram_backlog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Six commands at once in one chat: Telegram's pace of one a second isn't under test.
    monkeypatch.setattr(frontend, "TelegramFrontEnd", partial(TelegramFrontEnd, flood=QUICK))
    async with FakeFlowServer(latency=2.0) as flow:  # long enough that nothing finishes meanwhile
        env = {
            "USEAPI_TOKEN": "test-token",
            "USEAPI_BASE_URL": flow.base_url,
            # Three slots, and one user may fill them all: fairness is the queue's job.
            "BOT_ACCOUNT_MIN_CONCURRENCY": "3",
            "BOT_ACCOUNT_MAX_CONCURRENCY": "3",
            "BOT_RUNNING_PER_USER": "3",
        }
        async with running(env, tmp_path) as (tg, dc):
            for i in range(1, 7):
                await tg.post_message(TG_USER, TG_USER, f"/imagine tg {i} --count 1")
            # The first's status message, the five others on the chat's board.
            await tg.wait_for("sendMessage", predicate=queued)
            async with asyncio.timeout(5):
                while not any("“tg 6”" in text_of(c) for c in tg.calls):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            async with asyncio.timeout(5):  # three running, three waiting
                while len(flow.images_requests()) < 3:  # noqa: ASYNC110 — no event to wait on
                    await asyncio.sleep(0.01)
            assert len(flow.images_requests()) == 3

            await dc.slash_command("imagine", {"prompt": "dc 1 --count 1"}, user_id=DC_USER)
            await dc.wait_for(answered_with_files, timeout=10)
            async with asyncio.timeout(10):  # each its answer: in its status message's place
                while len(tg.calls_of("editMessageMedia") + tg.calls_of("sendPhoto")) < 6:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)

    order = [str((r.json or {})["prompt"]) for r in flow.images_requests()]
    # Round-robin: the first slot to free up goes to the Discord user, not to Telegram's 4th.
    assert order[3] == "dc 1", order
    assert sorted(order) == ["dc 1", *(f"tg {i}" for i in range(1, 7))]


async def test_a_telegram_job_is_shown_on_discord_after_link(tmp_path: Path) -> None:
    async with FakeFlowServer() as flow:
        env = {"USEAPI_TOKEN": "test-token", "USEAPI_BASE_URL": flow.base_url}
        async with running(env, tmp_path) as (tg, dc):
            await tg.post_message(TG_USER, TG_USER, "/imagine a fox --count 2 --model 2")
            # The status message becomes the album's keyboard message.
            [keyboard] = await tg.wait_for("editMessageText", predicate=with_keyboard, timeout=10)
            made = keyboard.params["reply_markup"]["inline_keyboard"][-1][0]["callback_data"]
            public_id = made.split(":")[1]
            photos = [
                tg.file_bytes(item["photo"][-1]["file_id"])
                for item in tg.sent_messages(TG_USER)
                if "photo" in item
            ]

            # Before the link, the Discord account can't see it.
            before = await dc.slash_command("show", {"job": public_id}, user_id=DC_USER)
            (refused,) = await dc.wait_for(f"/interactions/{before.id}/")
            assert refused.json["data"]["content"] == texts.failed(
                history_texts.no_such_job(public_id)
            )

            await tg.post_message(TG_USER, TG_USER, "/link")
            [offer] = await tg.wait_for("sendMessage", predicate=has_code)
            code = re.search(r"code: (\S+)", str(offer.params["text"]))
            assert code is not None
            link = await dc.slash_command("link", {"code": code[1]}, user_id=DC_USER)
            (linked,) = await dc.wait_for(f"/interactions/{link.id}/")
            assert "linked with your Telegram account" in linked.json["data"]["content"]

            show = await dc.slash_command("show", {"job": public_id}, user_id=DC_USER)
            await dc.wait_for(lambda c: answered_with_files(c) and show.token in c.path)
            shown = dc.original_message(show.id)
            assert shown is not None
            assert shown["content"].startswith(f"#{public_id} · nano-banana-2 · ")
            # Fetched from Telegram through its front end, byte for byte.
            assert [dc.attachment_bytes(int(a["id"])) for a in shown["attachments"]] == photos
            history = await dc.slash_command("history", {}, user_id=DC_USER)
            (listing,) = await dc.wait_for(f"/interactions/{history.id}/")
            assert f"#{public_id}" in listing.json["data"]["content"]
    assert len(flow.images_requests()) == 1


def with_keyboard(call: Call) -> bool:
    return "reply_markup" in call.params and call.params["chat_id"] == TG_USER


def has_code(call: Call) -> bool:
    return "link code" in str(call.params.get("text", ""))


async def test_telegram_jobs_cancelled_on_discord_say_so_in_their_telegram_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A linked person cancels their Telegram jobs from Discord's /queue: Discord says
    # "Cancelled.", and the Telegram chat says so too where each job was shown (its status
    # message, or its line on the chat's board): nothing there says "queued" for ever.
    monkeypatch.setattr(frontend, "TelegramFrontEnd", partial(TelegramFrontEnd, flood=QUICK))
    async with FakeFlowServer() as flow:
        env = {"USEAPI_TOKEN": "test-token", "USEAPI_BASE_URL": flow.base_url}
        async with running(env, tmp_path) as (tg, dc):
            await linked(tg, dc)
            flow.hold()
            asked = [
                await tg.post_message(TG_USER, TG_USER, f"/imagine fox {n} --count 1")
                for n in range(2)
            ]
            await tg.wait_for("sendMessage", predicate=queued, timeout=10)
            async with asyncio.timeout(5):  # the second on the chat's board
                while not any("“fox 1”" in text_of(c) for c in tg.calls):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            first = asked[0]["message"]["message_id"]
            [status] = [
                m
                for m in tg.sent_messages(TG_USER)
                if m.get("reply_to_message", {}).get("message_id") == first
            ]

            listing = await dc.slash_command("queue", {}, user_id=DC_USER)
            await dc.wait_for(f"/interactions/{listing.id}/")
            panel = dc.original_message(listing.id)
            assert panel is not None
            cancels = [b["custom_id"] for row in panel["components"] for b in row["components"]]
            assert len(cancels) == 2
            for custom_id in cancels:
                press = await dc.press_button(int(panel["id"]), custom_id, user_id=DC_USER)
                (update,) = await dc.wait_for(f"/interactions/{press.id}/")
                assert texts.CANCELLED in update.json["data"]["content"]
                panel = dc.original_message(listing.id) or panel

            said = texts.failed(history_texts.cancelled_on("discord"))

            def told() -> list[Json]:
                return [m for m in tg.sent_messages(TG_USER) if m.get("text") == said]

            async with asyncio.timeout(10):
                while len(told()) < 2:  # noqa: ASYNC110 - what the bot sends, as recorded
                    await asyncio.sleep(0.01)
            answers = {m["reply_to_message"]["message_id"] for m in told()}
            assert answers == {c["message"]["message_id"] for c in asked}
            assert tg.message(TG_USER, status["message_id"]) in told()  # its status message
            flow.release()
            await asyncio.sleep(0.5)
            waiting = [m.get("text", "") for m in tg.sent_messages(TG_USER)]
            assert not [t for t in waiting if "Queued" in t or RESULT_HERE in t]
            assert not [m for m in tg.sent_messages(TG_USER) if "photo" in m]


async def test_a_discord_job_cancelled_on_telegram_says_so_on_discord(tmp_path: Path) -> None:
    async with FakeFlowServer() as flow:
        env = {"USEAPI_TOKEN": "test-token", "USEAPI_BASE_URL": flow.base_url}
        async with running(env, tmp_path) as (tg, dc):
            await linked(tg, dc)
            flow.hold()
            asked = await dc.slash_command(
                "imagine", {"prompt": "a fox", "count": 1}, user_id=DC_USER
            )
            async with asyncio.timeout(5):  # under way upstream
                while not flow.images_requests():  # noqa: ASYNC110 - no event to wait on
                    await asyncio.sleep(0.01)

            await tg.post_message(TG_USER, TG_USER, "/queue")
            await tg.wait_for("sendMessage", predicate=lambda c: "reply_markup" in c.params)
            [panel] = [m for m in tg.sent_messages(TG_USER) if "reply_markup" in m]
            [[cancel]] = panel["reply_markup"]["inline_keyboard"]
            await tg.press_button(TG_USER, TG_USER, panel["message_id"], cancel["callback_data"])
            [answer] = await tg.wait_for("answerCallbackQuery")
            assert texts.CANCELLED in text_of(answer)

            said = texts.failed(history_texts.cancelled_on("telegram"))
            await dc.wait_for(on_original(asked, content=said), timeout=5)
            flow.release()


async def linked(tg: FakeTelegramServer, dc: FakeDiscordServer) -> None:
    """TG_USER and DC_USER become one person: /link on Telegram, its code on Discord."""
    await tg.post_message(TG_USER, TG_USER, "/link")
    [offer] = await tg.wait_for("sendMessage", predicate=has_code)
    code = re.search(r"code: (\S+)", str(offer.params["text"]))
    assert code is not None
    link = await dc.slash_command("link", {"code": code[1]}, user_id=DC_USER)
    await dc.wait_for(f"/interactions/{link.id}/")
