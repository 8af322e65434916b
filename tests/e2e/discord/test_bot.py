"""The Discord front end end to end: real discord.py, service, Flow client and store (SQLite and
PostgreSQL), against the fake Discord (gateway + REST + CDN) and the fake Flow API.

Tests wait on recorded calls (``dc.wait_for``) or on the store, never on a fixed sleep. Where
an order of events matters (progress shown before the answer), the fake upstream's latency
leaves room for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
from PIL import Image

from bot.core import models_file, option_texts, texts
from bot.core.domain import ImageRef, JobState, ResultImage
from bot.core.models_table import ModelTable
from bot.core.people import UserKey
from bot.core.policy import Limits
from bot.core.service import delivery as core_delivery
from bot.core.service import progress
from bot.frontends.discord import interactions, media, status, views
from bot.store.sqlite import SqliteStore
from tests.attacks.conftest import until
from tests.conftest import AnyStore, as_uploaded, image_bytes, wait_delivered
from tests.e2e.discord.harness import (
    ADMIN,
    OTHER,
    USER,
    Bot,
    buttons,
    edits,
    ephemeral_reply,
    job_of,
    on_original,
    png_bomb,
    process,
    produced,
    public_id_of,
    public_id_of_files,
    start_bot,
)
from tests.fakes.discord_server import (
    FLAG_EPHEMERAL,
    UNKNOWN_INTERACTION,
    FakeDiscordServer,
    InjectedInteraction,
    RestCall,
)
from tests.fakes.flow_server import FakeFlowServer, jpeg

CHANNEL_POST = r"^/channels/\d+/messages$"


def channel_post(call: RestCall) -> bool:
    return call.method == "POST" and re.search(CHANNEL_POST, call.path) is not None


async def result_of(dc: FakeDiscordServer, inter: InjectedInteraction) -> dict[str, Any]:
    """Wait for the answer with images in the interaction's response; return that message."""
    await dc.wait_for(on_original(inter, files=True))
    message = dc.original_message(inter.id)
    assert message is not None
    return message


async def imagine(
    dc: FakeDiscordServer, prompt: str, *, user_id: int = USER, **options: Any
) -> dict[str, Any]:
    inter = await dc.slash_command("imagine", {"prompt": prompt, **options}, user_id=user_id)
    return await result_of(dc, inter)


def asked_upstream(flow: FakeFlowServer) -> list[str]:
    return [r.path for r in flow.requests if "/images" in r.path or "/assets" in r.path]


# Wiring.


async def test_commands_sync_once_then_only_when_changed(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore
) -> None:
    first = await start_bot(dc, flow, store)
    await first.stop()
    assert dc.sync_count == 1
    names = {(c["type"], c["name"]) for c in dc.commands()}
    assert names == {
        (1, "imagine"),
        (1, "settings"),
        (1, "history"),
        (1, "show"),
        (1, "link"),
        (1, "queue"),
        (1, "info"),
        (1, "help"),
        (1, "character"),
        (3, views.CONTEXT_MENU),
        (3, views.MAKE_CHARACTER),
        (1, "server"),
        (1, "admin"),
    }
    for command in dc.commands():
        assert sorted(command["contexts"]) == [0, 1, 2]  # guilds, bot DMs, private channels
        assert sorted(command["integration_types"]) == [0, 1]  # guild and user installs
    imagine_options = next(c for c in dc.commands() if c["name"] == "imagine")["options"]
    assert [o["name"] for o in imagine_options] == [
        "prompt",
        "model",
        "aspect_ratio",
        "count",
        "seed",
        "image1",
        "image2",
        "image3",
        "image4",
    ]
    # The gateway was asked for no privileged intent (only GUILDS).
    assert (
        dc.gateway_connections[0].received[1]["d"]["intents"] == discord.Intents(guilds=True).value
    )

    second = await start_bot(dc, flow, store)  # same commands: nothing to sync
    await second.stop()
    assert dc.sync_count == 1

    newer = models_file.merged(
        ModelTable.builtin(), {"models": {"nano-banana-3": {"aliases": ["3"]}}}
    )
    third = await start_bot(dc, flow, store, models=newer)  # a new model choice: sync
    await third.stop()
    assert dc.sync_count == 2
    model_option = next(c for c in dc.commands() if c["name"] == "imagine")["options"][1]
    assert model_option["choices"][-1] == {"name": "nano-banana-3", "value": "nano-banana-3"}

    fourth = await start_bot(dc, flow, store, models=newer, dev_guild=dc.guild_id)
    await fourth.stop()
    assert dc.sync_count == 3  # the development guild had none yet; global ones untouched
    assert {c["name"] for c in dc.commands(dc.guild_id)} == {n for _, n in names}


# /imagine.


