"""The first hour as a Telegram user (issue 18): greeting and examples, buttons that say what they
do, an answer to every input, smarter mistakes, groups, one set of words — python-telegram-bot
against the fake Bot API, the real service against the fake Flow server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bot.core import option_texts, texts
from bot.core.domain import GenerationRequest, JobState
from bot.core.people import UserKey
from bot.core.policy import Limits
from bot.frontends.telegram import asking, board, kept, views
from bot.frontends.telegram.status import UNDER_WAY, saying
from tests.conftest import as_uploaded
from tests.e2e.telegram.harness import (
    GROUP,
    OTHER,
    USER,
    BotUnderTest,
    callback_data,
    generations,
    labels,
    png,
    text_of,
    uploads,
    upstream_posts,
)
from tests.fakes.telegram_server import Call, FakeTelegramServer

Json = dict[str, Any]
STICKER = {
    "sticker": {
        "file_id": "CAACAgIAAxkBAAEB",
        "file_unique_id": "AgADsticker",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": "👍",
    }
}


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def running(bot: BotUnderTest, job_id: int) -> bool:
    job = await bot.store.get_job(job_id)
    return job is not None and job.state is JobState.RUNNING


def answer_of(tg: FakeTelegramServer, query_id: str) -> Json:
    call = next(
        c for c in tg.calls_of("answerCallbackQuery") if c.params["callback_query_id"] == query_id
    )
    return {"text": call.params.get("text"), "alert": bool(call.params.get("show_alert"))}


async def answered(tg: FakeTelegramServer, query_id: str) -> Json:
    await tg.wait_for("answerCallbackQuery", predicate=lambda c: query_id in str(c.params))
    return answer_of(tg, query_id)


async def said(tg: FakeTelegramServer, chat_id: int, since: int) -> Call:
    """The first message the bot sent to ``chat_id`` after the ``since``-th call."""
    calls = await tg.wait_for(
        "sendMessage",
        predicate=lambda c: c.params.get("chat_id") == chat_id and tg.calls.index(c) >= since,
    )
    return calls[0]


def message_id(update: Json) -> int:
    return int(update["message"]["message_id"])


def status_of(tg: FakeTelegramServer, chat_id: int, asked: Json) -> int:
    """The id of the status message the bot answered ``asked`` with."""
    return next(
        int(m["message_id"])
        for m in tg.sent_messages(chat_id)
        if m.get("reply_to_message", {}).get("message_id") == message_id(asked)
    )


async def jobs(bot: BotUnderTest) -> list[int]:
    found, job_id = [], 1
    while await bot.store.get_job(job_id) is not None:
        found.append(job_id)
        job_id += 1
    return found


async def result_keyboard(bot: BotUnderTest, chat_id: int = USER) -> Json:
    return next(
        m
        for m in reversed(bot.tg.sent_messages(chat_id))
        if any(b["callback_data"].startswith("u:") for row in labels_of(m) for b in row)
        or any(b["callback_data"].startswith("d:") for row in labels_of(m) for b in row)
    )


def labels_of(message: Json) -> list[list[Json]]:
    return list(message.get("reply_markup", {}).get("inline_keyboard", []))


# 1. Onboarding.


async def test_start_greets_by_name_and_a_tapped_example_is_the_pressers_prompt(
    bot: BotUnderTest,
) -> None:
    await bot.start(limits=Limits(daily_images_per_user=6))
    tg = bot.tg
    await tg.post_message(USER, USER, "/start")
    [greeting] = await tg.wait_for("sendMessage")
    assert text_of(greeting).splitlines() == [
        "Hi User42! Describe a picture and I'll draw it.",
        "Write your own, or tap an example (it makes images for you):",
    ]
    assert labels(greeting.params["reply_markup"]) == [[shown] for shown, _ in texts.EXAMPLES]
    assert callback_data(greeting.params["reply_markup"]) == [["ex:1"], ["ex:2"], ["ex:3"]]
    shown = tg.sent_messages(USER)[-1]

    tapped = await tg.press_button(USER, USER, shown["message_id"], "ex:2")
    await bot.delivered(1)
    assert (await answered(tg, tapped))["text"] is None
    job = await bot.job(1)
    assert isinstance(job.request, GenerationRequest)
    assert job.request.prompt == texts.EXAMPLES[1][1]
    assert (job.owner.user_id, job.owner.reply_to) == (str(USER), str(shown["message_id"]))

    # A tap is paid like any prompt: past the day's limit it is refused, privately.
    again = await tg.press_button(USER, USER, shown["message_id"], "ex:1")
    assert await answered(tg, again) == {"text": option_texts.daily_quota(6), "alert": True}
    forged = await tg.press_button(USER, USER, shown["message_id"], "ex:9")
    assert (await answered(tg, forged))["text"] == views.INVALID_BUTTON
    assert await jobs(bot) == [1]

    # The reference sheet stays in /help.
    await tg.post_message(USER, USER, "/help")
    [sheet] = await tg.wait_for("sendMessage", predicate=lambda c: "Options:" in text_of(c))
    assert "• ⬆️ Upscale 1–4: makes a bigger copy of that image (sent as a file)" in text_of(sheet)


async def test_the_bot_introduces_itself_once_when_added_to_a_group(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.add_bot(GROUP, USER)
    [intro] = await tg.wait_for("sendMessage")
    assert intro.params["chat_id"] == GROUP
    assert text_of(intro) == texts.introduction(
        "@fake_bot",
        "Ask with /imagine a fox in the snow, or mention me (@fake_bot).",
        "/help",
    )
    # Another member taps an example: their own job, answered under the introduction.
    shown = tg.sent_messages(GROUP)[-1]
    await tg.press_button(GROUP, OTHER, shown["message_id"], "ex:3")
    await bot.delivered(1)
    assert (await bot.job(1)).owner.user_id == str(OTHER)

    # A private chat's my_chat_member (a user blocking the bot, say) is not a group to greet.
    await tg.add_bot(OTHER, OTHER, chat_type="private")
    await tg.post_message(USER, USER, "/help")
    await tg.wait_for("sendMessage", predicate=lambda c: c.params["chat_id"] == USER)
    assert [c.params["chat_id"] for c in tg.calls_of("sendMessage")].count(OTHER) == 0


# 3. Buttons anyone understands.


async def test_a_pressed_upscale_shows_done_and_a_second_press_sends_it_again_for_free(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(GROUP, USER, "/imagine a fox --model 2 --count 2", chat_type="supergroup")
    await bot.delivered(1)
    result = await result_keyboard(bot, GROUP)

    bot.flow.latency = 0.3  # the double tap lands while the first upscale is being made
    upscale = f"u:{(await bot.job(1)).public_id}:1"
    first = await tg.press_button(GROUP, USER, result["message_id"], upscale)
    await tg.wait_for("editMessageReplyMarkup")
    double = await tg.press_button(GROUP, USER, result["message_id"], upscale)
    assert await answered(tg, double) == {"text": texts.ON_ITS_WAY, "alert": True}
    await bot.delivered(2)
    assert (await answered(tg, first))["text"] is None
    marked = tg.message(GROUP, result["message_id"])
    assert marked is not None
    assert labels(marked["reply_markup"]) == [
        ["✅ Upscale 1", "✏️ Edit 1"],
        ["⬆️ Upscale 2", "✏️ Edit 2"],
        ["🎲 Draw again"],
    ]
    # Done before its status message had its turn (the group rests after the album): its file
    # in a message of its own.
    [made] = tg.calls_of("sendDocument")
    sent = next(m for m in tg.sent_messages(GROUP) if "document" in m)
    upscaled = len([r for r in bot.flow.requests if r.path.endswith("/upscale")])

    # Anyone pressing it again gets the same file again: no job, no upstream call, no cost.
    again = await tg.press_button(GROUP, OTHER, result["message_id"], upscale)
    assert await answered(tg, again) == {"text": texts.UPSCALE_AGAIN, "alert": False}
    resent = (await tg.wait_for("sendDocument", count=2))[-1]
    assert resent.params["document"] == sent["document"]["file_id"]
    assert resent.files == {}
    assert resent.params["caption"] == made.params["caption"]
    assert resent.params["reply_parameters"]["message_id"] == result["message_id"]
    assert await jobs(bot) == [1, 2]
    assert len([r for r in bot.flow.requests if r.path.endswith("/upscale")]) == upscaled


async def test_a_double_tapped_reroll_starts_one_job(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    result = await result_keyboard(bot)
    taps = [await tg.press_button(USER, USER, result["message_id"], "d:1:0") for _ in range(2)]
    await bot.delivered(2)
    shown = [await answered(tg, tap) for tap in taps]
    assert {"text": texts.ON_ITS_WAY, "alert": True} in shown
    assert await jobs(bot) == [1, 2]
    # Another member's tap is theirs: it counts on its own.
    await tg.press_button(USER, OTHER, result["message_id"], "d:1:0")
    await bot.delivered(3)
    assert (await bot.job(3)).owner.user_id == str(OTHER)


# 4. An answer to every input.


async def test_an_unknown_command_gets_the_list_of_commands(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/imagin a fox")
    reply = await said(tg, USER, 0)
    assert text_of(reply).startswith("I don't know /imagin. Did you mean /imagine? My commands:")
    assert "/queue — " in text_of(reply)
    since = len(tg.calls)
    await tg.post_message(USER, USER, "/draw a cat")
    guessed = await said(tg, USER, since)
    assert text_of(guessed).startswith("I don't know /draw. Did you mean /imagine?")

    # In a group, only a command addressed to this bot is answered: others may be another bot's.
    await tg.post_message(GROUP, USER, "/roll d20", chat_type="supergroup")
    ours = await tg.post_message(GROUP, USER, "/roll@fake_bot d20", chat_type="supergroup")
    answer = await said(tg, GROUP, 0)
    assert answer.params["reply_parameters"]["message_id"] == message_id(ours)
    assert len([c for c in tg.calls_of("sendMessage") if c.params["chat_id"] == GROUP]) == 1
    assert upstream_posts(bot.flow) == []


async def test_stickers_voice_and_video_are_told_what_the_bot_reads(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    voice = {"voice": {"file_id": "AwACvoice", "file_unique_id": "v1", "duration": 2}}
    for content in (STICKER, voice):
        since = len(tg.calls)
        await tg.post_other(USER, USER, content)
        told = await said(tg, USER, since)
        assert text_of(told) == views.TEXT_AND_PHOTOS

    # In a group, only what answers the bot is answered.
    await tg.post_other(GROUP, OTHER, STICKER, chat_type="supergroup")
    await tg.add_bot(GROUP, USER)
    [intro] = await tg.wait_for("sendMessage", predicate=lambda c: c.params["chat_id"] == GROUP)
    shown = tg.sent_messages(GROUP)[-1]
    assert shown["text"] == text_of(intro)
    since = len(tg.calls)
    sent = await tg.post_other(
        GROUP, OTHER, STICKER, chat_type="supergroup", reply_to=shown["message_id"]
    )
    answer = await said(tg, GROUP, since)
    assert answer.params["reply_parameters"]["message_id"] == message_id(sent)
    assert text_of(answer) == views.TEXT_AND_PHOTOS
    assert [c.params["chat_id"] for c in tg.calls_of("sendMessage")].count(GROUP) == 2
    assert upstream_posts(bot.flow) == []


def to_the_board(call: Call) -> bool:
    """A call that says the board (sent anew, or edited)."""
    return call.method in ("sendMessage", "editMessageText") and board.HEADING in text_of(call)


async def test_an_edited_prompt_replaces_its_job_while_it_waits(bot: BotUnderTest) -> None:
    await bot.start(limits=Limits(running_per_user=1))
    tg = bot.tg
    # The first job runs while the second waits behind it (the chat's pace of one message a
    # second, its status and the second's, well within).
    bot.flow.latency = 2.0
    await tg.post_message(USER, USER, "a lighthouse --count 1")
    await until(lambda: bot.service.scheduler.in_flight)
    asked = await tg.post_message(USER, USER, "a tiny robot on the mon --count 1")
    await until(lambda: bot.service.scheduler.position(2) > 0)
    # Each says its place at once: the first on its status message, then the second (asked
    # while the first is open) on the chat's board.
    await tg.wait_for("sendMessage", predicate=lambda c: text_of(c) == saying(UNDER_WAY))
    await tg.wait_for("sendMessage", predicate=lambda c: texts.queued_for_all(1) in text_of(c))
    # The edit waits until the message's job is noted (just after it is queued).
    noted = f"{USER}:{message_id(asked)}"
    async with asyncio.timeout(5):
        while noted not in await bot.store.pending_keys(asking.ASKED, older_than=-60.0):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await tg.edit_message(USER, message_id(asked), "a tiny robot on the moon --count 1")
    await until(lambda: bot.service.scheduler.position(3) > 0)
    assert (await bot.job(2)).state is JobState.CANCELLED
    third = await bot.job(3)
    # The board lists the new version, not the old (the old one's line left it empty: it was
    # removed, and sent anew); the answer replies to the edited message.
    await until(lambda: any("on the moon”" in text_of(c) for c in tg.calls if to_the_board(c)))
    [listing] = [m for m in tg.sent_messages(USER) if board.HEADING in m.get("text", "")]
    assert "on the mon”" not in listing["text"]
    assert third.owner.reply_to == str(message_id(asked))
    await bot.delivered(3)
    prompts = [g["prompt"] for g in generations(bot.flow)]
    assert prompts == ["a lighthouse", "a tiny robot on the moon"]
    bot.flow.latency = 0.0

    # Once it has started (here: finished), the first version stays, and the user is told.
    await tg.edit_message(USER, message_id(asked), "a tiny robot on mars --count 1")
    [late] = await tg.wait_for("sendMessage", predicate=lambda c: text_of(c) == views.EDIT_TOO_LATE)
    assert late.params["reply_parameters"]["message_id"] == message_id(asked)

    # A refused prompt, corrected by an edit, is read again.
    wrong = await tg.post_message(USER, USER, "a cat --modle 2 --count 1")
    await tg.wait_for("sendMessage", predicate=lambda c: "Did you mean --model?" in text_of(c))
    await tg.edit_message(USER, message_id(wrong), "a cat --model 2 --count 1")
    await bot.delivered(4)
    assert generations(bot.flow)[-1]["model"] == "nano-banana-2"


async def test_small_talk_in_a_private_chat_is_asked_about_before_spending_images(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    for chatter in ("hi", "thanks!", "ok 👍", "👍"):
        since = len(tg.calls)
        await tg.post_message(USER, USER, chatter)
        asked = await said(tg, USER, since)
        assert text_of(asked) == texts.chatter(chatter, 4)
        assert labels(asked.params["reply_markup"]) == [[views.DRAW]]
    assert await jobs(bot) == []
    assert upstream_posts(bot.flow) == []

    # Anything else, however short, is a prompt.
    await tg.post_message(USER, USER, "cat --count 1")
    await bot.delivered(1)
    assert generations(bot.flow)[0]["prompt"] == "cat"

    # "🎨 Draw it" draws it after all; the question goes, so a second tap starts nothing.
    question = next(m for m in tg.sent_messages(USER) if m.get("text") == texts.chatter("hi", 4))
    tap = await tg.press_button(USER, USER, question["message_id"], views.DRAW_DATA)
    await bot.delivered(2)
    assert generations(bot.flow)[1]["prompt"] == "hi"
    assert tg.message(USER, question["message_id"]) is None
    assert (await answered(tg, tap))["text"] is None


async def test_a_photo_without_a_caption_is_kept_for_the_next_prompt(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.start()
    tg = bot.tg
    image = png(300, 200, (20, 60, 200))
    await tg.post_photo(USER, USER, image)
    asked = await said(tg, USER, 0)
    assert text_of(asked) == texts.PHOTO_KEPT
    assert upstream_posts(bot.flow) == []

    await tg.post_message(USER, USER, "make it a watercolour --count 1")
    await bot.delivered(1)
    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(image)]
    assert generations(bot.flow)[0]["prompt"] == "make it a watercolour"

    # Used once; and a photo kept too long ago is not used at all.
    await tg.post_message(USER, USER, "a lighthouse --count 1")
    await bot.delivered(2)
    monkeypatch.setattr(kept, "KEEP_SECONDS", 0.0)
    await tg.post_photo(USER, USER, image)
    await tg.wait_for("sendMessage", predicate=lambda c: text_of(c) == texts.PHOTO_KEPT, count=2)
    await tg.post_message(USER, USER, "a storm --count 1")
    await bot.delivered(3)
    assert len(uploads(bot.flow)) == 1
    assert "reference_1" not in generations(bot.flow)[-1]


# 5. Smarter mistakes.


async def test_typos_in_options_get_a_suggestion_or_are_understood(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/imagine a fox --modle pro")
    told = await said(tg, USER, 0)
    assert text_of(told) == texts.failed("I don't know the option --modle. Did you mean --model?")
    since = len(tg.calls)
    await tg.post_message(USER, USER, "/imagine a fox --ar 16:10")
    told = await said(tg, USER, since)
    assert "The closest is 16:9." in text_of(told)
    assert upstream_posts(bot.flow) == []

    await tg.post_message(USER, USER, "/imagine a fox --ar 16;9 --count 1")
    await bot.delivered(1)
    await tg.post_message(USER, USER, "/imagine a fox -ar 9x16 -count 1")
    await bot.delivered(2)
    sent = [(g["prompt"], g["aspectRatio"], g["count"]) for g in generations(bot.flow)]
    assert sent == [("a fox", "16:9", 1), ("a fox", "9:16", 1)]


# 6. Groups.


async def test_edit_asks_the_presser_and_only_their_reply_counts(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(
        GROUP, USER, "/imagine a cabin --model 2 --count 2", chat_type="supergroup", username="ana"
    )
    await bot.delivered(1)
    result = await result_keyboard(bot, GROUP)
    await tg.press_button(GROUP, USER, result["message_id"], "r:1:2", username="ana")
    [ask] = await tg.wait_for(
        "sendMessage", predicate=lambda c: "force_reply" in str(c.params.get("reply_markup"))
    )
    assert (
        text_of(ask)
        == "@ana, what should I make of image 2? Reply to this message with the prompt."
    )
    assert ask.params["reply_markup"]["selective"] is True
    question = tg.sent_messages(GROUP)[-1]

    await tg.post_message(
        GROUP, OTHER, "the cabin in winter --count 1", chat_type="supergroup",
        reply_to=question["message_id"],
    )  # fmt: skip
    await bot.delivered(2)
    theirs = await bot.job(2)
    assert theirs.owner.user_id == str(OTHER)
    assert "reference_1" not in generations(bot.flow)[-1]  # a prompt of their own

    await tg.post_message(
        GROUP, USER, "the cabin at night", chat_type="supergroup", reply_to=question["message_id"]
    )
    await bot.delivered(3)
    source = next(i for i in await bot.results(1) if i.index == 2)
    assert generations(bot.flow)[-1]["reference_1"] == source.ref.media_id

    # Someone without a username is named with a text mention, which opens the field for them.
    tg._user(OTHER)["username"] = None  # a user who never set one
    await tg.press_button(GROUP, OTHER, result["message_id"], "r:1:1")
    [_, ask] = await tg.wait_for(
        "sendMessage",
        count=2,
        predicate=lambda c: "force_reply" in str(c.params.get("reply_markup")),
    )
    [mention] = ask.params["entities"]
    assert (mention["type"], mention["user"]["id"], mention["offset"]) == ("text_mention", OTHER, 0)


async def test_another_members_settings_panel_gives_them_their_own(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(OTHER, OTHER, "/start")  # they have a private chat with the bot
    await tg.wait_for("sendMessage", predicate=lambda c: c.params["chat_id"] == OTHER)
    await tg.post_message(GROUP, USER, "/settings", chat_type="supergroup")
    [sent] = await tg.wait_for("sendMessage", predicate=lambda c: c.params["chat_id"] == GROUP)
    assert text_of(sent).startswith("User42: Your defaults")
    [owner] = sent.params["entities"]
    assert (owner["type"], owner["user"]["id"]) == ("text_mention", USER)
    panel = tg.sent_messages(GROUP)[-1]

    # Someone else's tap: their own panel, in their private chat; nothing saved or redrawn.
    tap = await tg.press_button(GROUP, OTHER, panel["message_id"], "set:m:nano-banana-pro")
    assert await answered(tg, tap) == {"text": views.OTHERS_PANEL_SENT, "alert": True}
    *_, private = await tg.wait_for(
        "sendMessage", predicate=lambda c: c.params["chat_id"] == OTHER, count=2
    )
    assert text_of(private).startswith("Your defaults")
    assert tg.calls_of("editMessageText") == []
    mine = await bot.service.settings(UserKey("telegram", str(OTHER)))
    assert mine.model is None

    # When the bot can't write to them privately, the group gets it, addressed to them.
    tg.fail_next(
        "sendMessage", error_code=403, description="Forbidden: bot can't initiate conversation"
    )
    tap = await tg.press_button(GROUP, OTHER, panel["message_id"], "set:open:m")
    assert await answered(tg, tap) == {"text": views.OTHERS_PANEL_BELOW, "alert": True}
    *_, theirs = await tg.wait_for(
        "sendMessage", predicate=lambda c: c.params["chat_id"] == GROUP and c.error is None, count=2
    )
    assert text_of(theirs).startswith("User43: Your defaults")
    # Their own panel works for them: a tap opens its choices there.
    panel_of_theirs = tg.sent_messages(GROUP)[-1]
    opened = await tg.press_button(GROUP, OTHER, panel_of_theirs["message_id"], "set:open:n")
    await answered(tg, opened)
    [edit] = await tg.wait_for("editMessageText")
    assert edit.params["message_id"] == panel_of_theirs["message_id"]
    assert text_of(edit).startswith("User43: Your defaults")


async def test_a_group_queue_panel_is_only_ever_redrawn_with_its_owners_jobs(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    bot.service.scheduler.accounts["alice@example.com"].limit = 0.0  # everything waits
    for prompt in ("one", "two"):
        await tg.post_message(GROUP, USER, f"/imagine {prompt} --count 1", chat_type="supergroup")
    await until(lambda: bot.service.scheduler.position(2) > 0)
    await tg.post_message(GROUP, USER, "/queue", chat_type="supergroup")
    await tg.wait_for("sendMessage", predicate=lambda c: "Your jobs" in text_of(c))
    panel = tg.sent_messages(GROUP)[-1]

    stranger = await tg.press_button(GROUP, OTHER, panel["message_id"], "c:1:0")
    assert await answered(tg, stranger) == {"text": texts.NOT_YOUR_JOB, "alert": True}
    assert tg.calls_of("editMessageText") == [
        c for c in tg.calls_of("editMessageText") if "Queued" in text_of(c)
    ]
    # An admin's cancel redraws the panel with its owner's jobs, never the admin's.
    admin = await tg.press_button(GROUP, 7, panel["message_id"], "c:1:0")
    assert (await answered(tg, admin))["text"] == texts.CANCELLED
    [redrawn] = await tg.wait_for(
        "editMessageText", predicate=lambda c: c.params["message_id"] == panel["message_id"]
    )
    two = (await bot.job(2)).public_id
    assert text_of(redrawn).splitlines()[1:] == [f"#{two} “two” — {texts.queued(1)}"]
    assert text_of(redrawn).startswith("User42: ")


# 7. Consistent platforms.


async def test_an_edit_keeps_the_sources_shape_and_count_unless_told(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/imagine a fox --ar 16:9 --count 2 --model pro")
    await bot.delivered(1)
    result = await result_keyboard(bot)
    for n, prompt in enumerate(("the fox at night", "the fox at dawn --ar 1:1 --count 1"), 2):
        await tg.press_button(USER, USER, result["message_id"], "r:1:1")
        asks = await tg.wait_for(
            "sendMessage",
            count=n - 1,
            predicate=lambda c: "force_reply" in str(c.params.get("reply_markup")),
        )
        question = tg.sent_messages(USER)[-1]
        assert question["text"] == text_of(asks[-1])
        await bot.parked("reuse")
        await tg.post_message(USER, USER, prompt, reply_to=question["message_id"])
        await bot.delivered(n)
    sent = [(g["model"], g["aspectRatio"], g["count"]) for g in generations(bot.flow)]
    assert sent == [
        ("nano-banana-pro", "16:9", 2),
        ("nano-banana-pro", "16:9", 2),
        ("nano-banana-pro", "1:1", 1),
    ]


async def test_a_running_job_is_cancelled_from_queue(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    bot.flow.latency = 1.0
    asked = await tg.post_message(USER, USER, "/imagine a slow fox --count 1")
    # Noted running in the store (beside its upstream call), too briefly to be told. A slot
    # taken is not yet that: a cancel before the note says "Cancelled." and throws away the
    # call's pictures all the same.
    async with asyncio.timeout(5):
        while not await running(bot, 1):  # noqa: ASYNC110 - a store read
            await asyncio.sleep(0.01)
    await tg.post_message(USER, USER, "/queue")
    await tg.wait_for("sendMessage", predicate=lambda c: "Your jobs" in text_of(c))
    listing = tg.sent_messages(USER)[-1]
    cancel = f"c:{(await bot.job(1)).public_id}:0"
    assert callback_data(listing["reply_markup"]) == [[cancel]]
    stop = await tg.press_button(USER, USER, listing["message_id"], cancel)
    assert (await answered(tg, stop))["text"] == texts.CANCELLED_RUNNING
    [shown] = await tg.wait_for(
        "editMessageText", predicate=lambda c: text_of(c) == texts.CANCELLED_STATUS
    )
    assert shown.params["message_id"] == status_of(tg, USER, asked)
    # The upstream call ends; what it made is thrown away, and nothing is posted.
    await until(lambda: not bot.service.scheduler.in_flight)
    await asyncio.sleep(0.2)
    assert tg.calls_of("sendPhoto") == tg.calls_of("editMessageMedia") == []
    assert (await bot.job(1)).state is JobState.CANCELLED
    assert await bot.results(1) == []
