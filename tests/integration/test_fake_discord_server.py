"""Self-tests of FakeDiscordServer, driven by the real discord.py 2.7 client.

Each test runs a real ``discord.Client`` with an ``app_commands.CommandTree`` against the
fake's REST API and gateway, so what passes here is what discord.py itself accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands

from tests.fakes.discord_server import FakeDiscordServer, RateLimits

APP_ID = 1111
BOT_ID = 2222
USER_ID = 4444
TOKEN = "fake-token"

# A 1x1 PNG: real image bytes, so the fake reports width/height like Discord does.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d00000000"
    "49454e44ae426082"
)


class ImageButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"t:(?P<job>[0-9]+):(?P<i>[0-9])",
):
    """A restart-proof button: everything it needs is in its custom_id."""

    def __init__(self, job: int, i: int) -> None:
        super().__init__(discord.ui.Button(label=f"U{i}", custom_id=f"t:{job}:{i}"))
        self.job = job
        self.i = i

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> ImageButton:
        return cls(int(match["job"]), int(match["i"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        assert isinstance(client, ImageBot)
        client.outcomes.put_nowait(("click", self.job, self.i))
        await interaction.response.send_message(f"upscale {self.job}:{self.i}", ephemeral=True)


class PromptModal(discord.ui.Modal, title="Edit prompt"):
    """Classic layout: the text input is wrapped in an action row (type 1)."""

    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="Prompt", custom_id="prompt"
    )

    def __init__(self) -> None:
        super().__init__(custom_id="prompt-modal")

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message(f"new prompt: {self.prompt.value}")


class LabelModal(discord.ui.Modal, title="Seed"):
    """New layout: the text input sits in a Label (type 18)."""

    def __init__(self) -> None:
        super().__init__(custom_id="seed-modal")
        self.seed: discord.ui.TextInput[LabelModal] = discord.ui.TextInput(custom_id="seed")
        self.add_item(discord.ui.Label(text="Seed", component=self.seed))

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message(f"seed: {self.seed.value}")


class ImageBot(discord.Client):
    """A miniature of the real adapter: defer, read references, edit with file + buttons."""

    def __init__(self) -> None:
        # guild_ready_timeout: discord.py waits this long after the last GUILD_CREATE
        # before on_ready (2 s by default); tests do not need to wait that long.
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.outcomes: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.gate = asyncio.Event()
        self.gate.set()
        self._register_commands()

    async def setup_hook(self) -> None:
        # Registered before the gateway connects, so buttons work right after a restart.
        self.add_dynamic_items(ImageButton)

    def _register_commands(self) -> None:
        @self.tree.command(name="imagine", description="Generate an image")
        async def imagine(
            interaction: discord.Interaction[Any],
            prompt: str,
            image1: discord.Attachment | None = None,
        ) -> None:
            await interaction.response.defer(thinking=True)
            reference = await image1.read() if image1 is not None else b""
            await self.gate.wait()
            view = discord.ui.View(timeout=None)
            view.add_item(ImageButton(42, 1))
            try:
                msg = await interaction.edit_original_response(
                    content=f"**{prompt}**",
                    attachments=[discord.File(io.BytesIO(PNG), "result.png")],
                    view=view,
                )
            except discord.HTTPException as exc:
                self.outcomes.put_nowait(("error", exc))
            else:
                self.outcomes.put_nowait(("edited", reference, msg))

        @self.tree.command(name="slow", description="Waits before acknowledging")
        async def slow(interaction: discord.Interaction[Any]) -> None:
            await self.gate.wait()
            try:
                await interaction.response.defer()
            except discord.HTTPException as exc:
                self.outcomes.put_nowait(("error", exc))

        @self.tree.command(name="multi", description="Reply, follow up, read back")
        async def multi(interaction: discord.Interaction[Any]) -> None:
            await interaction.response.send_message("first")
            follow = await interaction.followup.send("second", wait=True)
            original = await interaction.original_response()
            await follow.delete()
            self.outcomes.put_nowait(("multi", original.content, follow.content))

        @self.tree.command(name="prompt", description="Edit a prompt")
        async def prompt(interaction: discord.Interaction[Any]) -> None:
            await interaction.response.send_modal(PromptModal())

        @self.tree.command(name="seed", description="Pick a seed")
        async def seed(interaction: discord.Interaction[Any]) -> None:
            await interaction.response.send_modal(LabelModal())

        async def use_as_reference(
            interaction: discord.Interaction[Any], message: discord.Message
        ) -> None:
            data = await message.attachments[0].read()
            self.outcomes.put_nowait(("reference", data))
            await interaction.response.send_message(f"{len(data)} bytes", ephemeral=True)

        self.tree.add_command(
            app_commands.ContextMenu(name="Use as reference", callback=use_as_reference)
        )


def _discord_tasks() -> list[asyncio.Task[Any]]:
    """Unfinished tasks whose coroutine lives in the discord package."""
    leftovers = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and "/discord/" in code.co_filename:
            leftovers.append(task)
    return leftovers


@contextlib.asynccontextmanager
async def running(dc: FakeDiscordServer, client: ImageBot) -> AsyncIterator[ImageBot]:
    """Start a client, wait until READY reached it, and close it cleanly afterwards."""
    task = asyncio.create_task(client.start(TOKEN))
    ready = asyncio.create_task(dc.wait_ready())
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # login/connect failed: raise it here
    await ready
    await asyncio.wait_for(client.wait_until_ready(), 5)
    try:
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, 5)
        await asyncio.sleep(0)  # let finished tasks settle before checking
        assert _discord_tasks() == []


async def outcome(client: ImageBot) -> tuple[Any, ...]:
    return await asyncio.wait_for(client.outcomes.get(), 5)


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscordServer]:
    async with FakeDiscordServer(application_id=APP_ID, bot_user_id=BOT_ID, token=TOKEN) as fake:
        with fake.patch_discord():
            yield fake


async def test_patch_points_discord_at_the_fake_and_restores() -> None:
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscordServer() as fake:
        with fake.patch_discord():
            assert fake.api_base == discord.http.Route.BASE
            assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
        assert base == discord.http.Route.BASE
        assert gateway == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


async def test_login_ready_and_gateway_wire(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        assert client.user is not None
        assert client.user.id == BOT_ID
        assert client.application_id == APP_ID
        guild = client.get_guild(dc.guild_id)
        assert guild is not None
        assert guild.me is not None
        channel = client.get_channel(dc.channel_id)
        assert isinstance(channel, discord.TextChannel)
        assert channel.permissions_for(guild.me).attach_files
    assert [c.path for c in dc.calls[:2]] == ["/users/@me", "/oauth2/applications/@me"]
    assert all(c.headers["Authorization"] == f"Bot {TOKEN}" for c in dc.calls[:2])
    conn = dc.gateway_connections[0]
    # discord.py asks for zlib-stream but happily reads the fake's plain TEXT frames.
    assert conn.query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    assert [f["op"] for f in conn.received[:2]] == [1, 2]  # heartbeat on HELLO, then IDENTIFY
    assert conn.received[1]["d"]["intents"] == discord.Intents.default().value
    # HELLO, ACK of that first heartbeat, then READY (s=1) and GUILD_CREATE (s=2).
    assert [(f["op"], f["s"], f["t"]) for f in conn.sent[:4]] == [
        (10, None, None),
        (11, None, None),
        (0, 1, "READY"),
        (0, 2, "GUILD_CREATE"),
    ]
    # Client.close() asks for 1000, but aiohttp first wakes discord.py's reader, which
    # closes with 4000 (resumable) - so that is what Discord (and the fake) sees.
    assert conn.close_code == 4000


async def test_rest_requires_bot_auth_and_answers_exact_json(dc: FakeDiscordServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(dc.api_base + "/users/@me") as resp:
            assert resp.status == 401
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["code"] == 0
        headers = {"Authorization": f"Bot {TOKEN}"}
        async with session.get(dc.api_base + "/users/@me", headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"


async def test_tree_sync_puts_commands(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        synced = await client.tree.sync()
        guild_synced = await client.tree.sync(guild=discord.Object(dc.guild_id))
    assert dc.sync_count == 2
    assert {c.name for c in synced} == {
        "imagine",
        "slow",
        "multi",
        "prompt",
        "seed",
        "Use as reference",
    }
    assert guild_synced == []
    imagine = next(c for c in dc.commands() if c["name"] == "imagine")
    assert [(o["name"], o["type"], o.get("required", False)) for o in imagine["options"]] == [
        ("prompt", 3, True),
        ("image1", 11, False),
    ]
    assert next(c for c in synced if c.name == "imagine").id == int(imagine["id"])


async def test_slash_command_defer_then_edit_with_file_and_button(dc: FakeDiscordServer) -> None:
    reference = PNG + b"reference"
    async with running(dc, ImageBot()) as client:
        await client.tree.sync()
        inter = await dc.slash_command(
            "imagine",
            {"prompt": "a cat"},
            user_id=USER_ID,
            attachments={"image1": ("ref.png", reference, "image/png")},
        )
        kind, read_back, msg = await outcome(client)
    assert kind == "edited"
    assert read_back == reference  # downloaded from the fake CDN by Attachment.read()
    assert isinstance(msg, discord.InteractionMessage)
    assert msg.attachments[0].filename == "result.png"
    callback, edit = dc.interaction_responses(inter.id)
    assert callback.path.endswith("/callback")
    assert callback.json["type"] == 5
    assert callback.query == {"with_response": "1"}
    assert edit.method == "PATCH"
    assert edit.path.endswith("/messages/@original")
    assert edit.files == {"result.png": PNG}
    button = edit.json["components"][0]["components"][0]
    assert button["custom_id"] == "t:42:1"
    original = dc.original_message(inter.id)
    assert original is not None
    assert original["content"] == "**a cat**"
    assert original["flags"] & 128 == 0  # no longer "thinking"
    assert original["attachments"][0]["width"] == 1
    assert original in dc.channel_messages(dc.channel_id)


async def test_dynamic_button_works_on_a_restarted_client(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as first:
        inter = await dc.slash_command("imagine", {"prompt": "a dog"}, user_id=USER_ID)
        assert (await outcome(first))[0] == "edited"
    original = dc.original_message(inter.id)
    assert original is not None

    async with running(dc, ImageBot()) as second:  # a new process, no views in memory
        click = await dc.press_button(int(original["id"]), "t:42:1", user_id=USER_ID)
        assert await outcome(second) == ("click", 42, 1)
        (answer,) = await dc.wait_for(f"/interactions/{click.id}/")
    assert answer.json["type"] == 4
    assert answer.json["data"]["content"] == "upscale 42:1"
    assert answer.json["data"]["flags"] == 64


async def test_modal_submit_reaches_modal_both_layouts(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()):
        for command, field, value, layout, expected in [
            ("prompt", "prompt", "a red fox", 1, "new prompt: a red fox"),  # action row
            ("seed", "seed", "1234", 18, "seed: 1234"),  # label
        ]:
            opener = await dc.slash_command(command, {}, user_id=USER_ID)
            await dc.wait_for(f"/interactions/{opener.id}/")
            modal = dc.opened_modal(opener.id)
            submit = await dc.submit_modal(modal["custom_id"], {field: value}, user_id=USER_ID)
            # The submission mirrors the layout the bot opened, as Discord does.
            assert submit.payload["data"]["components"][0]["type"] == layout
            (answer,) = await dc.wait_for(f"/interactions/{submit.id}/")
            assert answer.json["data"]["content"] == expected
        with pytest.raises(ValueError, match="no inputs named"):
            await dc.submit_modal("seed-modal", {"typo": "x"}, user_id=USER_ID)


async def test_message_context_menu_reads_target_attachment(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        posted = await dc.user_message(
            dc.channel_id, USER_ID, "look", attachments=[("photo.png", PNG, "image/png")]
        )
        inter = await dc.message_context_menu(
            "Use as reference", int(posted["id"]), user_id=USER_ID
        )
        assert await outcome(client) == ("reference", PNG)
        (answer,) = await dc.wait_for(f"/interactions/{inter.id}/")
    assert answer.json["data"]["content"] == f"{len(PNG)} bytes"


async def test_expired_token_fails_the_edit_with_401(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        client.gate.clear()
        inter = await dc.slash_command("imagine", {"prompt": "late"}, user_id=USER_ID)
        await dc.wait_for(f"/interactions/{inter.id}/")  # deferred in time
        dc.expire_token(inter.token)  # ... but the job outlived the 15 minutes
        client.gate.set()
        kind, exc = await outcome(client)
    assert kind == "error"
    assert isinstance(exc, discord.HTTPException)
    assert (exc.status, exc.code) == (401, 50027)


async def test_unknown_interaction_and_double_acknowledge(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        client.gate.clear()
        late = await dc.slash_command("slow", {}, user_id=USER_ID)
        dc.expire_interaction(late.id)  # the 3 s window passed before the bot answered
        client.gate.set()
        kind, exc = await outcome(client)
        assert kind == "error"
        assert isinstance(exc, discord.NotFound)
        assert exc.code == 10062

        ok = await dc.slash_command("slow", {}, user_id=USER_ID)
        await dc.wait_for(f"/interactions/{ok.id}/")
        async with aiohttp.ClientSession() as session:
            url = f"{dc.api_base}/interactions/{ok.id}/{ok.token}/callback"
            async with session.post(url, json={"type": 5}) as resp:
                assert resp.status == 400
                assert (await resp.json())["code"] == 40060


async def test_an_interaction_acknowledged_after_its_window_is_unknown(
    dc: FakeDiscordServer,
) -> None:
    dc.ack_window = 0.2  # Discord's 3 s, shortened
    async with running(dc, ImageBot()) as client:
        client.gate.clear()
        late = await dc.slash_command("slow", {}, user_id=USER_ID)
        await asyncio.sleep(0.3)
        client.gate.set()
        kind, exc = await outcome(client)
        assert kind == "error"
        assert isinstance(exc, discord.NotFound)
        assert exc.code == 10062
        assert dc.late_callbacks == [late.id]

        in_time = await dc.slash_command("slow", {}, user_id=USER_ID)
        [callback] = await dc.wait_for(f"/interactions/{in_time.id}/")
        assert callback.status == 200
        assert dc.late_callbacks == [late.id]


async def test_429_is_retried_by_discord_py(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        channel = client.get_channel(dc.channel_id)
        assert isinstance(channel, discord.TextChannel)
        dc.fail_next("POST", r"^/channels/\d+/messages$", 429, retry_after=0.05)
        msg = await channel.send("hello", file=discord.File(io.BytesIO(PNG), "a.png"))
    posts = [c for c in dc.calls if c.path == f"/channels/{dc.channel_id}/messages"]
    assert [c.status for c in posts] == [429, 200]
    assert posts[1].files == {"a.png": PNG}
    assert msg.content == "hello"
    stored = dc.channel_messages(dc.channel_id)[-1]
    assert dc.attachment_bytes(int(stored["attachments"][0]["id"])) == PNG


class Clock:
    """A clock the test moves by hand, so rate limits are checked without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limits_per_channel_route_with_discords_headers(dc: FakeDiscordServer) -> None:
    clock = Clock()
    dc.rate_limits = RateLimits(clock=clock)
    url = f"{dc.api_base}/channels/{dc.channel_id}/messages"
    dm_url = f"{dc.api_base}/channels/{dc.dm_channel_id(USER_ID)}/messages"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {TOKEN}"}) as session:
        remaining = []
        for i in range(5):  # 5 messages per 5 s in a channel
            async with session.post(url, json={"content": f"m{i}"}) as resp:
                assert resp.status == 200
                assert resp.headers["X-RateLimit-Limit"] == "5"
                remaining.append(resp.headers["X-RateLimit-Remaining"])
        assert remaining == ["4", "3", "2", "1", "0"]
        async with session.post(url, json={"content": "sixth"}) as resp:
            assert resp.status == 429
            assert await resp.json() == {
                "message": "You are being rate limited.",
                "retry_after": 5.0,
                "global": False,
            }
            assert resp.headers["Via"]  # discord.py retries only a 429 that came through Discord
            assert resp.headers["X-RateLimit-Scope"] == "user"
        async with session.post(dm_url, json={"content": "elsewhere"}) as resp:
            assert resp.status == 200  # another channel has its own bucket
        clock.now += 5.0
        async with session.post(url, json={"content": "later"}) as resp:
            assert resp.status == 200