async def test_imagine_answers_with_its_place_then_becomes_the_result(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore
) -> None:
    flow.latency = 0.3  # a job answered this soon shows no "generating" on the way
    bot = await start_bot(dc, flow, store)
    options = {"model": "nano-banana-2", "aspect_ratio": "16:9", "count": 2, "seed": 9}
    inter = await dc.slash_command("imagine", {"prompt": "a red fox", **options}, user_id=USER)
    message = await result_of(dc, inter)
    job_id = await job_of(store, message)
    await wait_delivered(store, job_id)
    await bot.stop()

    first = dc.interaction_responses(inter.id)[0].json
    assert first["type"] == 4  # answered within 3 s, publicly, with its place in the queue
    assert first["data"]["content"] == texts.queued(1)
    assert edits(dc, inter) == [  # two calls in all
        f"#{public_id_of(message)} · nano-banana-2 · seed 9 · 16:9\n“a red fox”"
    ]
    answer = next(c for c in dc.interaction_responses(inter.id) if c.files)
    images = await store.results(job_id)
    assert answer.files == {
        f"banana-{public_id_of(message)}-{i.index}.jpg": produced(i, flow.image_size)
        for i in images
    }
    # Alt text for screen readers, numbered as the buttons are.
    assert [a["description"] for a in message["attachments"]] == [
        "Image 1 of 2: a red fox",
        "Image 2 of 2: a red fox",
    ]
    made = public_id_of(message)
    assert buttons(message) == [
        [f"u:{made}:1", f"r:{made}:1"],
        [f"u:{made}:2", f"r:{made}:2"],
        [f"d:{made}:0"],
    ]
    assert [[b["label"] for b in row["components"]] for row in message["components"]] == [
        ["⬆️ Upscale 1", "✏️ Edit 1"],
        ["⬆️ Upscale 2", "✏️ Edit 2"],
        ["🎲 Draw again"],
    ]
    sent = flow.images_requests()[-1].json
    assert sent is not None
    assert (sent["prompt"], sent["model"], sent["aspectRatio"], sent["count"], sent["seed"]) == (
        "a red fox",
        "nano-banana-2",
        "16:9",
        2,
        9,
    )
    job = await store.get_job(job_id)
    assert job is not None
    assert job.delivered
    assert (job.owner.platform, job.owner.user_id, job.owner.chat_id) == (
        "discord",
        str(USER),
        str(dc.channel_id),
    )
    assert dict(job.owner.route) == {"guild": str(dc.guild_id), "interaction": str(inter.id)}


async def test_a_prompts_place_is_told_once_its_job_is_stored(
    dc: FakeDiscordServer, store: AnyStore, bot: Bot
) -> None:
    """Durable by construction: what the user is told is in the store already (a /queue on
    their other platform shows it; a crash right then can't announce a job that isn't there)."""
    stored: list[list[str]] = []

    async def when_told(call: RestCall) -> None:
        if call.path.endswith("/callback"):
            jobs = await store.user_jobs(UserKey("discord", str(USER)))
            stored.append([job.public_id for job in jobs])

    dc.before_answer = when_told
    inter = await dc.slash_command("imagine", {"prompt": "a red fox", "count": 1}, user_id=USER)
    message = await result_of(dc, inter)
    assert stored == [[public_id_of(message)]]
    assert dc.interaction_responses(inter.id)[0].json["data"]["content"] == texts.queued(1)


