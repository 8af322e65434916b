"""Front ends split over processes: a process hears only the platforms in ``BOT_PLATFORMS``, yet
delivers answers to every platform it has a token for (the Bot API and Discord's REST need no
poller or gateway); Discord's shards spread over processes."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

from bot.config import Secret, Settings
from bot.core import history_texts, texts
from bot.core.domain import JobState
from bot.core.i18n import LANGUAGES
from bot.core.people import DISCORD, TELEGRAM, UserKey
from bot.core.service import Service
from bot.frontends.discord.frontend import DiscordFrontEnd
from bot.frontends.discord.views import ANSWERED_BELOW, ANSWERED_BY_DM
from bot.frontends.telegram import status_book
from bot.frontends.telegram.frontend import TelegramFrontEnd
from bot.frontends.telegram.status import RESULT_HERE
from bot.providers.flow import FlowClient
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.conftest import Sharing, build_service, wait_delivered
from tests.e2e.discord.harness import TOKEN as DISCORD_TOKEN
from tests.e2e.discord.harness import USER as DISCORD_USER
from tests.e2e.discord.harness import process
from tests.e2e.telegram.harness import QUICK, text_of
from tests.e2e.telegram.harness import TOKEN as TELEGRAM_TOKEN
from tests.e2e.telegram.harness import USER as TELEGRAM_USER
from tests.fakes.discord_server import UNKNOWN_INTERACTION, FakeDiscordServer, RestCall
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import FakeTelegramServer


@contextlib.asynccontextmanager
async def running(*runs: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Front ends running beside the test, cancelled (and awaited) at its end."""
    tasks = [asyncio.create_task(run) for run in runs]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_telegram_prompt_heard_by_one_process_is_answered_by_a_pure_worker(
    sharing: Sharing,
) -> None:
    async with FakeTelegramServer(token=TELEGRAM_TOKEN) as tg:
        tg.local_server = True
        worker, _, _ = await sharing()  # started first: it leads, so it runs and delivers
        front, _, store = await sharing()
        assert worker.leading
        assert not front.leading
        settings = Settings(
            useapi_token=Secret("test-token"),
            telegram_token=Secret(TELEGRAM_TOKEN),
            telegram_api_url=tg.root,
        )
        hears = TelegramFrontEnd(front, settings, store)
        delivers = TelegramFrontEnd(worker, settings, store, receive=False)
        async with running(hears.run(), delivers.run()):
            await tg.wait_for("deleteWebhook")  # the hearing one polls
            await tg.post_message(TELEGRAM_USER, TELEGRAM_USER, "/imagine a red fox --count 1")
            await wait_delivered(store, 1)
            await tg.wait_for("editMessageMedia")  # the status message became the picture
        # Only the hearing process registered its commands (once for everyone, once more with
        # /group for the groups' administrators; for the default language and each shipped one)
        # and polled.
        scopes = [c.params.get("scope", {}).get("type") for c in tg.calls_of("setMyCommands")]
        assert scopes == [None, "all_chat_administrators"] * (1 + len(LANGUAGES))
        assert len(tg.calls_of("deleteWebhook")) == 1


async def test_a_discord_worker_delivers_in_the_channel_without_a_gateway(
    flow: FakeFlowServer, tmp_path: Path
) -> None:
    async with FakeDiscordServer(token=DISCORD_TOKEN) as dc:
        with dc.patch_discord():
            flow.latency = 0.3
            db = tmp_path / "bot.sqlite3"
            async with process(dc, flow, db):
                inter = await dc.slash_command(
                    "imagine", {"prompt": "cut", "count": 1}, user_id=DISCORD_USER
                )
                await dc.wait_for(f"/interactions/{inter.id}/")  # answered with its place
                # Under way upstream (a job this quick shows no "generating" on the way).
                while not flow.images_requests():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            # The job was running when the hearing process ended; a worker that hears nobody
            # resumes it and posts the answer by REST alone.
            connections = len(dc.gateway_connections)
            settings = Settings(
                useapi_token=Secret("test-token"), discord_token=Secret(DISCORD_TOKEN)
            )
            async with SqliteStore(db) as store, FlowClient("test-token", flow.base_url) as up:
                service = build_service(store, up, admin=f"discord:{DISCORD_USER}")
                worker = DiscordFrontEnd(service, settings, store, receive=False)
                async with service, running(worker.run()):
                    await wait_delivered(store, 1)
            posts = [c for c in dc.calls if c.method == "POST" and "/channels/" in c.path]
            assert posts[-1].json["content"].startswith(f"<@{DISCORD_USER}> ")
            assert posts[-1].files
            assert len(dc.gateway_connections) == connections


