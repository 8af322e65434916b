"""Characters on Discord end to end: real discord.py, service, Flow client and store (SQLite
and PostgreSQL), against the fake Discord and the fake Flow API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord

from bot.core import character_texts, rules_texts, texts
from bot.frontends.discord import views
from tests.conftest import image_bytes
from tests.e2e.discord.harness import (
    ADMIN,
    OTHER,
    USER,
    Bot,
    create,
    on_original,
    private_replies,
    process,
)
from tests.fakes.discord_server import (
    FakeDiscordServer,
)
from tests.fakes.flow_server import FakeFlowServer

RED, BLUE = image_bytes(color="red"), image_bytes(color="blue")


async def imagine(dc: FakeDiscordServer, prompt: str, user_id: int = USER) -> dict[str, Any]:
    inter = await dc.slash_command("imagine", {"prompt": prompt, "count": 1}, user_id=user_id)
    await dc.wait_for(on_original(inter, files=True))
    message = dc.original_message(inter.id)
    assert message is not None
    return message


def character_calls(flow: FakeFlowServer) -> list[dict[str, Any]]:
    return [
        r.json for r in flow.requests if r.path.endswith("/characters") and isinstance(r.json, dict)
    ]


async def test_create_from_one_and_two_images_then_draw_by_name(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot
) -> None:
    assert (await create(dc, "Carol", RED))["content"] == character_texts.character_created("Carol")
    assert (await create(dc, "Tom", RED, BLUE))["content"] == character_texts.character_created(
        "Tom"
    )
    assert ["imageReference_2" in c for c in character_calls(flow)] == [False, True]

    message = await imagine(dc, "@carol and @TOM on a bench")
    sent = flow.images_requests()[-1].json
    assert sent is not None
    assert sent["prompt"] == "@character_1 and @character_2 on a bench"
    assert {"character_1", "character_2"} <= sent.keys()
    assert "Characters: Carol, Tom" in message["content"]


async def test_list_shows_a_thumbnail_each_and_delete_removes_one(
    dc: FakeDiscordServer, bot: Bot
) -> None:
    await create(dc, "Carol", RED)
    await create(dc, "Tom", RED, BLUE)
    inter = await dc.slash_command("character list", {}, user_id=USER)
    [listed] = await private_replies(dc, inter)
    assert listed["content"] == "@Carol · 1 picture\n@Tom · 2 pictures"
    assert [a["description"] for a in listed["attachments"]] == ["Carol", "Tom"]

    inter = await dc.slash_command("character delete", {"name": "carol"}, user_id=USER)
    [deleted] = await private_replies(dc, inter)
    assert deleted["content"] == character_texts.character_deleted("Carol")
    inter = await dc.slash_command("character list", {}, user_id=OTHER)
    [empty] = await private_replies(dc, inter)
    assert empty["content"] == character_texts.NO_CHARACTERS_YET


async def test_refusals_are_private_and_cost_no_upstream_call(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot
) -> None:
    await create(dc, "Carol", RED, BLUE)
    before = len([r for r in flow.requests if r.method == "POST"])
    taken = await create(dc, "CAROL", RED)
    assert taken["content"] == texts.failed(character_texts.character_taken("CAROL"))
    bad = await create(dc, "two words", RED)
    assert bad["content"] == texts.failed(character_texts.bad_character_name("two words", 32))
    inter = await dc.slash_command(
        "imagine", {"prompt": "@carol with friends", "model": "nano-banana-2-lite"}, user_id=USER
    )
    [refused] = await private_replies(dc, inter)
    assert refused["content"] == texts.failed(
        character_texts.no_characters_on("Nano Banana 2 Lite")
    )
    assert len([r for r in flow.requests if r.method == "POST"]) == before


async def test_an_unknown_name_is_said_and_a_character_survives_a_restart(
    dc: FakeDiscordServer, flow: FakeFlowServer, tmp_path: Path
) -> None:
    path = tmp_path / "bot.sqlite3"
    async with process(dc, flow, path):
        await create(dc, "Carol", RED)
    async with process(dc, flow, path):
        message = await imagine(dc, "@carol meets @zed")
        sent = flow.images_requests()[-1].json
        assert sent is not None
        assert sent["prompt"] == "@character_1 meets @zed"
        assert "@zed: no character of that name, left as text." in message["content"]


async def test_a_shared_character_is_used_by_another_member_and_a_server_admin_unshares_it(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot
) -> None:
    await create(dc, "Carol", RED)
    inter = await dc.slash_command("character share", {"name": "carol"}, user_id=USER)
    [shared] = await private_replies(dc, inter)
    assert shared["content"] == character_texts.character_shared("Carol")

    await imagine(dc, "@carol dances", user_id=OTHER)
    sent = flow.images_requests()[-1].json
    assert sent is not None
    assert sent["prompt"] == "@character_1 dances"
    inter = await dc.slash_command("character list", {}, user_id=OTHER)
    [listed] = await private_replies(dc, inter)
    assert listed["content"] == "@Carol · 1 picture · shared here"

    inter = await dc.slash_command("character unshare", {"name": "carol"}, user_id=OTHER)
    [refused] = await private_replies(dc, inter)
    assert refused["content"] == texts.failed(character_texts.NOT_YOURS_TO_UNSHARE)
    dc.member_permissions[ADMIN] = int(discord.Permissions(manage_guild=True).value)
    inter = await dc.slash_command("character unshare", {"name": "Carol"}, user_id=ADMIN)
    [undone] = await private_replies(dc, inter)
    assert undone["content"] == character_texts.character_unshared("Carol")


async def test_settings_show_your_characters(dc: FakeDiscordServer, bot: Bot) -> None:
    await create(dc, "Carol", RED)
    inter = await dc.slash_command("settings", {}, user_id=USER)
    [panel] = await private_replies(dc, inter)
    # The panel ends with them, above the day (/info's sentence).
    characters = character_texts.your_characters(["Carol"])
    assert panel["content"].endswith(f"{characters}\n\n{rules_texts.usage(0, 0)}")


async def test_the_message_menu_makes_a_character_of_a_messages_pictures(
    dc: FakeDiscordServer, flow: FakeFlowServer, bot: Bot
) -> None:
    posted = await dc.user_message(
        dc.channel_id,
        OTHER,
        "us",
        attachments=[("a.png", RED, "image/png"), ("b.png", BLUE, "image/png")],
    )
    menu = await dc.message_context_menu(views.MAKE_CHARACTER, int(posted["id"]), user_id=USER)
    await dc.wait_for(f"/interactions/{menu.id}/")
    modal = dc.opened_modal(menu.id)
    field = modal["components"][0]["components"][0]["custom_id"]
    submit = await dc.submit_modal(modal["custom_id"], {field: "Duo"}, user_id=USER)
    [made] = await private_replies(dc, submit)
    assert made["content"] == character_texts.character_created("Duo")
    assert {"imageReference_1", "imageReference_2"} <= character_calls(flow)[-1].keys()

    plain = await dc.user_message(dc.channel_id, OTHER, "no picture here")
    refused = await dc.message_context_menu(views.MAKE_CHARACTER, int(plain["id"]), user_id=USER)
    [reply] = await private_replies(dc, refused)
    assert reply["content"] == views.NO_IMAGES