async def test_a_job_starts_only_once_its_place_is_told(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    asked_meanwhile: list[bool] = []

    async def slow_to_acknowledge(call: RestCall) -> None:
        if call.path.endswith("/callback"):  # the job is stored and queued by now
            with contextlib.suppress(TimeoutError):
                await until(flow.images_requests, timeout=0.5)
            asked_meanwhile.append(bool(flow.images_requests()))

    dc.before_answer = slow_to_acknowledge
    inter = await dc.slash_command("imagine", {"prompt": "a red fox", "count": 1}, user_id=USER)
    message = await result_of(dc, inter)
    await wait_delivered(store, await job_of(store, message))
    assert asked_meanwhile == [False]
    [told, answer] = dc.interaction_responses(inter.id)
    assert told.json["data"]["content"] == texts.queued(1)
    assert answer.files


@pytest.fixture
def slow_checks(dc: FakeDiscordServer, store: AnyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Discord's 3 s shortened to 0.6 s, the deferral due at 0.2 s, and every check of a
    request waiting 0.4 s for the store (as behind a burst of a thousand)."""
    dc.ack_window = 0.6
    monkeypatch.setattr(interactions, "ACK_BUDGET", 0.2)
    settings_of = store.user_settings

    async def slowly(user: UserKey) -> Any:
        await asyncio.sleep(0.4)
        return await settings_of(user)

    monkeypatch.setattr(store, "user_settings", slowly)


@pytest.mark.usefixtures("slow_checks")
async def test_a_prompt_whose_checks_outlast_the_budget_is_deferred_in_time_then_answered(
    dc: FakeDiscordServer, bot: Bot, store: AnyStore
) -> None:
    inter = await dc.slash_command("imagine", {"prompt": "a red fox", "count": 1}, user_id=USER)
    message = await result_of(dc, inter)
    await wait_delivered(store, await job_of(store, message))

    assert dc.late_callbacks == []
    [first, answer] = dc.interaction_responses(inter.id)  # two calls in all
    assert first.json["type"] == 5  # "thinking…", in time
    assert answer.files
    assert edits(dc, inter)[-1].startswith(f"#{public_id_of(message)} · ")


async def test_a_prompt_that_comes_while_many_are_checked_is_deferred_at_once(
    dc: FakeDiscordServer, bot: Bot, store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(interactions, "BUSY", 0)  # as if a burst's prompts were in their checks
    inter = await dc.slash_command("imagine", {"prompt": "a red fox", "count": 1}, user_id=USER)
    message = await result_of(dc, inter)
    await wait_delivered(store, await job_of(store, message))

    [first, answer] = dc.interaction_responses(inter.id)
    assert first.json["type"] == 5
    assert answer.files
    assert interactions.FirstResponse.checking == 0


@pytest.mark.usefixtures("slow_checks")
async def test_a_prompt_refused_after_its_deferral_is_told_privately(
    dc: FakeDiscordServer, bot: Bot
) -> None:
    inter = await dc.slash_command("imagine", {"prompt": "a red fox --count 9"}, user_id=USER)
    reply = await ephemeral_reply(dc, inter)

    assert dc.late_callbacks == []
    assert dc.interaction_responses(inter.id)[0].json["type"] == 5
    assert reply["flags"] & FLAG_EPHEMERAL
    assert reply["content"].startswith("❌")
    assert dc.original_message(inter.id) is None  # "thinking…" is gone


async def test_a_running_jobs_response_counts_its_time_calmly_then_becomes_the_answer(
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    store: AnyStore,
    bot: Bot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Live progress at a tenth of its pace: shown once a state lasted 0.2 s, every second after.
    monkeypatch.setattr(progress, "SETTLE", 0.2)
    monkeypatch.setattr(progress, "PACE", 1.0)
    monkeypatch.setattr(texts, "SHOWN_ELAPSED", 0.5)
    flow.hold()
    inter = await dc.slash_command("imagine", {"prompt": "a slow fox", "count": 1}, user_id=USER)
    # The upstream answers once the job was seen running for 2 s (not after a fixed latency,
    # which a loaded machine's late ticks could overtake).
    await dc.wait_for(on_original(inter, content=f"{texts.STARTED} 2 s"))
    flow.release()
    message = await result_of(dc, inter)
    await wait_delivered(store, await job_of(store, message))
    patches = [c for c in dc.interaction_responses(inter.id) if on_original(inter)(c)]
    *shown, answer = patches
    # One edit a second: the time it had run, at each.
    assert [c.json["content"] for c in shown] == [
        texts.STARTED,
        f"{texts.STARTED} 1 s",
        f"{texts.STARTED} 2 s",
    ]
    assert answer.files  # the answer came last, and nothing after it
    assert " · nano-banana-2-lite · seed " in answer.json["content"]


async def test_imagine_with_attachments_uses_them_as_references(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot
) -> None:
    first, second = image_bytes("PNG", color="blue"), image_bytes("JPEG", color="green")
    inter = await dc.slash_command(
        "imagine",
        {"prompt": "make them dance", "count": 1},
        user_id=USER,
        attachments={
            "image1": ("one.png", first, "image/png"),
            "image2": ("two.jpg", second, "image/jpeg"),
        },
    )
    await result_of(dc, inter)
    downloads = [c for c in dc.calls if c.path.startswith("/attachments/")]
    assert [c.status for c in downloads] == [200, 200]
    status = dc.interaction_responses(inter.id)[0]
    assert status.json["type"] == 4
    # Stored with its pictures before its place is told (a deferral keeps slow downloads
    # within Discord's 3 s).
    assert dc.calls.index(downloads[-1]) < dc.calls.index(status)
    uploads = [r for r in flow.requests if "/assets/" in r.path]
    assert sorted(r.body for r in uploads) == sorted(map(as_uploaded, [first, second]))
    sent = flow.images_requests()[-1].json
    assert sent is not None
    assert sent["reference_1"]
    assert sent["reference_2"]


async def test_inline_flags_and_options_together(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot
) -> None:
    await imagine(dc, "a fox --ar 9:16 --model pro --count 3 --seed 5", count=1)
    sent = flow.images_requests()[-1].json
    assert sent is not None
    # Inline flags apply; an explicit slash option wins over the same flag.
    assert (sent["prompt"], sent["model"], sent["aspectRatio"], sent["count"], sent["seed"]) == (
        "a fox",
        "nano-banana-pro",
        "9:16",
        1,
        5,
    )


async def test_imagine_in_a_dm(dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot) -> None:
    inter = await dc.slash_command(
        "imagine", {"prompt": "a DM fox", "count": 1}, user_id=USER, guild=False
    )
    message = await result_of(dc, inter)
    assert message["channel_id"] == str(dc.dm_channel_id(USER))
    job = await bot.service.job(await job_of(bot.store, message))
    assert job is not None
    assert job.owner.route["guild"] == ""


# Buttons.


async def test_upscale_button_sends_the_upscale_as_a_file(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    result = await imagine(dc, "a lighthouse", count=2, model="nano-banana-2")
    job_id, public_id = await job_of(store, result), public_id_of(result)
    press = await dc.press_button(int(result["id"]), f"u:{public_id}:2", user_id=OTHER)
    upscaled = await result_of(dc, press)

    assert dc.interaction_responses(press.id)[0].json["type"] == 4  # a new status message
    assert upscaled["id"] != result["id"]
    assert upscaled["components"] == []
    new_id = public_id_of_files(next(c for c in dc.interaction_responses(press.id) if c.files))
    assert upscaled["content"] == (
        f"#{new_id} · Upscaled image 2 of #{public_id} to 2k · nano-banana-2\n"
        f"⬆️ Upscale 2 by @user{OTHER}"  # another member's result: whose this one is
    )
    source = next(i for i in await store.results(job_id) if i.index == 2)
    w, h = flow.image_size
    answer = next(c for c in dc.interaction_responses(press.id) if c.files)
    assert answer.files == {
        f"banana-{new_id}-1.jpg": jpeg((w * 2, h * 2), 2, f"{source.ref.media_id} 2k")
    }
    job = await store.job_by_public_id(new_id)
    assert job is not None
    assert job.owner.user_id == str(OTHER)  # anyone may press; the new job is theirs


async def test_reroll_button_makes_a_new_job_for_the_presser(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    result = await imagine(dc, "a castle", count=1, seed=1)
    job_id = await job_of(store, result)
    press = await dc.press_button(int(result["id"]), f"d:{public_id_of(result)}:0", user_id=OTHER)
    rerolled = await result_of(dc, press)

    assert rerolled["channel_id"] == str(dc.channel_id)
    new_job = await job_of(store, rerolled)
    assert new_job != job_id
    job = await store.get_job(new_job)
    assert job is not None
    assert job.owner.user_id == str(OTHER)
    first, second = (r.json for r in flow.images_requests())
    assert first is not None
    assert second is not None
    assert second["prompt"] == first["prompt"] == "a castle"
    assert second["seed"] != first["seed"]


async def test_reuse_button_asks_for_a_prompt_and_uses_that_image(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    result = await imagine(dc, "a red fox", count=2)
    job_id = await job_of(store, result)
    press = await dc.press_button(int(result["id"]), f"r:{public_id_of(result)}:2", user_id=OTHER)
    await dc.wait_for(f"/interactions/{press.id}/")
    modal = dc.opened_modal(press.id)
    assert modal["title"] == "What should I make of image 2?"
    text_input = modal["components"][0]["components"][0]
    assert text_input["value"] == "a red fox"  # prefilled with the old prompt
    assert text_input["max_length"] == bot.service.limits.max_prompt_chars

    submit = await dc.submit_modal(
        modal["custom_id"], {text_input["custom_id"]: "the fox in a snowstorm"}, user_id=OTHER
    )
    answer = await result_of(dc, submit)
    assert dc.interaction_responses(submit.id)[0].json["type"] == 4
    source = next(i for i in await store.results(job_id) if i.index == 2)
    sent = flow.images_requests()[-1].json
    assert sent is not None
    assert sent["prompt"] == "the fox in a snowstorm"
    assert sent["reference_1"] == source.ref.media_id
    assert await job_of(store, answer) != job_id


async def test_context_menu_imagines_with_the_message_images(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot
) -> None:
    photo = image_bytes("PNG", color="purple")
    posted = await dc.user_message(
        dc.channel_id, OTHER, "my cat", attachments=[("cat.png", photo, "image/png")]
    )
    menu = await dc.message_context_menu(views.CONTEXT_MENU, int(posted["id"]), user_id=USER)
    await dc.wait_for(f"/interactions/{menu.id}/")
    modal = dc.opened_modal(menu.id)
    field = modal["components"][0]["components"][0]["custom_id"]
    submit = await dc.submit_modal(
        modal["custom_id"], {field: "the cat as a knight --count 1"}, user_id=USER
    )
    await result_of(dc, submit)
    (upload,) = [r for r in flow.requests if "/assets/" in r.path]
    assert upload.body == as_uploaded(photo)
    sent = flow.images_requests()[-1].json
    assert sent is not None
    assert (sent["prompt"], sent["count"]) == ("the cat as a knight", 1)
    assert sent["reference_1"]

    plain = await dc.user_message(dc.channel_id, OTHER, "no picture here")
    refused = await dc.message_context_menu(views.CONTEXT_MENU, int(plain["id"]), user_id=USER)
    (reply,) = await dc.wait_for(f"/interactions/{refused.id}/")
    assert reply.json["data"]["content"] == views.NO_IMAGES
    assert reply.json["data"]["flags"] == FLAG_EPHEMERAL


# /settings, /queue, /help.


async def test_settings_are_saved_from_the_menus_and_used(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    opened = await dc.slash_command("settings", {}, user_id=USER)
    (reply,) = await dc.wait_for(f"/interactions/{opened.id}/")
    assert reply.json["data"]["flags"] == FLAG_EPHEMERAL
    panel = dc.original_message(opened.id)
    assert panel is not None
    assert buttons(panel) == [
        ["set:model"],
        ["set:aspect_ratio"],
        ["set:count"],
        ["set:upscale_resolution"],
        ["set:language"],
    ]
    for custom_id, value in [("set:model", "nano-banana-pro"), ("set:count", "1")]:
        chosen = await dc.select(int(panel["id"]), custom_id, [value], user_id=USER)
        (update,) = await dc.wait_for(f"/interactions/{chosen.id}/")
        assert update.json["type"] == 7  # the panel itself shows the new value
        panel = dc.message(int(panel["id"]))
    saved = await store.user_settings(UserKey("discord", str(USER)))
    assert (saved.model, saved.count) == ("nano-banana-pro", 1)
    assert "Model: nano-banana-pro\n" in panel["content"]
    assert "Aspect ratio: 1:1 (bot default)" in panel["content"]
    count_menu = panel["components"][2]["components"][0]
    assert [o["value"] for o in count_menu["options"] if o.get("default")] == ["1"]

    await imagine(dc, "a tower")
    sent = flow.images_requests()[-1].json
    assert sent is not None
    assert (sent["model"], sent["count"]) == ("nano-banana-pro", 1)

    reset = await dc.select(int(panel["id"]), "set:count", [views.RESET], user_id=USER)
    await dc.wait_for(f"/interactions/{reset.id}/")
    assert (await store.user_settings(UserKey("discord", str(USER)))).count is None


async def test_queue_lists_jobs_and_cancels_a_waiting_one(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore
) -> None:
    bot = await start_bot(dc, flow, store, limits=Limits(running_per_user=1))
    try:
        flow.stall_next(30)  # the first job keeps running; the second waits behind it
        running = await dc.slash_command(
            "imagine", {"prompt": "slow one", "count": 1}, user_id=USER
        )
        await dc.wait_for(on_original(running, content=texts.STARTED))
        waiting = await dc.slash_command(
            "imagine", {"prompt": "next one", "count": 1}, user_id=USER
        )
        await until(lambda: bot.service.scheduler.position(2) > 0)
        (first, second) = await store.user_jobs(UserKey("discord", str(USER)))

        listing = await dc.slash_command("queue", {}, user_id=USER)
        await dc.wait_for(f"/interactions/{listing.id}/")
        panel = dc.original_message(listing.id)
        assert panel is not None
        assert panel["flags"] & FLAG_EPHEMERAL
        assert f"#{first.public_id}" in panel["content"]
        assert texts.STARTED in panel["content"]
        assert f"#{second.public_id}" in panel["content"]
        assert buttons(panel) == [[f"c:{first.public_id}:0", f"c:{second.public_id}:0"]]

        stranger = await dc.press_button(int(panel["id"]), f"c:{second.public_id}:0", user_id=OTHER)
        (refusal,) = await dc.wait_for(f"/interactions/{stranger.id}/")
        assert refusal.json["data"]["content"] == texts.failed(texts.NOT_YOUR_JOB)

        cancel = await dc.press_button(int(panel["id"]), f"c:{second.public_id}:0", user_id=USER)
        (update,) = await dc.wait_for(f"/interactions/{cancel.id}/")
        assert update.json["type"] == 7
        assert update.json["data"]["content"].startswith(f"#{second.public_id}: {texts.CANCELLED}")
        assert buttons(update.json["data"]) == [[f"c:{first.public_id}:0"]]
        job = await store.get_job(second.id)
        assert job is not None
        assert job.state is JobState.CANCELLED
        assert edits(dc, waiting)[-1] == texts.CANCELLED_STATUS

        # A running job too: the upstream call runs on, what it makes is thrown away.
        stop = await dc.press_button(int(panel["id"]), f"c:{first.public_id}:0", user_id=USER)
        (update,) = await dc.wait_for(f"/interactions/{stop.id}/")
        assert update.json["data"]["content"].startswith(
            f"#{first.public_id}: {texts.CANCELLED_RUNNING}"
        )
        assert buttons(update.json["data"]) == []
        assert edits(dc, running)[-1] == texts.CANCELLED_STATUS
        job = await store.get_job(first.id)
        assert job is not None
        assert job.state is JobState.CANCELLED
    finally:
        await bot.stop()


async def test_help(dc: FakeDiscordServer, bot: Bot) -> None:
    inter = await dc.slash_command("help", {}, user_id=USER)
    (reply,) = await dc.wait_for(f"/interactions/{inter.id}/")
    assert reply.json["data"]["flags"] == FLAG_EPHEMERAL
    content = reply.json["data"]["content"]
    assert texts.FLAGS_HELP in content
    assert "nano-banana-pro (pro)" in content


# Restarts and expired tokens.


async def test_buttons_work_after_a_restart(
    dc: FakeDiscordServer, flow: FakeFlowServer, tmp_path: Path
) -> None:
    async with process(dc, flow, tmp_path / "bot.sqlite3"):
        result = await imagine(dc, "before the restart", count=1)

    async with process(dc, flow, tmp_path / "bot.sqlite3"):  # nothing in memory any more
        press = await dc.press_button(
            int(result["id"]), f"d:{public_id_of(result)}:0", user_id=OTHER
        )
        again = await result_of(dc, press)
    async with SqliteStore(tmp_path / "bot.sqlite3") as store:
        assert await job_of(store, again) == await job_of(store, result) + 1
    sent = flow.images_requests()[-1].json
    assert sent is not None
    assert sent["prompt"] == "before the restart"


async def test_after_the_token_expires_the_answer_goes_to_the_channel(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    flow.latency = 3.0  # "generating" is shown once it has lasted 2 s
    inter = await dc.slash_command("imagine", {"prompt": "a slow fox", "count": 1}, user_id=USER)
    await dc.wait_for(on_original(inter, content=texts.STARTED))
    dc.expire_token(inter.token)  # the job outlived the 15 minutes
    bot.refusals.append("/messages/@original -> 401")
    dc.fail_next("POST", CHANNEL_POST, 503)  # and Discord hiccups once: tried again later

    posts = await dc.wait_for(channel_post, count=2)
    assert {c.path for c in posts} == {f"/channels/{dc.channel_id}/messages"}
    assert [c.status for c in posts] == [503, 200]
    sent = posts[-1].json
    assert sent["content"].startswith(f"<@{USER}> ")
    assert sent["allowed_mentions"]["users"] == [USER]
    assert sent["allowed_mentions"].get("parse", []) == []
    public_id = public_id_of_files(posts[-1])
    assert [c["custom_id"] for c in sent["components"][-1]["components"]][-1] == f"d:{public_id}:0"
    job = await store.job_by_public_id(public_id)
    assert job is not None
    await wait_delivered(store, job.id)


async def test_a_token_past_its_lifetime_is_not_even_tried(
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    store: AnyStore,
    bot: Bot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow.latency = 1.0
    inter = await dc.slash_command("imagine", {"prompt": "an old fox", "count": 1}, user_id=USER)
    await dc.wait_for(f"/interactions/{inter.id}/")
    monkeypatch.setattr(status, "TOKEN_LIFETIME", timedelta(0))  # as if 15 minutes had passed
    (post,) = await dc.wait_for(channel_post)
    public_id = (await store.get_job(1) or pytest.fail("no job")).public_id
    assert post.json["content"].startswith(f"<@{USER}> #{public_id} · nano-banana-2-lite · seed")
    await wait_delivered(store, 1)
    assert edits(dc, inter) == []  # no progress, no answer with that token
    assert [c.status for c in dc.interaction_responses(inter.id)] == [200]


async def test_a_job_interrupted_by_a_restart_is_answered_in_the_channel(
    dc: FakeDiscordServer, flow: FakeFlowServer, tmp_path: Path
) -> None:
    flow.stall_next(30)  # the first attempt runs until the process ends
    async with process(dc, flow, tmp_path / "bot.sqlite3"):
        inter = await dc.slash_command("imagine", {"prompt": "cut", "count": 1}, user_id=USER)
        await dc.wait_for(on_original(inter, content=texts.STARTED))
    # The job was running when the process ended: the next one resumes it, with no live token.
    async with process(dc, flow, tmp_path / "bot.sqlite3") as again:
        (post,) = await dc.wait_for(channel_post)
        await wait_delivered(again.store, 1)
    assert post.json["content"].startswith(f"<@{USER}> ")
    assert post.files
    assert len(flow.images_requests()) == 2  # the interrupted attempt, then the resumed one


def post_in(channel_id: int) -> Callable[[RestCall], bool]:
    return lambda call: channel_post(call) and call.path == f"/channels/{channel_id}/messages"


async def slow_job_outliving_its_token(
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    bot: Bot,
    prompt: str,
    *,
    channel_id: int | None = None,
    count: int = 1,
) -> InjectedInteraction:
    """Ask in ``channel_id`` for a job that is still running when the token dies."""
    flow.latency = 3.0  # "generating" is shown once it has lasted 2 s
    inter = await dc.slash_command(
        "imagine", {"prompt": prompt, "count": count}, user_id=USER, channel_id=channel_id
    )
    await dc.wait_for(on_original(inter, content=texts.STARTED))
    dc.expire_token(inter.token)
    bot.refusals.append(f"/{inter.token}")  # the answer tried on the dead token: 401
    return inter


async def test_where_the_bot_cannot_post_a_late_answer_comes_by_dm(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    """A channel the bot may not write in, a group DM, a server that never invited the bot
    (the last two reached by a user's own install of the app): no post there is even tried."""
    dc.channel_permissions[dc.channel_id] = 0  # the server's channel, but no right in it
    places = [dc.channel_id, dc.group_dm(USER, OTHER), dc.foreign_channel()]
    dm = dc.dm_channel_id(USER)
    for job_id, place in enumerate(places, start=1):
        await slow_job_outliving_its_token(dc, flow, bot, f"answer {job_id}", channel_id=place)
        posts = await dc.wait_for(post_in(dm), count=job_id)
        await wait_delivered(store, job_id)
        sent = posts[-1]
        assert (sent.status, len(sent.files)) == (200, 1)
        public_id = (await store.get_job(job_id) or pytest.fail("no job")).public_id
        # No mention in a DM.
        assert sent.json["content"].startswith(f"#{public_id} · nano-banana-2-lite · seed")
        assert buttons(dc.message(int(sent.response["id"])))[-1][-1] == f"d:{public_id}:0"
    assert not [c for c in dc.calls if channel_post(c) and c.path != f"/channels/{dm}/messages"]


async def test_an_answer_while_the_token_lives_needs_no_channel(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    group = dc.group_dm(USER, OTHER)
    inter = await dc.slash_command("imagine", {"prompt": "here", "count": 1}, user_id=USER,
                                   channel_id=group)  # fmt: skip
    result = await result_of(dc, inter)
    assert await job_of(store, result) == 1
    assert not [c for c in dc.calls if channel_post(c)]


async def test_a_channel_closed_after_the_ask_sends_the_answer_by_dm(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    await slow_job_outliving_its_token(dc, flow, bot, "closing")
    bot.refusals.append(f"POST /channels/{dc.channel_id}/messages -> 403")
    dc.channel_permissions[dc.channel_id] = 1 << 10  # may see the channel, no longer write in it
    (refused,) = await dc.wait_for(post_in(dc.channel_id))
    (sent,) = await dc.wait_for(post_in(dc.dm_channel_id(USER)))
    await wait_delivered(store, 1)
    assert (refused.status, refused.response["code"]) == (403, 50013)
    assert sent.status == 200


async def test_an_unpostable_answer_is_given_up_and_the_bot_keeps_serving(
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    store: AnyStore,
    bot: Bot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dc.dms_closed.add(USER)  # and the bot may not post in the group DM: nowhere to go
    with caplog.at_level(logging.WARNING):
        await slow_job_outliving_its_token(dc, flow, bot, "nowhere", channel_id=dc.group_dm(USER))
        bot.refusals.append(f"POST /channels/{dc.dm_channel_id(USER)}/messages -> 403")
        (refused,) = await dc.wait_for(channel_post)
        await wait_delivered(store, 1)  # recorded as answered: never retried
    assert (refused.status, refused.response["code"]) == (403, 50007)
    assert refused.path == f"/channels/{dc.dm_channel_id(USER)}/messages"
    assert "job 1: cannot answer user" in caplog.text
    assert "job 1 is undeliverable" in caplog.text
    assert [c for c in dc.calls if channel_post(c)] == [refused]

    flow.latency = 0
    assert await job_of(store, await imagine(dc, "still serving", count=1)) == 2


# Discord's own failures.


async def test_a_429_is_retried_by_discord_py(dc: FakeDiscordServer, bot: Bot) -> None:
    dc.fail_next("PATCH", r"/messages/@original$", 429, retry_after=0.05)
    inter = await dc.slash_command("imagine", {"prompt": "rate limited", "count": 1}, user_id=USER)
    await result_of(dc, inter)
    patches = [c for c in dc.interaction_responses(inter.id) if c.method == "PATCH"]
    assert [c.status for c in patches] == [429, 200]
    assert patches[1].files  # the answer, once discord.py had waited as told


async def test_an_unknown_interactions_job_is_cancelled_and_never_answered(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    # Discord answers 10062 when the 3 s to acknowledge are over: the user saw "did not
    # respond" and may ask again, so the job stored before is not answered as well. The
    # upstream holds its answer until then: under load the job could finish first, and a
    # finished job is not cancelled.
    flow.hold()
    dc.fail_next("POST", r"^/interactions/\d+/[^/]+/callback$", 404, body=UNKNOWN_INTERACTION)
    late = await dc.slash_command("imagine", {"prompt": "too late"}, user_id=USER)
    await dc.wait_for(f"/interactions/{late.id}/")
    await until(lambda: is_delivered(store, 1))
    flow.release()
    result = await imagine(dc, "in time", count=1)
    assert await job_of(store, result) == 2
    await until(lambda: is_delivered(store, 1))
    job = await store.get_job(1)
    assert job is not None
    assert job.state is JobState.CANCELLED
    assert [c.status for c in dc.interaction_responses(late.id)] == [404]
    assert not [c for c in dc.calls if c.files and late.token in c.path]


async def test_an_unknown_interactions_job_is_not_made_upstream(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    # The user saw "did not respond" and may ask again: that job must not be paid for (nor
    # its images counted against their day) as well.
    async def in_no_hurry(call: RestCall) -> None:
        if call.path.endswith("/callback"):  # Discord's 404 comes when the job could have run
            with contextlib.suppress(TimeoutError):
                await until(flow.images_requests, timeout=1.0)

    flow.hold()
    dc.before_answer = in_no_hurry
    dc.fail_next("POST", r"^/interactions/\d+/[^/]+/callback$", 404, body=UNKNOWN_INTERACTION)
    late = await dc.slash_command("imagine", {"prompt": "too late"}, user_id=USER)
    await dc.wait_for(f"/interactions/{late.id}/")
    await until(lambda: is_delivered(store, 1))
    flow.release()
    assert not flow.images_requests()


async def test_a_first_response_discord_took_though_it_answered_an_error_keeps_its_job(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    # A 5xx from Discord's edge after the response went through: discord.py tries again, and
    # Discord says it has it already (40060). The user sees their place: no "too late".
    took: list[RestCall] = []

    async def took_then_failed(call: RestCall) -> None:
        if call.path.endswith("/callback") and not took:
            took.append(call)
            raise aiohttp.web.HTTPBadGateway()

    dc.before_answer = took_then_failed
    bot.refusals.append("/callback -> 400")  # discord.py's try again, which Discord had
    inter = await dc.slash_command("imagine", {"prompt": "a red fox", "count": 1}, user_id=USER)
    message = await result_of(dc, inter)
    job_id = await job_of(store, message)
    await wait_delivered(store, job_id)
    job = await store.get_job(job_id)
    assert job is not None
    assert job.state is JobState.DONE
    assert [c.status for c in dc.interaction_responses(inter.id)][:2] == [200, 400]


async def is_delivered(store: AnyStore, job_id: int) -> bool:
    job = await store.get_job(job_id)
    return job is not None and job.delivered


async def test_files_too_large_are_recompressed(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot
) -> None:
    flow.image_size, flow.latency = (512, 384), 0.5
    inter = await dc.slash_command("imagine", {"prompt": "big", "count": 2}, user_id=USER)
    await dc.wait_for(f"/interactions/{inter.id}/")  # queued
    dc.upload_limit = 1500  # lower than the interaction said: Discord answers 413
    bot.refusals.append("/messages/@original -> 413")
    await result_of(dc, inter)
    with_files = [c for c in dc.interaction_responses(inter.id) if c.files]
    assert next(c.status for c in with_files) == 413
    assert with_files[-1].status == 200
    assert all(len(data) <= 1500 for data in with_files[-1].files.values())


async def test_many_files_are_split_over_messages_with_buttons_on_the_last(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media, "MAX_FILES", 3)
    inter = await dc.slash_command("imagine", {"prompt": "four", "count": 4}, user_id=USER)
    first = await result_of(dc, inter)
    (followup,) = await dc.wait_for(
        lambda c: c.method == "POST" and c.path.endswith(inter.token) and c.status == 200
    )
    assert len(first["attachments"]) == 3
    assert first["components"] == []
    assert first["content"].startswith(
        f"#{public_id_of(followup.json)} · nano-banana-2-lite · seed"
    )
    assert len(followup.files) == 1
    assert not followup.json.get("flags", 0) & FLAG_EPHEMERAL
    # Lite cannot upscale: the edits two to a row, and 🎲.
    assert len(followup.json["components"]) == 3
    assert [a["description"] for a in followup.json["attachments"]] == ["Image 4 of 4: four"]


async def test_a_fault_on_a_later_post_sends_only_the_rest(
    dc: FakeDiscordServer,
    flow: FakeFlowServer,
    store: AnyStore,
    bot: Bot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(media, "MAX_FILES", 2)  # four images: two posts
    monkeypatch.setattr(core_delivery, "DELIVERY_BACKOFF", 0.05)
    await slow_job_outliving_its_token(dc, flow, bot, "four", count=4)
    dc.fail_next("POST", CHANNEL_POST, 503, after=1)  # the first post goes, the second fails
    await wait_delivered(store, 1)
    posts = [c for c in dc.calls if post_in(dc.channel_id)(c)]
    made = (await store.get_job(1) or pytest.fail("no job")).public_id
    assert [(c.status, sorted(c.files)) for c in posts] == [
        (200, [f"banana-{made}-1.jpg", f"banana-{made}-2.jpg"]),
        (503, [f"banana-{made}-3.jpg", f"banana-{made}-4.jpg"]),
        (200, [f"banana-{made}-3.jpg", f"banana-{made}-4.jpg"]),  # only the rest, tried again
    ]
    # Where every image went is known, the first post's too (parked with it), for /show.
    urls = [a["url"] for c in (posts[0], posts[2]) for a in c.response["attachments"]]
    assert {i: w["discord"] for i, w in (await store.posted(1)).items()} == dict(
        enumerate(urls, start=1)
    )
    assert posts[0].json["content"].startswith(f"<@{USER}> ")  # the caption and mention once
    assert "content" not in posts[2].json or not posts[2].json["content"]
    assert posts[2].json["components"]  # the buttons on the last post
    assert await store.peek_pending("answer.sent", "1") == []


# Refusals.


async def test_bad_input_is_refused_privately_before_any_upstream_call(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore
) -> None:
    models = models_file.merged(
        ModelTable.builtin(), {"models": {"nano-banana-2-lite": {"max_references": 1}}}
    )
    limit = 200_000
    bot = await start_bot(dc, flow, store, models=models, limits=Limits(max_image_bytes=limit))
    flow.reset_records()
    png = image_bytes("PNG")
    oversize = png + b"\0" * limit
    cases: list[tuple[str, dict[str, tuple[str, bytes, str]], str]] = [
        ("--seed 3", {}, texts.PROMPT_EMPTY),
        ("a fox --model dalle", {}, option_texts.unknown_model("dalle", bot.service.models)),
        ("a fox --count 5", {}, option_texts.bad_count("5")),
        (
            "a fox --model lite",
            {"image1": ("a.png", png, "image/png"), "image2": ("b.png", png, "image/png")},
            option_texts.too_many_references(2, "nano-banana-2-lite", 1),
        ),
        (
            "a fox",
            {"image1": ("scan.png", b"%PDF-1.4 not an image", "image/png")},
            texts.IMAGE_UNREADABLE,
        ),
        (
            "a fox",
            {"image1": ("huge.png", oversize, "image/png")},
            option_texts.image_too_large(len(oversize), limit),
        ),
        (
            "a fox",
            {"image1": ("bomb.png", png_bomb(10_000, 6_000), "image/png")},
            option_texts.image_too_many_pixels(10_000, 6_000, 50_000_000),
        ),
    ]
    try:
        for prompt, attachments, expected in cases:
            inter = await dc.slash_command(
                "imagine", {"prompt": prompt}, user_id=USER, attachments=attachments
            )
            reply = await ephemeral_reply(dc, inter)
            assert reply["content"] == texts.failed(expected), prompt
            original = dc.original_message(inter.id)  # no public "thinking…" left
            assert original is None or original["flags"] & FLAG_EPHEMERAL
    finally:
        await bot.stop()
    assert asked_upstream(flow) == []
    assert await store.get_job(1) is None
    cdn = [c.path for c in dc.calls if c.path.startswith("/attachments/")]
    assert not any(path.endswith("/huge.png") for path in cdn)  # refused by its size field


async def test_upstream_failures_and_admin_alerts(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    await dc.slash_command("help", {}, user_id=ADMIN)  # the admin is a known Discord user
    flow.fail_next(402)  # no credits: an operator problem
    inter = await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
    await dc.wait_for(on_original(inter, content=texts.failed(texts.OPERATOR)))
    admin_dm = dc.dm_channel_id(ADMIN)
    (alert,) = await dc.wait_for(lambda c: c.path == f"/channels/{admin_dm}/messages")
    assert alert.status == 200
    assert alert.json["content"].startswith("⚠️ Operator action needed")
    await wait_delivered(store, 1)


async def test_an_admin_with_dms_closed_gets_the_alert_at_their_next_command(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    await dc.slash_command("help", {}, user_id=ADMIN)  # a known Discord user...
    dc.dms_closed.add(ADMIN)  # ...who takes no DMs from the bot
    bot.refusals.append(f"POST /channels/{dc.dm_channel_id(ADMIN)}/messages -> 403")
    flow.fail_next(402)
    inter = await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
    await dc.wait_for(on_original(inter, content=texts.failed(texts.OPERATOR)))
    to_admin = post_in(dc.dm_channel_id(ADMIN))
    (refused,) = await dc.wait_for(to_admin)
    assert (refused.status, refused.response["code"]) == (403, 50007)
    async with asyncio.timeout(5):
        while not await bot.service.undelivered_alerts():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    dc.dms_closed.clear()  # the admin opened their DMs, and uses the bot
    await dc.slash_command("help", {}, user_id=ADMIN)
    _, alert = await dc.wait_for(to_admin, count=2)
    assert alert.status == 200
    assert alert.json["content"].startswith("⚠️ Operator action needed")
    assert await bot.service.undelivered_alerts() == []


# Rendering.


def noise(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buf, "PNG")
    return buf.getvalue()


def test_fit_recompresses_and_splits_within_discord_limits() -> None:
    images = [
        ResultImage(i, ImageRef(f"m{i}", "a"), 1, "m", "image/png", noise((160, 120)))
        for i in range(1, 5)
    ]
    big = len(images[0].data or b"")
    (parts,) = media.fit(images, stem="x", file_limit=big // 2)
    assert [p.filename for p in parts] == ["x-1.jpg", "x-2.jpg", "x-3.jpg", "x-4.jpg"]
    assert all(len(p.data) <= big // 2 for p in parts)
    with Image.open(io.BytesIO(parts[0].data)) as img:
        assert img.format == "JPEG"

    # The request cap splits messages, in order, each file whole.
    two = media.OVERHEAD + 2 * max(len(p.data) for p in parts)
    split = media.fit(images, stem="x", file_limit=big // 2, request_limit=two)
    assert [len(m) for m in split] == [2, 2]
    assert [p for m in split for p in m] == parts

    # Files within the limit go as they are; at most 10 files go in one message.
    small = [ResultImage(i, ImageRef(f"m{i}", "a"), 1, "m", "image/png", b"png") for i in range(12)]
    messages = media.fit(small, stem="y", file_limit=big)
    assert [len(m) for m in messages] == [10, 2]
    assert messages[0][0] == media.Part("y-0.png", b"png")


async def test_a_first_response_lost_on_its_way_keeps_the_job(
    dc: FakeDiscordServer,
    store: AnyStore,
    bot: Bot,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Not Discord's "too late" (which cancels it, unmade): the connection broke, and whether
    # the user saw the place is unknown. The job was accepted and stored, so it is made.
    async def broken(interaction: discord.Interaction[Any], text: str | None = None) -> bool:
        raise aiohttp.ServerDisconnectedError

    monkeypatch.setattr(interactions, "acknowledge", broken)
    await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
    await wait_delivered(store, 1)
    job = await store.get_job(1)
    assert job is not None
    assert job.state is JobState.DONE
    assert any("ServerDisconnectedError" in (r.exc_text or "") for r in caplog.records)
    caplog.clear()  # the broken first response, logged as it should be