async def test_interaction_webhooks_have_their_own_limit_outside_the_global_one(
    dc: FakeDiscordServer,
) -> None:
    async with running(dc, ImageBot()):
        first = await dc.slash_command("slow", {}, user_id=USER_ID)
        second = await dc.slash_command("slow", {}, user_id=USER_ID)
        await dc.wait_for("/callback", count=2)  # both deferred
        clock = Clock()
        dc.rate_limits = RateLimits(global_per_second=1, clock=clock)
        auth = {"Authorization": f"Bot {TOKEN}"}

        async def edit(token: str, session: aiohttp.ClientSession) -> int:
            url = f"{dc.api_base}/webhooks/{APP_ID}/{token}/messages/@original"
            async with session.patch(url, json={"content": "progress"}) as resp:
                return resp.status

        async with aiohttp.ClientSession() as session:
            async with session.get(dc.api_base + "/users/@me", headers=auth) as resp:
                assert resp.status == 200
            async with session.get(dc.api_base + "/users/@me", headers=auth) as resp:
                assert resp.status == 429
                assert (await resp.json())["global"] is True
                assert resp.headers["X-RateLimit-Global"] == "true"
            # The bot is over its global limit, yet its interaction responses still go:
            assert [await edit(first.token, session) for _ in range(6)] == [200] * 5 + [429]
            assert await edit(second.token, session) == 200  # each token has its own bucket
            clock.now += 2.0  # 5 per 2 s
            assert await edit(first.token, session) == 200


