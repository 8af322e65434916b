"""Issue 15 on Discord, end to end: /show (after a restart too), /history, lineage and /link —
real discord.py against the fake Discord and Flow servers."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from bot.core import history_texts, texts
from bot.core.character_texts import character_created
from bot.core.public_ids import PUBLIC_ID
from tests.conftest import AnyStore, image_bytes, wait_delivered
from tests.e2e.discord.harness import (
    OTHER,
    USER,
    Bot,
    buttons,
    create,
    job_of,
    on_original,
    process,
    public_id_of,
)
from tests.fakes.discord_server import FLAG_EPHEMERAL, FakeDiscordServer, InjectedInteraction
from tests.fakes.flow_server import FakeFlowServer


async def result_of(dc: FakeDiscordServer, inter: InjectedInteraction) -> dict[str, Any]:
    await dc.wait_for(on_original(inter, files=True))
    message = dc.original_message(inter.id)
    assert message is not None
    return message


async def imagine(dc: FakeDiscordServer, prompt: str, **options: Any) -> dict[str, Any]:
    inter = await dc.slash_command("imagine", {"prompt": prompt, **options}, user_id=USER)
    return await result_of(dc, inter)


async def private_reply(dc: FakeDiscordServer, inter: InjectedInteraction) -> dict[str, Any]:
    (reply,) = await dc.wait_for(f"/interactions/{inter.id}/")
    assert reply.json["type"] == 4
    data: dict[str, Any] = reply.json["data"]
    assert data["flags"] & FLAG_EPHEMERAL
    return data


async def kept(store: AnyStore, public_id: str, shown: dict[str, Any]) -> None:
    """Wait until the front end has noted where /show posted the job's images (its last step,
    after the answer is visible)."""
    job = await store.job_by_public_id(public_id)
    assert job is not None
    urls = {n: a["url"] for n, a in enumerate(shown["attachments"], start=1)}
    async with asyncio.timeout(5):
        while await _posted_here(store, job.id) != urls:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.01)


async def _posted_here(store: AnyStore, job_id: int) -> dict[int, str | None]:
    return {i: where.get("discord") for i, where in (await store.posted(job_id)).items()}


def attachments(dc: FakeDiscordServer, message: dict[str, Any]) -> list[bytes]:
    return [dc.attachment_bytes(int(a["id"])) for a in message["attachments"]]


async def test_show_after_a_restart_posts_the_images_again_with_working_buttons(
    dc: FakeDiscordServer, flow: FakeFlowServer, tmp_path: Path
) -> None:
    async with process(dc, flow, tmp_path / "bot.sqlite3"):
        result = await imagine(dc, "a lighthouse", count=2, model="nano-banana-2")
    made = public_id_of(result)
    originals = attachments(dc, result)

    async with process(dc, flow, tmp_path / "bot.sqlite3") as running:  # a new process
        show = await dc.slash_command("show", {"job": made.upper()}, user_id=USER)
        shown = await result_of(dc, show)
        await kept(running.store, made, shown)
        assert shown["content"].startswith(f"#{made} · nano-banana-2 · seed ")
        assert "“a lighthouse”" in shown["content"]
        assert attachments(dc, shown) == originals  # fetched back from Discord's CDN
        assert buttons(shown) == buttons(result)
        assert len(flow.images_requests()) == 1  # nothing made again

        press = await dc.press_button(int(shown["id"]), f"d:{made}:0", user_id=OTHER)
        rerolled = await result_of(dc, press)
        assert f"from #{made} · 🎲 by @user{OTHER}" in rerolled["content"]
        await wait_delivered(running.store, await job_of(running.store, rerolled))
    assert len(flow.images_requests()) == 2


async def test_history_is_private_paged_and_shows_a_job_again(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    made = [public_id_of(await imagine(dc, f"fox {n}", count=1)) for n in range(6)]
    listing = await dc.slash_command("history", {}, user_id=USER)
    await private_reply(dc, listing)
    panel = dc.original_message(listing.id)
    assert panel is not None
    assert panel["flags"] & FLAG_EPHEMERAL
    lines = panel["content"].splitlines()
    assert lines[0] == "Your jobs, newest first (page 1):"
    assert [re.match(rf"\\?#({PUBLIC_ID})", line)[1] for line in lines[1:]] == made[:0:-1]  # type: ignore[index]
    assert "✅ done" in lines[1]
    ids = buttons(panel)
    assert ids[0] == [f"s:{p}:0" for p in made[:0:-1]]
    assert ids[1] == ["hist:1"]

    older = await dc.press_button(int(panel["id"]), "hist:1", user_id=USER)
    (turned,) = await dc.wait_for(f"/interactions/{older.id}/")
    assert turned.json["type"] == 7  # the panel itself, redrawn
    assert f"#{made[0]}" in turned.json["data"]["content"]
    assert buttons(turned.json["data"]) == [[f"s:{made[0]}:0"], ["hist:0"]]

    # The panel shows the older page now: its 🔎 shows that job here.
    show = await dc.press_button(int(panel["id"]), f"s:{made[0]}:0", user_id=USER)
    shown = await result_of(dc, show)
    assert shown["content"].startswith(f"#{made[0]} · ")
    await kept(store, made[0], shown)


async def test_lineage_across_three_generations(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    first = await imagine(dc, "a fox", count=1)
    generations = [public_id_of(first)]
    message = first
    for _ in range(2):
        press = await dc.press_button(int(message["id"]), f"d:{generations[-1]}:0", user_id=USER)
        message = await result_of(dc, press)
        generations.append(public_id_of(message))
    one, two, three = generations

    show = await dc.slash_command("show", {"job": three}, user_id=USER)
    shown = await result_of(dc, show)
    await kept(store, three, shown)
    assert f"from #{two} · 🎲" in shown["content"].splitlines()
    assert buttons(shown)[-1] == [f"s:{two}:0"]  # the parent, one press away
    parent = await dc.press_button(int(shown["id"]), f"s:{two}:0", user_id=USER)
    shown_parent = await result_of(dc, parent)
    assert shown_parent["content"].startswith(f"#{two} · ")
    assert f"from #{one} · 🎲" in shown_parent["content"].splitlines()
    assert buttons(shown_parent)[-1] == [f"s:{one}:0"]
    await kept(store, two, shown_parent)


async def test_show_of_a_failed_job_says_why_and_an_unknown_id_is_one_sentence(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    flow.fail_next(400)
    inter = await dc.slash_command("imagine", {"prompt": "a fox", "count": 1}, user_id=USER)
    await dc.wait_for(on_original(inter, content=None))
    async with asyncio.timeout(5):
        while (job := await store.get_job(1)) is None or not job.state.final:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    show = await dc.slash_command("show", {"job": job.public_id}, user_id=USER)
    await dc.wait_for(on_original(show))
    answer = dc.original_message(show.id)
    assert answer is not None
    assert answer["content"].startswith(f"#{job.public_id} · ")
    assert answer["content"].splitlines()[-1].startswith("❌ ")
    assert answer["attachments"] == []

    unknown = await dc.slash_command("show", {"job": "nothing"}, user_id=USER)
    assert (await private_reply(dc, unknown))["content"] == texts.failed(
        history_texts.no_such_job("nothing")
    )


async def test_history_and_show_name_the_characters_a_job_drew(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, bot: Bot
) -> None:
    created = await create(dc, "Carol", image_bytes(color="red"))
    assert created["content"] == character_created("Carol")
    made = public_id_of(await imagine(dc, "@carol at sea", count=1))

    listing = await dc.slash_command("history", {}, user_id=USER)
    await private_reply(dc, listing)
    panel = dc.original_message(listing.id)
    assert panel is not None
    assert panel["content"].splitlines()[1].endswith("— ✅ done · characters: Carol")
    show = await dc.slash_command("show", {"job": made}, user_id=USER)
    shown = await result_of(dc, show)
    assert "Characters: Carol" in shown["content"].splitlines()
    await kept(store, made, shown)
