"""Characters on Telegram end to end: python-telegram-bot against the fake Bot API, the real
service and Flow client against the fake Flow server, a real SQLite store."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.core import character_texts, rules_texts, texts
from bot.frontends.telegram import views
from tests.e2e.telegram.harness import (
    ADMIN,
    GROUP,
    OTHER,
    USER,
    BotUnderTest,
    generations,
    png,
    upstream_posts,
)
from tests.fakes.flow_server import FakeFlowServer

RED, BLUE, GREEN = png(color=(200, 30, 30)), png(color=(30, 30, 200)), png(color=(30, 200, 30))


async def said(bot: BotUnderTest, chat: int, text: str, timeout: float = 5.0) -> None:
    """Wait until the bot wrote ``text`` in ``chat``."""
    async with asyncio.timeout(timeout):
        while not any(m.get("text") == text for m in bot.tg.sent_messages(chat)):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def answer_caption(bot: BotUnderTest) -> str:
    """The caption of the one picture answered: on its status message, or in a reply of its own
    when the answer came before the status message had its turn."""
    [answer] = [c for c in bot.tg.calls if c.method in ("editMessageMedia", "sendPhoto")]
    media = answer.params.get("media")
    return str(media["caption"] if media else answer.params["caption"])


def characters_created(flow: FakeFlowServer) -> list[dict[str, Any]]:
    return [
        r.json for r in flow.requests if r.path.endswith("/characters") and isinstance(r.json, dict)
    ]


async def test_a_captioned_photo_makes_a_character_and_at_name_draws_it(bot: BotUnderTest) -> None:
    await bot.start()
    await bot.tg.post_photo(USER, USER, RED, caption="/character create Carol")
    await said(bot, USER, character_texts.character_created("Carol"))
    [created] = characters_created(bot.flow)
    assert created["displayName"] == "Carol"
    assert "imageReference_2" not in created

    await bot.tg.post_message(USER, USER, "/imagine @carol on a bike --count 1")
    await bot.delivered(1)
    [sent] = generations(bot.flow)
    assert sent["prompt"] == "@character_1 on a bike"
    assert sent["character_1"].startswith("user:")
    assert "Characters: Carol" in answer_caption(bot)


async def test_an_album_makes_a_character_of_two_and_it_goes_beside_a_reference(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    await bot.tg.post_album(USER, USER, [RED, BLUE], "/character create Tom")
    await said(bot, USER, character_texts.character_created("Tom"))
    [created] = characters_created(bot.flow)
    assert {"imageReference_1", "imageReference_2"} <= created.keys()

    await bot.tg.post_photo(USER, USER, GREEN, caption="/imagine @tom holds @1 --count 1")
    await bot.delivered(1)
    [sent] = generations(bot.flow)
    assert sent["prompt"] == "@character_1 holds @reference_1"
    assert {"character_1", "reference_1"} <= sent.keys()


async def test_a_reply_to_a_photo_makes_a_character_and_list_shows_thumbnails(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    photo = await bot.tg.post_photo(USER, USER, RED)
    await bot.tg.post_message(
        USER, USER, "/character create Ann", reply_to=photo["message"]["message_id"]
    )
    await said(bot, USER, character_texts.character_created("Ann"))
    await bot.tg.post_album(USER, USER, [RED, BLUE], "/character create Bob")
    await said(bot, USER, character_texts.character_created("Bob"))

    await bot.tg.post_message(USER, USER, "/character list")
    [album] = await bot.tg.wait_for("sendMediaGroup")
    assert [m["caption"] for m in album.params["media"]] == [
        "@Ann · 1 picture",
        "@Bob · 2 pictures",
    ]
    await bot.tg.post_message(USER, USER, "/character delete ann")
    await said(bot, USER, character_texts.character_deleted("Ann"))
    await bot.tg.post_message(USER, USER, "/character list")
    [single] = await bot.tg.wait_for("sendPhoto")
    assert single.params["caption"] == "@Bob · 2 pictures"


async def test_refusals_are_one_sentence_and_cost_no_upstream_call(bot: BotUnderTest) -> None:
    await bot.start()
    await bot.tg.post_photo(USER, USER, RED, caption="/character create Carol")
    await said(bot, USER, character_texts.character_created("Carol"))
    before = len(upstream_posts(bot.flow))

    await bot.tg.post_photo(USER, USER, RED, caption="/character create CAROL")
    await said(bot, USER, texts.failed(character_texts.character_taken("CAROL")))
    await bot.tg.post_message(USER, USER, "/character create Nobody")
    await said(bot, USER, texts.failed(character_texts.character_count(0)))
    await bot.tg.post_message(USER, USER, "/character")
    await said(bot, USER, views.CHARACTER_USAGE)
    await bot.tg.post_message(USER, USER, "/imagine @carol with everyone --model lite")
    await said(bot, USER, texts.failed(character_texts.no_characters_on("Nano Banana 2 Lite")))
    assert len(upstream_posts(bot.flow)) == before


async def test_an_unknown_name_stays_text_and_another_members_character_is_not_theirs(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    await bot.tg.post_photo(
        GROUP, USER, RED, caption="/character create Carol", chat_type="supergroup"
    )
    await said(bot, GROUP, character_texts.character_created("Carol"))
    await bot.tg.post_message(
        GROUP, OTHER, "/imagine @carol dances --count 1", chat_type="supergroup"
    )
    await bot.delivered(1)
    [sent] = generations(bot.flow)
    assert sent["prompt"] == "@carol dances"
    assert not [k for k in sent if k.startswith("character_")]
    assert "@carol: no character of that name, left as text." in answer_caption(bot)


async def test_a_character_works_after_a_restart(bot: BotUnderTest) -> None:
    await bot.start()
    await bot.tg.post_photo(USER, USER, RED, caption="/character create Carol")
    await said(bot, USER, character_texts.character_created("Carol"))
    await bot.restart()
    await bot.tg.post_message(USER, USER, "/imagine @Carol at sea --count 1")
    await bot.delivered(1)
    assert generations(bot.flow)[0]["prompt"] == "@character_1 at sea"


async def test_a_shared_character_is_used_by_another_member_and_an_admin_unshares_it(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    group: dict[str, Any] = {"chat_type": "supergroup"}
    await bot.tg.post_photo(GROUP, USER, RED, caption="/character create Carol", **group)
    await said(bot, GROUP, character_texts.character_created("Carol"))
    await bot.tg.post_message(GROUP, USER, "/character share carol", **group)
    await said(bot, GROUP, character_texts.character_shared("Carol"))

    await bot.tg.post_message(GROUP, OTHER, "/imagine @carol dances --count 1", **group)
    await bot.delivered(1)
    assert generations(bot.flow)[0]["prompt"] == "@character_1 dances"
    await bot.tg.post_message(GROUP, OTHER, "/character list", **group)
    [shown] = await bot.tg.wait_for(
        "sendPhoto", predicate=lambda c: str(c.params.get("caption")).startswith("@Carol")
    )
    assert shown.params["caption"] == "@Carol · 1 picture · shared here"

    await bot.tg.post_message(GROUP, OTHER, "/character unshare carol", **group)
    await said(bot, GROUP, texts.failed(character_texts.NOT_YOURS_TO_UNSHARE))
    bot.tg.chat_admins[GROUP] = [ADMIN]
    await bot.tg.post_message(GROUP, ADMIN, "/character unshare Carol", **group)
    await said(bot, GROUP, character_texts.character_unshared("Carol"))
    await bot.tg.post_message(GROUP, OTHER, "/imagine @carol dances again --count 1", **group)
    await bot.delivered(2)
    assert generations(bot.flow)[1]["prompt"] == "@carol dances again"


async def test_settings_show_your_characters(bot: BotUnderTest) -> None:
    await bot.start()
    await bot.tg.post_message(USER, USER, "/settings")
    [bare] = await bot.tg.wait_for("sendMessage")
    assert "characters" not in bare.params["text"]
    await bot.tg.post_album(USER, USER, [RED, BLUE], "/character create Tom")
    await said(bot, USER, character_texts.character_created("Tom"))
    await bot.tg.post_message(USER, USER, "/settings")
    panel = (await bot.tg.wait_for("sendMessage", count=3))[-1]
    # The panel ends with them, above the day (/info's sentence).
    characters = character_texts.your_characters(["Tom"])
    assert panel.params["text"].endswith(f"{characters}\n\n{rules_texts.usage(0, 0)}")


async def test_photos_sent_first_then_the_command_make_a_character(bot: BotUnderTest) -> None:
    await bot.start()
    await bot.tg.post_photo(USER, USER, RED)
    await bot.tg.post_photo(USER, USER, BLUE)
    # Each kept photo is answered once it is kept: both are, before the command comes.
    await bot.tg.wait_for(
        "sendMessage", count=2, predicate=lambda c: c.params.get("text") == texts.PHOTO_KEPT
    )
    await bot.tg.post_message(USER, USER, "/character create Pair")
    await said(bot, USER, character_texts.character_created("Pair"))
    assert {"imageReference_1", "imageReference_2"} <= characters_created(bot.flow)[0].keys()


async def test_characters_and_references_over_the_models_budget_are_refused_before_any_download(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    await bot.tg.post_album(USER, USER, [RED, BLUE], "/character create Tom")
    await said(bot, USER, character_texts.character_created("Tom"))
    before = len(upstream_posts(bot.flow))
    photos = [png(color=(c * 20, 90, 90)) for c in range(9)]
    await bot.tg.post_album(USER, USER, photos, "/imagine @tom with all of them --model pro")
    await said(bot, USER, texts.failed(character_texts.over_budget(2, 9, "Nano Banana Pro", 10)))
    assert len(upstream_posts(bot.flow)) == before
    assert len(bot.tg.calls_of("getFile")) == 2  # Tom's two: none of the nine was fetched
