"""Attacks through what the bot repeats in a group: a name or a prompt it writes back.

Telegram turns any "@word" in a text the bot sends into a mention (and pings that member), and
a caption's "🎲 by @bob" is how the group tells whose press made a picture: whatever the bot
echoes of a user must neither ping someone else nor pass for another member's handle.
"""

from __future__ import annotations

import discord
import pytest

from bot.core import texts
from bot.store.sqlite import SqliteStore
from tests.attacks.conftest import to_chat, until
from tests.e2e.discord import harness as discord_harness
from tests.e2e.telegram.harness import GROUP, OTHER, USER, BotUnderTest
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer


def captions(bot: BotUnderTest, chat: int) -> list[str]:
    return [str(m["caption"]) for m in bot.tg.sent_messages(chat) if "caption" in m]


@pytest.mark.parametrize(
    "first_name",
    [
        "@alice",  # what Telegram itself links as alice's handle
        "\uff20alice",  # a full-width at sign, which looks the same
        "\u202e@alice",  # behind a right-to-left override
        "Bob @alice",  # a mention inside a name
    ],
)
async def test_a_first_name_written_as_a_handle_neither_signs_as_nor_pings_that_member(
    telegram: BotUnderTest, first_name: str
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    await tg.post_message(GROUP, USER, "/imagine a fox --model 2 --count 1", chat_type="supergroup")
    made = (await bot.delivered(1)).public_id
    result = next(m for m in tg.sent_messages(GROUP) if "reply_markup" in m)
    # A member who never set a username is named by their first name, which they choose freely.
    impostor = tg._user(OTHER)
    impostor.update(first_name=first_name, username=None)

    await tg.press_button(GROUP, OTHER, result["message_id"], f"d:{made}:0")
    await bot.delivered(2)
    await until(lambda: any("🎲 by" in c for c in captions(bot, GROUP)))
    [signed] = [line for c in captions(bot, GROUP) for line in c.splitlines() if "🎲 by" in line]
    name = signed.removeprefix(f"from #{made} · 🎲 by ")
    assert name, signed  # the press is still said to be someone else's
    assert not {"@", "\uff20", "\u202e"} & set(name), signed
    assert "alice" in name  # the name they chose, as a name


async def test_a_first_name_written_as_a_handle_is_not_who_a_reuse_form_asks(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    await tg.post_message(GROUP, USER, "/imagine a fox --count 1", chat_type="supergroup")
    made = (await bot.delivered(1)).public_id
    result = next(m for m in tg.sent_messages(GROUP) if "reply_markup" in m)
    tg._user(OTHER).update(first_name="@alice", username=None)

    await tg.press_button(GROUP, OTHER, result["message_id"], f"r:{made}:1")
    [form] = await tg.wait_for("sendMessage", predicate=lambda c: "force_reply" in str(c.params))
    assert str(form.params["text"]).startswith("alice, what should I make of image 1?")
    # It opens for the presser, by a mention of them, whatever their name says.
    [mention] = form.params["entities"]
    assert mention["type"] == "text_mention"
    assert mention["user"]["id"] == OTHER


async def test_a_prompt_naming_a_member_pings_nobody_when_the_queue_is_listed_in_a_group(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    bot.service.scheduler.accounts["alice@example.com"].limit = 0.0  # the job waits
    await tg.post_message(
        GROUP, USER, "/imagine @alice as a clown --count 1", chat_type="supergroup"
    )
    await until(lambda: bot.service.scheduler.position(1) > 0)
    await tg.post_message(GROUP, USER, "/queue", chat_type="supergroup")
    await until(lambda: any("clown" in str(m.get("text")) for m in tg.sent_messages(GROUP)))
    [listed] = [str(m["text"]) for m in tg.sent_messages(GROUP) if "clown" in str(m.get("text"))]
    assert "@alice" not in listed
    assert texts.echoed("@alice as a clown") in listed


@pytest.mark.parametrize(
    "typed",
    [
        "--model @alice",  # an unknown model
        "--count @alice",
        "--ar \u202e@alice",  # behind a right-to-left override
        "--seed @alice",
    ],
)
async def test_a_refusal_quoting_what_was_typed_pings_nobody_in_a_group(
    telegram: BotUnderTest, typed: str
) -> None:
    """A refusal says what was typed wrong; Telegram reads an @handle in what the bot sends
    as a mention of that member, and pings them."""
    bot, tg = telegram, telegram.tg
    await bot.start()
    await tg.post_message(GROUP, USER, f"/imagine a cat {typed}", chat_type="supergroup")
    [refusal] = await tg.wait_for("sendMessage", predicate=to_chat(GROUP))
    said = str(refusal.params["text"])
    assert "alice" in said
    assert "@alice" not in said
    assert "\u202e" not in said


async def test_a_private_prompt_is_not_listed_when_its_owner_asks_for_the_queue_in_a_group(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    bot.service.scheduler.accounts["alice@example.com"].limit = 0.0  # the jobs wait
    await tg.post_message(USER, USER, "/imagine my secret diary page --count 1")
    await tg.post_message(
        GROUP, USER, "/imagine a fox in the group --count 1", chat_type="supergroup"
    )
    await until(lambda: bot.service.scheduler.position(2) > 0)

    def listings() -> list[str]:
        return [str(m.get("text")) for m in tg.sent_messages(GROUP) if "fox" in str(m.get("text"))]

    for command in ("/queue", "/info"):
        before = len(listings())
        await tg.post_message(GROUP, USER, command, chat_type="supergroup")
        await until(lambda: len(listings()) > before)  # noqa: B023 (awaited in this turn)
        listing = listings()[-1]
        # Both jobs are listed (each can be cancelled), the private one without its words.
        assert "secret" not in listing
        assert "diary" not in listing
        assert listing.count("#") == 2, listing
        assert "asked in another chat" in listing

    # Cancelling from the group's panel redraws it the same way.
    panel = next(m for m in tg.sent_messages(GROUP) if "reply_markup" in m and "fox" in m["text"])
    await tg.press_button(GROUP, USER, panel["message_id"], "c:2:0")
    [redrawn] = await tg.wait_for(
        "editMessageText", predicate=lambda c: c.params["message_id"] == panel["message_id"]
    )
    assert "secret" not in str(redrawn.params["text"])
    assert "asked in another chat" in str(redrawn.params["text"])

    await tg.post_message(USER, USER, "/queue")  # privately, it is the owner's to read
    await until(lambda: any("secret" in str(m.get("text")) for m in tg.sent_messages(USER)))


async def test_a_groups_board_never_shows_a_members_private_prompt(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    bot.service.scheduler.accounts["alice@example.com"].limit = 0.0  # the jobs wait
    for words in ("my secret diary page", "another secret"):  # the private chat's own board
        await tg.post_message(USER, USER, f"/imagine {words} --count 1")
    # The group's first job is acknowledged by a status message of its own, the next ones on
    # the board: in that order (sent at once, the commands are checked side by side, and the
    # one acknowledged first could be any, with its prompt on no board).
    await tg.post_message(GROUP, USER, "/imagine a fox --count 1", chat_type="supergroup")
    await tg.wait_for("sendMessage", predicate=lambda c: c.params.get("chat_id") == GROUP)
    for user, words in ((USER, "a fox again"), (OTHER, "a cat")):
        await tg.post_message(GROUP, user, f"/imagine {words} --count 1", chat_type="supergroup")

    def said_in_the_group() -> list[str]:
        return [
            str(c.params.get("text", ""))
            for c in tg.calls
            if c.params.get("chat_id") == GROUP and c.method in ("sendMessage", "editMessageText")
        ]

    # The group's board lists what its members asked there, the private prompts nowhere.
    await until(lambda: any("again" in t and "cat" in t for t in said_in_the_group()))
    assert not any("secret" in t or "diary" in t for t in said_in_the_group())
    assert any("another secret" in str(m.get("text")) for m in tg.sent_messages(USER))


async def test_a_masked_link_in_a_prompt_is_not_a_link_in_the_discord_answers_caption(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: SqliteStore
) -> None:
    """Discord reads Markdown in what a bot posts: a prompt's "[text](address)" would be a link
    the bot vouches for under its picture, its address hidden behind the words (as /queue and
    /history already write it, the caption writes the prompt as typed)."""
    bot = await discord_harness.start_bot(dc, flow, store)
    try:
        prompt = "[Claim your prize](https://example.com/login) **now** ||a cat||"
        inter = await dc.slash_command(
            "imagine", {"prompt": prompt, "count": 1}, user_id=discord_harness.USER
        )
        await dc.wait_for(discord_harness.on_original(inter, files=True))
        message = dc.original_message(inter.id)
        assert message is not None
        caption = message["content"]
        assert discord.utils.escape_markdown(prompt) in caption, caption
        # A prompt of Markdown alone, twice as long written so, is cut to fit before it is
        # written so: no escape in half, and the lines after it kept.
        inter = await dc.slash_command(
            "imagine", {"prompt": "*" * 1990, "count": 1}, user_id=discord_harness.USER
        )
        await dc.wait_for(discord_harness.on_original(inter, files=True))
        message = dc.original_message(inter.id)
        assert message is not None
        _, quoted, *tail = message["content"].split("\n")
        assert 1990 <= len(message["content"]) <= 2000
        assert quoted.startswith("“\\*\\*")
        assert quoted.endswith("\\*…”")
        assert tail == caption.split("\n")[2:]
    finally:
        await bot.stop()