async def test_discord_shards_spread_over_processes(tmp_path: Path) -> None:
    async with FakeDiscordServer(token=DISCORD_TOKEN) as dc:
        with dc.patch_discord():
            settings = Settings(
                useapi_token=Secret("test-token"),
                discord_token=Secret(DISCORD_TOKEN),
                discord_shards=(1,),  # of 0 and 1: the other process connects shard 0
                discord_shard_count=2,
            )
            async with FakeFlowServer() as flow, SqliteStore(tmp_path / "bot.sqlite3") as store:
                up = FlowClient("test-token", flow.base_url)
                service = build_service(store, up)
                front_end = DiscordFrontEnd(service, settings, store, guild_ready_timeout=0.05)
                async with service, running(front_end.run()):
                    await dc.wait_ready()
                await up.aclose()
            identified = [
                frame["d"]["shard"]
                for conn in dc.gateway_connections
                for frame in conn.received
                if frame.get("op") == 2
            ]
            assert identified == [[1, 2]]


async def test_a_telegram_job_cancelled_on_discord_in_a_follower_is_told_by_the_leader_at_once(
    sharing: Sharing, flow: FakeFlowServer
) -> None:
    # The follower that heard the cancel can't tell Telegram (only the leader delivers): the
    # leader hears of it (NOTIFY) and tells it on its status message at once, not at its next
    # sweep (each BOT_ACCOUNTS_REFRESH_SECONDS, 300 s here).
    async with (
        FakeTelegramServer(token=TELEGRAM_TOKEN) as tg,
        FakeDiscordServer(token=DISCORD_TOKEN) as dc,
    ):
        tg.local_server = True
        with dc.patch_discord():
            worker, _, _ = await sharing()
            front, _, store = await sharing()
            assert worker.leading
            settings = Settings(
                useapi_token=Secret("test-token"),
                telegram_token=Secret(TELEGRAM_TOKEN),
                telegram_api_url=tg.root,
                discord_token=Secret(DISCORD_TOKEN),
            )
            hearing = (
                TelegramFrontEnd(front, settings, store).run(),
                DiscordFrontEnd(front, settings, store, guild_ready_timeout=0.05).run(),
                TelegramFrontEnd(worker, settings, store, receive=False).run(),
            )
            async with running(*hearing):
                await tg.wait_for("deleteWebhook")
                await dc.wait_ready()
                await tg.post_message(TELEGRAM_USER, TELEGRAM_USER, "/link")
                [offer] = await tg.wait_for(
                    "sendMessage", predicate=lambda c: "link code" in str(c.params["text"])
                )
                code = re.search(r"code: (\S+)", str(offer.params["text"]))
                assert code is not None
                link = await dc.slash_command("link", {"code": code[1]}, user_id=DISCORD_USER)
                await dc.wait_for(f"/interactions/{link.id}/")

                flow.hold()
                await tg.post_message(TELEGRAM_USER, TELEGRAM_USER, "/imagine a fox --count 1")
                await tg.wait_for(
                    "sendMessage", predicate=lambda c: "Queued" in str(c.params["text"])
                )
                [status] = [m for m in tg.sent_messages(TELEGRAM_USER) if "Queued" in m["text"]]
                async with asyncio.timeout(5):  # where the leader finds it
                    while not await store.pending_keys(status_book.KIND, 0.0):  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                listing = await dc.slash_command("queue", {}, user_id=DISCORD_USER)
                await dc.wait_for(f"/interactions/{listing.id}/")
                panel = dc.original_message(listing.id)
                assert panel is not None
                [[cancel]] = [
                    [b["custom_id"] for b in r["components"]] for r in panel["components"]
                ]
                press = await dc.press_button(int(panel["id"]), cancel, user_id=DISCORD_USER)
                (update,) = await dc.wait_for(f"/interactions/{press.id}/")
                assert texts.CANCELLED in update.json["data"]["content"]

                said = texts.failed(history_texts.cancelled_on("discord"))
                [told] = await tg.wait_for(
                    "editMessageText", predicate=lambda c: c.params["text"] == said, timeout=5
                )
                assert told.params["message_id"] == status["message_id"]
                flow.release()


