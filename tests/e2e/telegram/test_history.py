"""Issue 15 on Telegram, end to end: /show (after a restart too), /history, lineage and /link —
python-telegram-bot against the fake Bot API and the fake Flow server."""

from __future__ import annotations

import re
from typing import Any

from bot.core import history_texts, texts
from bot.core.character_texts import character_created
from bot.core.public_ids import PUBLIC_ID
from tests.e2e.telegram.harness import (
    GROUP,
    OTHER,
    USER,
    BotUnderTest,
    callback_data,
    labels,
    png,
    text_of,
)
from tests.fakes.telegram_server import Call

Json = dict[str, Any]


def keyboard_message(bot: BotUnderTest, chat_id: int = USER) -> Json:
    """The bot's latest message with an inline keyboard."""
    return next(m for m in reversed(bot.tg.sent_messages(chat_id)) if "reply_markup" in m)


def reposted(call: Call) -> bool:
    """A picture sent again by its file id (/show), not an answer uploaded in a message of its
    own (one done before its status message had its turn)."""
    return not call.files


def said(message: Json) -> str:
    return str(message.get("text") or message.get("caption") or "")


async def test_show_after_a_restart_reposts_by_file_id_with_buttons_that_work_there(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/imagine a fox --model 2 --count 2")
    made = (await bot.delivered(1)).public_id
    [album] = tg.calls_of("sendMediaGroup")
    # Before it is shown there, the group can't press its buttons.
    await tg.post_message(GROUP, USER, "/help", chat_type="supergroup")
    await tg.wait_for("sendMessage", predicate=lambda c: c.params["chat_id"] == GROUP)
    forged = await tg.press_button(
        GROUP, OTHER, tg.sent_messages(GROUP)[-1]["message_id"], f"d:{made}:0"
    )
    await tg.wait_for("answerCallbackQuery")
    assert any(
        c.params.get("text") == texts.JOB_NOT_FOUND
        for c in tg.calls_of("answerCallbackQuery")
        if c.params["callback_query_id"] == forged
    )
    await bot.restart()

    await tg.post_message(GROUP, USER, f"/show #{made.upper()}", chat_type="supergroup")
    [_, shown_album] = await tg.wait_for("sendMediaGroup", count=2)
    # Posted again by the file ids Telegram gave the first time: no bytes uploaded.
    assert shown_album.params["chat_id"] == GROUP
    assert [item["media"] for item in shown_album.params["media"]] == [
        photo[-1]["file_id"]
        for photo in (m["photo"] for m in tg.sent_messages(USER) if "photo" in m)
    ]
    assert not shown_album.files
    assert album.files  # the first answer did upload them
    await tg.wait_for(
        "sendMessage",
        predicate=lambda c: c.params["chat_id"] == GROUP and "reply_markup" in c.params,
    )
    shown = keyboard_message(bot, GROUP)
    assert said(shown).startswith(f"#{made} · nano-banana-2 · seed ")
    assert "“a fox”" in said(shown)
    assert callback_data(shown["reply_markup"])[-1] == [f"d:{made}:0"]
    assert len(bot.flow.images_requests()) == 1

    # Anyone in the group may press the shown result's buttons now.
    await tg.press_button(GROUP, OTHER, shown["message_id"], f"d:{made}:0", username="bob")
    again = await bot.delivered(2)
    answer = keyboard_message(bot, GROUP)
    assert said(answer).splitlines()[-1] == f"from #{made} · 🎲 by @bob"
    assert again.owner.user_id == str(OTHER)
    assert again.owner.chat_id == str(GROUP)
    assert again.parent is not None
    assert again.parent.public_id == made


async def test_history_is_sent_privately_paged_and_shows_a_job_again(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    made = []
    for n in range(6):
        await tg.post_message(USER, USER, f"/imagine fox {n} --count 1")
        made.append((await bot.delivered(n + 1)).public_id)

    await tg.post_message(USER, USER, "/history")
    [listing] = await tg.wait_for(
        "sendMessage", predicate=lambda c: text_of(c).startswith("Your jobs")
    )
    lines = text_of(listing).splitlines()
    assert [re.match(f"#({PUBLIC_ID}) ", line)[1] for line in lines[1:]] == made[:0:-1]  # type: ignore[index]
    assert "“fox 5” — ✅ done" in lines[1]
    keys = labels(listing.params["reply_markup"])
    assert keys[:5] == [[f"🔎 Show #{p}"] for p in made[:0:-1]]
    assert keys[5] == ["Older ›"]

    panel = keyboard_message(bot)
    await tg.press_button(USER, USER, panel["message_id"], "hist:1")
    [page] = await tg.wait_for("editMessageText", predicate=lambda c: "(page 2)" in text_of(c))
    assert f"#{made[0]}" in text_of(page)
    assert labels(page.params["reply_markup"]) == [[f"🔎 Show #{made[0]}"], ["‹ Newer"]]

    await tg.press_button(USER, USER, panel["message_id"], f"s:{made[0]}:0")
    photos = await tg.wait_for("sendPhoto", predicate=reposted)
    assert photos[-1].params["caption"].startswith(f"#{made[0]} · ")
    assert isinstance(photos[-1].params["photo"], str)  # by file id

    # Asked in a group, the history goes to the private chat.
    await tg.post_message(GROUP, USER, "/history", chat_type="supergroup")
    [sent] = await tg.wait_for("sendMessage", predicate=lambda c: c.params["chat_id"] == GROUP)
    assert text_of(sent) == history_texts.HISTORY_SENT
    privately = [c for c in tg.calls_of("sendMessage") if text_of(c).startswith("Your jobs")]
    assert [c.params["chat_id"] for c in privately] == [USER, USER]
    # Someone else's press on the panel is refused, and redraws nothing.
    edits = len(tg.calls_of("editMessageText"))
    forged = await tg.press_button(USER, OTHER, panel["message_id"], "hist:0")
    await tg.wait_for(
        "answerCallbackQuery", predicate=lambda c: c.params["callback_query_id"] == forged
    )
    assert len(tg.calls_of("editMessageText")) == edits


async def test_lineage_across_three_generations(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    generations = [(await bot.delivered(1)).public_id]
    for n in (2, 3):
        result = keyboard_message(bot)
        await tg.press_button(USER, USER, result["message_id"], f"d:{generations[-1]}:0")
        generations.append((await bot.delivered(n)).public_id)
    one, two, three = generations
    assert f"from #{two} · 🎲" in said(keyboard_message(bot)).splitlines()

    await tg.post_message(USER, USER, f"/show {three}")
    photos = await tg.wait_for("sendPhoto", predicate=reposted)
    shown = photos[-1].params
    assert shown["caption"].startswith(f"#{three} · ")
    assert f"from #{two} · 🎲" in shown["caption"].splitlines()
    assert labels(shown["reply_markup"])[-1] == [f"🔎 Show #{two}"]
    assert callback_data(shown["reply_markup"])[-1] == [f"s:{two}:0"]

    message = keyboard_message(bot)
    await tg.press_button(USER, USER, message["message_id"], f"s:{two}:0")
    photos = await tg.wait_for("sendPhoto", count=2, predicate=reposted)
    parent = photos[-1].params
    assert parent["caption"].startswith(f"#{two} · ")
    assert f"from #{one} · 🎲" in parent["caption"].splitlines()
    assert callback_data(parent["reply_markup"])[-1] == [f"s:{one}:0"]


async def test_link_gives_a_code_in_private_only(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(GROUP, USER, "/link", chat_type="supergroup")
    [refused] = await tg.wait_for("sendMessage", predicate=lambda c: c.params["chat_id"] == GROUP)
    assert text_of(refused) == history_texts.LINK_PRIVATE
    await tg.post_message(USER, USER, "/link")
    [offer] = await tg.wait_for("sendMessage", predicate=lambda c: c.params["chat_id"] == USER)
    assert re.search(r"Your link code: [0-9a-z]{4}-[0-9a-z]{4}\n", text_of(offer))
    assert "Discord" in text_of(offer)
    await tg.post_message(USER, USER, "/link off")
    replies = await tg.wait_for(
        "sendMessage", count=2, predicate=lambda c: c.params["chat_id"] == USER
    )
    assert text_of(replies[-1]) == history_texts.NOT_LINKED


async def test_history_and_show_name_the_characters_a_job_drew(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_photo(USER, USER, png(), caption="/character create Carol")
    await tg.wait_for(
        "sendMessage", predicate=lambda c: text_of(c) == character_created("Carol"), timeout=10
    )
    await tg.post_message(USER, USER, "/imagine @carol at sea --count 1")
    made = (await bot.delivered(1)).public_id

    await tg.post_message(USER, USER, "/history")
    [listing] = await tg.wait_for(
        "sendMessage", predicate=lambda c: text_of(c).startswith("Your jobs")
    )
    assert text_of(listing).splitlines()[1].endswith("— ✅ done · characters: Carol")
    await tg.post_message(USER, USER, f"/show {made}")
    [shown] = await tg.wait_for("sendPhoto")  # the answer was its status message, edited
    assert "Characters: Carol" in shown.params["caption"].splitlines()
