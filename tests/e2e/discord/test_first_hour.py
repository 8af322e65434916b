"""The first hour as a Discord user (issue 18): an introduction where the bot may post, buttons
that say what they do (with alt text on the images), an upscale never paid twice, a double tap
counted once, refusals in Discord's own words — real discord.py against the fake Discord."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.core import texts
from bot.core.domain import JobState
from bot.core.people import UserKey
from bot.frontends.discord import views
from tests.conftest import AnyStore, wait_delivered
from tests.e2e.discord.harness import (
    OTHER,
    USER,
    Bot,
    buttons,
    job_of,
    on_original,
    public_id_of,
)
from tests.fakes.discord_server import FLAG_EPHEMERAL, FakeDiscordServer, InjectedInteraction
from tests.fakes.flow_server import FakeFlowServer

NEW_GUILD, NEW_CHANNEL = 910_000_000_000_000_001, 910_000_000_000_000_002
SUCCESS = 3  # a green button: an upscale already asked for
USER_KEY = UserKey("discord", str(USER))


async def result_of(dc: FakeDiscordServer, inter: InjectedInteraction) -> dict[str, Any]:
    await dc.wait_for(on_original(inter, files=True))
    message = dc.original_message(inter.id)
    assert message is not None
    return message


async def private_reply(dc: FakeDiscordServer, inter: InjectedInteraction) -> dict[str, Any]:
    (reply,) = await dc.wait_for(f"/interactions/{inter.id}/")
    assert reply.json["type"] == 4
    data: dict[str, Any] = reply.json["data"]
    assert data["flags"] & FLAG_EPHEMERAL
    return data


def posted_in(dc: FakeDiscordServer, channel_id: int) -> list[dict[str, Any]]:
    return [m for m in dc.channel_messages(channel_id) if int(m["author"]["id"]) == dc.bot_user_id]


# 1. Onboarding.


async def test_the_bot_introduces_itself_in_the_system_channel_of_a_new_server(
    dc: FakeDiscordServer, store: AnyStore, bot: Bot
) -> None:
    await dc.join_guild(NEW_GUILD, NEW_CHANNEL)
    await dc.wait_for(f"POST /channels/{NEW_CHANNEL}/messages")
    [intro] = posted_in(dc, NEW_CHANNEL)
    assert intro["content"] == views.introduction("FakeBot")
    assert buttons(intro) == [["ex:1", "ex:2", "ex:3"]]
    labels = [c["label"] for c in intro["components"][0]["components"]]
    assert labels == [shown for shown, _ in texts.EXAMPLES]

    # A tap runs the example as the presser's own prompt.
    tap = await dc.press_button(int(intro["id"]), "ex:1", user_id=OTHER)
    answer = await result_of(dc, tap)
    job = await store.get_job(await job_of(store, answer))
    assert job is not None
    assert job.owner.user_id == str(OTHER)
    assert job.request.prompt == texts.EXAMPLES[0][1]  # type: ignore[union-attr]


async def test_no_introduction_where_the_bot_may_not_post(dc: FakeDiscordServer, bot: Bot) -> None:
    await dc.join_guild(NEW_GUILD, NEW_CHANNEL, system_channel=False)
    await dc.join_guild(NEW_GUILD + 10, NEW_CHANNEL + 10, can_post=False)
    # Something that surely comes after: the joins were handled by then.
    await dc.slash_command("help", {}, user_id=USER)
    await dc.wait_for("/callback")
    assert not [c for c in dc.calls if c.method == "POST" and "/channels/" in c.path]


# 3. Buttons anyone understands.


async def test_a_pressed_upscale_turns_green_and_a_second_press_points_to_it(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    inter = await dc.slash_command(
        "imagine", {"prompt": "a red fox", "model": "nano-banana-2", "count": 2}, user_id=USER
    )
    result = await result_of(dc, inter)
    job_id, public_id = await job_of(store, result), public_id_of(result)
    press = await dc.press_button(int(result["id"]), f"u:{public_id}:1", user_id=USER)
    upscale = await result_of(dc, press)
    await dc.wait_for(f"PATCH /channels/{dc.channel_id}/messages/{result['id']}")
    marked = dc.message(int(result["id"]))
    first_row = marked["components"][0]["components"]
    assert [(c["label"], c["style"]) for c in first_row] == [
        ("✅ Upscale 1", SUCCESS),
        ("✏️ Edit 1", 2),
    ]
    assert marked["components"][1]["components"][0]["label"] == "⬆️ Upscale 2"
    assert upscale["attachments"][0]["description"] == f"Image 1 of job #{public_id}, upscaled"
    upscaled = [r for r in flow.requests if r.path.endswith("/upscale")]
    # Where the upscale was posted is kept just after the post (before 'delivered' is written).
    await wait_delivered(store, job_id + 1)  # the upscale: the job after its source

    # Another member's press is pointed to the file, privately: no new job, nothing paid.
    again = await dc.press_button(int(result["id"]), f"u:{public_id}:1", user_id=OTHER)
    reply = await private_reply(dc, again)
    link = f"https://discord.com/channels/{dc.guild_id}/{dc.channel_id}/{upscale['id']}"
    assert reply["content"] == f"{texts.UPSCALE_AGAIN} {link}"
    assert [r for r in flow.requests if r.path.endswith("/upscale")] == upscaled
    assert [j.id for j in await store.user_jobs(UserKey("discord", str(OTHER)))] == []
    assert await store.get_job(job_id + 2) is None


async def test_a_double_tapped_reroll_starts_one_job(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    result = await result_of(
        dc, await dc.slash_command("imagine", {"prompt": "a fox"}, user_id=USER)
    )
    job_id, public_id = await job_of(store, result), public_id_of(result)
    flow.latency = 0.3
    taps = [
        await dc.press_button(int(result["id"]), f"d:{public_id}:0", user_id=USER) for _ in "12"
    ]
    # discord.py handles them side by side: whichever comes second is the double tap.
    first = [(await dc.wait_for(f"/interactions/{tap.id}/"))[0].json for tap in taps]
    # Both are answered at once: the refusal privately, the new job with its place in the queue.
    assert [response["type"] for response in first] == [4, 4]
    private = [bool(r["data"].get("flags", 0) & FLAG_EPHEMERAL) for r in first]
    assert sorted(private) == [False, True]
    refused = first[private.index(True)]["data"]
    assert refused["content"] == texts.failed(texts.ON_ITS_WAY)
    await result_of(dc, taps[private.index(False)])
    assert await store.get_job(job_id + 1) is not None
    assert await store.get_job(job_id + 2) is None


# 5. Smarter mistakes, in Discord's own words.


async def test_refusals_and_hints_name_the_slash_commands_options(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot
) -> None:
    auto = await dc.slash_command(
        "imagine", {"prompt": "a fox", "aspect_ratio": "auto"}, user_id=USER
    )
    reply = await private_reply(dc, auto)
    assert reply["content"] == texts.failed(
        "aspect_ratio: auto takes its shape from a reference image: "
        "attach an image or pick a ratio."
    )
    assert "--" not in reply["content"]

    lite = await result_of(
        dc, await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
    )
    assert lite["content"].endswith(
        "nano-banana-2-lite can't upscale; for ⬆️ Upscale buttons, use model: Nano Banana 2."
    )

    flow.empty_next(4)  # blocked every time, on both models
    blocked = await dc.slash_command(
        "imagine", {"prompt": "a fox", "model": "nano-banana-pro", "count": 1}, user_id=USER
    )
    await dc.wait_for(
        on_original(blocked, content=texts.failed(texts.moderated(texts.naming("discord"))))
    )
    assert "the model option" in texts.moderated(texts.naming("discord"))


# 7. Consistent platforms: a running job is cancelled from /queue (see also test_discord).


async def test_a_cancelled_running_job_posts_nothing(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    flow.latency = 0.6
    running = await dc.slash_command("imagine", {"prompt": "slow", "count": 1}, user_id=USER)
    async with asyncio.timeout(5):  # until it runs (progress shows that only after 2 s)
        while not [j for j in await store.user_jobs(USER_KEY) if j.state is JobState.RUNNING]:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    listing = await dc.slash_command("queue", {}, user_id=USER)
    await dc.wait_for(f"/interactions/{listing.id}/")
    panel = dc.original_message(listing.id)
    assert panel is not None
    (job,) = await store.user_jobs(USER_KEY)
    stop = await dc.press_button(int(panel["id"]), f"c:{job.public_id}:0", user_id=USER)
    await dc.wait_for(f"/interactions/{stop.id}/")
    await dc.wait_for(on_original(running, content=texts.CANCELLED_STATUS))
    async with asyncio.timeout(5):
        while bot.service.scheduler.in_flight:  # noqa: ASYNC110 - the upstream call runs on
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # time enough to post an answer, were one coming
    cancelled = await store.get_job(job.id)
    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED
    assert not [c for c in dc.interaction_responses(running.id) if c.files]