async def test_a_discord_prompt_heard_by_a_follower_too_late_is_not_made_upstream(
    sharing: Sharing, flow: FakeFlowServer
) -> None:
    # As in one process (tests/e2e/discord/test_bot.py): the user saw "did not respond" and may
    # ask again, so that job must not be paid for, nor counted against their day, as well.
    async with FakeDiscordServer(token=DISCORD_TOKEN) as dc:
        with dc.patch_discord():
            worker, _, _ = await sharing()
            front, _, store = await sharing()
            assert worker.leading
            settings = Settings(
                useapi_token=Secret("test-token"), discord_token=Secret(DISCORD_TOKEN)
            )

            async def in_no_hurry(call: RestCall) -> None:
                if call.path.endswith("/callback"):  # the 404 comes when the job could have run
                    with contextlib.suppress(TimeoutError):
                        await until(lambda: bool(flow.images_requests()), 1.0)

            hearing = (
                DiscordFrontEnd(front, settings, store, guild_ready_timeout=0.05).run(),
                DiscordFrontEnd(worker, settings, store, receive=False).run(),
            )
            async with running(*hearing):
                await dc.wait_ready()
                flow.hold()
                dc.before_answer = in_no_hurry
                dc.fail_next(
                    "POST", r"^/interactions/\d+/[^/]+/callback$", 404, body=UNKNOWN_INTERACTION
                )
                late = await dc.slash_command(
                    "imagine", {"prompt": "too late", "count": 1}, user_id=DISCORD_USER
                )
                await dc.wait_for(f"/interactions/{late.id}/")
                async with asyncio.timeout(5):
                    while (job := await store.get_job(1)) is None or not job.state.final:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                flow.release()
                assert job.state is JobState.CANCELLED
                assert not flow.images_requests()


async def test_a_cancel_taken_by_a_follower_takes_its_line_off_the_leaders_board(
    sharing: Sharing, flow: FakeFlowServer
) -> None:
    # A busy chat's board is the leader's (only it lists); a ✖ heard by another process (a
    # webhook behind a balancer) is said there, and the leader drops the job's line: nothing
    # in the chat says "queued" for ever once the others are answered.
    async with FakeTelegramServer(token=TELEGRAM_TOKEN) as tg:
        tg.local_server = True
        leader, _, store = await sharing()
        follower, _, _ = await sharing()
        settings = Settings(
            useapi_token=Secret("test-token"),
            telegram_token=Secret(TELEGRAM_TOKEN),
            telegram_api_url=tg.root,
        )
        async with running(TelegramFrontEnd(leader, settings, store, flood=QUICK).run()):
            await tg.wait_for("deleteWebhook")
            flow.hold()
            for n in range(3):  # each acknowledged before the next: the order is theirs
                await tg.post_message(TELEGRAM_USER, TELEGRAM_USER, f"/imagine fox {n} --count 1")
                shown = f"“fox {n}”" if n else RESULT_HERE  # the first has a status message
                await until(partial(is_said, tg, shown), 5)
            await follower.cancel(UserKey(TELEGRAM, str(TELEGRAM_USER)), 2)  # fox 1's job
            flow.release()
            for job_id in (1, 3):
                await wait_delivered(store, job_id)
            await until(lambda: not [t for t in shown_now(tg) if waiting(t)], 5)
            assert not [t for t in shown_now(tg) if "fox 1" in t]


@contextlib.asynccontextmanager
async def discord_heard_by_a_follower(
    sharing: Sharing,
) -> AsyncIterator[tuple[FakeDiscordServer, Service, PostgresStore]]:
    """deploy/compose.postgres.yaml when a worker took the lead first (at start, or after
    "front" restarted): the one process that hears Discord does not lead. The fake Discord, the
    leader, the store."""
    async with FakeDiscordServer(token=DISCORD_TOKEN) as dc:
        with dc.patch_discord():
            worker, _, _ = await sharing()
            front, _, store = await sharing()
            assert worker.leading
            settings = Settings(
                useapi_token=Secret("test-token"), discord_token=Secret(DISCORD_TOKEN)
            )
            hearing = (
                DiscordFrontEnd(front, settings, store, guild_ready_timeout=0.05).run(),
                DiscordFrontEnd(worker, settings, store, receive=False).run(),
            )
            async with running(*hearing):
                await dc.wait_ready()
                await until(lambda: front.snapshot().platforms.get("discord", False), 5)
                yield dc, worker, store