async def test_discord_py_waits_for_a_bucket_it_emptied(dc: FakeDiscordServer) -> None:
    dc.rate_limits = RateLimits(channel_messages=(2, 0.5))
    async with running(dc, ImageBot()) as client:
        channel = client.get_channel(dc.channel_id)
        assert isinstance(channel, discord.TextChannel)
        for i in range(3):
            await channel.send(f"m{i}")
    posts = [c for c in dc.calls if c.path == f"/channels/{dc.channel_id}/messages"]
    # The headers told discord.py the bucket was empty: it waited instead of meeting a 429.
    assert [c.status for c in posts] == [200, 200, 200]
    assert posts[2].at - posts[0].at >= 0.4


async def test_faults_map_to_discord_exceptions(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        channel = client.get_channel(dc.channel_id)
        assert isinstance(channel, discord.TextChannel)
        dc.fail_next("POST", r"/messages$", 403)
        with pytest.raises(discord.Forbidden) as forbidden:
            await channel.send("nope")
        assert forbidden.value.code == 50013

        dc.upload_limit = 16  # Discord answers 413/40005 for a file over the limit
        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send(file=discord.File(io.BytesIO(PNG), "big.png"))
        assert (too_big.value.status, too_big.value.code) == (413, 40005)

        with pytest.raises(discord.HTTPException) as empty:
            await channel.send(content="x" * 2001)
        assert empty.value.code == 50035


async def test_gateway_resume_after_reconnect_request(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        await dc.request_reconnect()
        resumed = dc.gateway_connections[-1]
        assert resumed.path == "/resume-gateway"
        assert resumed.resumed
        assert resumed.received[-1]["op"] in (1, 6)
        inter = await dc.slash_command("imagine", {"prompt": "after resume"}, user_id=USER_ID)
        assert (await outcome(client))[0] == "edited"
        assert dc.original_message(inter.id) is not None
    assert len(dc.gateway_connections) == 2


async def test_dm_slash_command_and_dm_channel(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        inter = await dc.slash_command("imagine", {"prompt": "dm"}, user_id=USER_ID, guild=False)
        assert (await outcome(client))[0] == "edited"
        assert "user" in inter.payload
        assert "guild_id" not in inter.payload
        user = await client.fetch_user(USER_ID)
        dm = await user.create_dm()
        assert dm.id == dc.dm_channel_id(USER_ID)
        await dm.send("hi in DM")
    assert [m["content"] for m in dc.channel_messages(dc.dm_channel_id(USER_ID))] == [
        "**dm**",
        "hi in DM",
    ]


async def test_reply_followup_original_and_delete(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:
        inter = await dc.slash_command("multi", {}, user_id=USER_ID)
        assert await outcome(client) == ("multi", "first", "second")
    calls = dc.interaction_responses(inter.id)
    assert [(c.method, c.path.rsplit("/", 1)[-1], c.status) for c in calls] == [
        ("POST", "callback", 200),
        ("POST", inter.token, 200),  # followup, ?wait=1
        ("GET", "@original", 200),
        ("DELETE", calls[3].path.rsplit("/", 1)[-1], 204),
    ]
    assert calls[1].query["wait"] == "1"
    assert [m["content"] for m in dc.channel_messages(dc.channel_id)] == ["first"]


async def test_message_content_intent_is_enforced(dc: FakeDiscordServer) -> None:
    async with running(dc, ImageBot()) as client:  # Intents.default(): no message_content
        for text in ["plain words", f"<@{BOT_ID}> hello"]:
            waiter = asyncio.create_task(client.wait_for("message"))
            await asyncio.sleep(0)  # let the waiter register before the event arrives
            stored = await dc.user_message(dc.channel_id, USER_ID, text)
            received = await asyncio.wait_for(waiter, 5)
            assert stored["content"] == text
            # Without the privileged intent only mentions of the bot carry content.
            assert received.content == ("" if text == "plain words" else text)


async def test_where_the_bot_may_post(dc: FakeDiscordServer) -> None:
    group = dc.group_dm(USER_ID, 5555)
    elsewhere = dc.foreign_channel()
    async with running(dc, ImageBot()) as client:
        # Commands reach a group DM and a server without the bot through a user install.
        in_group = await dc.slash_command("imagine", {"prompt": "g"}, user_id=USER_ID,
                                          channel_id=group)  # fmt: skip
        assert (await outcome(client))[0] == "edited"  # the interaction's webhook works there
        assert (
            in_group.payload["context"],
            in_group.payload["authorizing_integration_owners"],
        ) == (
            2,
            {"1": str(USER_ID)},
        )
        abroad = await dc.slash_command("imagine", {"prompt": "f"}, user_id=USER_ID,
                                        channel_id=elsewhere)  # fmt: skip
        assert (await outcome(client))[0] == "edited"
        assert abroad.payload["authorizing_integration_owners"] == {"1": str(USER_ID)}
        assert abroad.payload["guild_id"] != str(dc.guild_id)

        async def refusal(channel_id: int, **send: Any) -> tuple[int, int]:
            channel = client.get_partial_messageable(channel_id)
            with pytest.raises(discord.Forbidden) as caught:
                await channel.send("hello", **send)
            return caught.value.status, caught.value.code

        assert await refusal(group) == (403, 50001)  # not a member of the group DM
        assert await refusal(elsewhere) == (403, 50001)  # not in that server
        dc.channel_permissions[dc.channel_id] = 1 << 10  # may look, may not write
        assert await refusal(dc.channel_id) == (403, 50013)
        dc.channel_permissions[dc.channel_id] = (1 << 10) | (1 << 11)  # may write, no files
        await client.get_partial_messageable(dc.channel_id).send("text only")
        file = discord.File(io.BytesIO(PNG), "x.png")
        assert await refusal(dc.channel_id, file=file) == (403, 50013)
        dc.channel_permissions[dc.channel_id] = 0
        assert await refusal(dc.channel_id) == (403, 50001)  # can't even see it
        dm = await (await client.fetch_user(USER_ID)).create_dm()
        dc.dms_closed.add(USER_ID)
        assert await refusal(dm.id) == (403, 50007)
        # An interaction in a channel the bot can't write in says so in app_permissions.
        inter = await dc.slash_command("imagine", {"prompt": "x"}, user_id=USER_ID)
        assert int(inter.payload["app_permissions"]) == 0
        await outcome(client)