async def test_a_discord_prompt_heard_by_a_follower_leaves_no_queued_response_behind(
    sharing: Sharing,
) -> None:
    async with discord_heard_by_a_follower(sharing) as (dc, _, store):
        inter = await dc.slash_command(
            "imagine", {"prompt": "a fox", "count": 1}, user_id=DISCORD_USER
        )
        await dc.wait_for(f"/interactions/{inter.id}/")  # "⏳ Queued."
        await wait_delivered(store, 1)  # the picture, posted in the channel by the leader
        # The follower hears it (NOTIFY) and edits its response into where the answer went.
        await until(lambda: "Queued" not in response_of(dc, inter.id), 5)
        assert response_of(dc, inter.id) == ANSWERED_BELOW
    [answer] = [c for c in dc.calls if c.method == "POST" and "/channels/" in c.path]
    assert answer.json["content"].startswith(f"<@{DISCORD_USER}> ")
    assert answer.files


async def test_a_discord_prompt_heard_by_a_follower_where_the_bot_cannot_post_points_to_the_dm(
    sharing: Sharing,
) -> None:
    async with discord_heard_by_a_follower(sharing) as (dc, _, store):
        dc.channel_permissions[dc.channel_id] = 0  # the leader can't post in the channel
        inter = await dc.slash_command(
            "imagine", {"prompt": "a fox", "count": 1}, user_id=DISCORD_USER
        )
        await dc.wait_for(f"/interactions/{inter.id}/")  # "⏳ Queued."
        await wait_delivered(store, 1)
        await until(lambda: "Queued" not in response_of(dc, inter.id), 5)
        assert response_of(dc, inter.id) == ANSWERED_BY_DM
    dm = dc.dm_channel_id(DISCORD_USER)
    [answer] = [c for c in dc.calls if c.method == "POST" and "/channels/" in c.path]
    assert answer.path == f"/channels/{dm}/messages"
    assert answer.files


async def test_a_discord_prompt_heard_by_a_follower_and_cancelled_by_the_leader_says_so(
    sharing: Sharing, flow: FakeFlowServer
) -> None:
    async with discord_heard_by_a_follower(sharing) as (dc, leader, _):
        flow.hold()
        inter = await dc.slash_command(
            "imagine", {"prompt": "a fox", "count": 1}, user_id=DISCORD_USER
        )
        await dc.wait_for(f"/interactions/{inter.id}/")  # "⏳ Queued."
        await leader.cancel(UserKey(DISCORD, str(DISCORD_USER)), 1)  # said where it was taken
        await until(lambda: "Queued" not in response_of(dc, inter.id), 5)
        assert response_of(dc, inter.id) == texts.CANCELLED_STATUS
        flow.release()
    assert not [c for c in dc.calls if c.method == "POST" and "/channels/" in c.path]


def response_of(dc: FakeDiscordServer, interaction_id: int) -> str:
    """What an interaction's first response says now."""
    first = dc.original_message(interaction_id)
    assert first is not None  # edited, not deleted: the command stays attached to it
    return str(first["content"])


def waiting(text: str) -> bool:
    """A message saying a job waits: its status message, or a line saying it is queued."""
    return "Queued" in text or RESULT_HERE in text


def said(tg: FakeTelegramServer) -> list[str]:
    """The texts the bot sent or edited in the user's chat, in order."""
    return [text_of(c) for c in tg.calls if c.params.get("chat_id") == TELEGRAM_USER]


def is_said(tg: FakeTelegramServer, text: str) -> bool:
    return any(text in told for told in said(tg))


def shown_now(tg: FakeTelegramServer) -> list[str]:
    """The texts of the bot's messages in the user's chat, as they read now."""
    return [str(m.get("text", "")) for m in tg.sent_messages(TELEGRAM_USER)]


async def until(condition: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - what the bot sends, as the fake records it
            await asyncio.sleep(0.01)
