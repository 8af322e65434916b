"""The Telegram front end end to end: python-telegram-bot against the fake Bot API, the real
service and Flow client against the fake Flow server, a real SQLite store, one event loop."""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.config import Secret
from bot.core import models_file, option_texts, rules_texts, texts
from bot.core.domain import GenerationRequest, JobState
from bot.core.models_table import ModelTable
from bot.core.people import UserKey
from bot.core.policy import Limits
from bot.core.service import delivery, progress
from bot.frontends.telegram import board, views
from bot.frontends.telegram.status import RESULT_HERE, UNDER_WAY, saying
from tests.conftest import as_uploaded
from tests.e2e.telegram.harness import (
    ADMIN,
    GROUP,
    LOCAL,
    OTHER,
    PUBLIC,
    TOKEN,
    USER,
    BotUnderTest,
    callback_data,
    generations,
    labels,
    png,
    png_header,
    text_of,
    uploads,
    upstream_posts,
)
from tests.fakes.flow_server import jpeg
from tests.fakes.telegram_server import Call, FakeTelegramServer

Json = dict[str, Any]


@pytest.fixture(params=[PUBLIC, LOCAL])
def api(request: pytest.FixtureRequest) -> str:
    """Each test runs with the default Bot API (api.telegram.org) and with a local one."""
    return str(request.param)


def keyboard_message(bot: BotUnderTest, chat_id: int = USER) -> Json:
    """The bot's latest message with an inline keyboard."""
    return next(m for m in reversed(bot.tg.sent_messages(chat_id)) if "reply_markup" in m)


def answered(bot: BotUnderTest, *query_ids: str) -> None:
    """Every callback query was answered, and none twice (the fake refuses a second answer)."""
    assert set(query_ids) <= bot.tg.answered_callbacks
    assert all(c.error is None for c in bot.tg.calls_of("answerCallbackQuery"))


def answer_text(bot: BotUnderTest, query_id: str) -> object:
    calls = bot.tg.calls_of("answerCallbackQuery")
    return next(c.params.get("text") for c in calls if c.params["callback_query_id"] == query_id)


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait for state the bot writes to its store (no event to wait on from outside)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def runs(bot: BotUnderTest, job_id: int) -> None:
    """Until the store says job ``job_id`` runs."""
    job = await bot.stored(job_id)
    async with asyncio.timeout(5):
        while job.state is not JobState.RUNNING:
            await asyncio.sleep(0.01)
            job = await bot.job(job_id)


# -- ways to ask ---------------------------------------------------------------------------


async def test_imagine_with_flags_sends_an_album_then_one_keyboard(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    # The bot runs the code of the Bot API it was configured for (only the route is the test's).
    expected = "https://api.telegram.org/bot" if bot.api == PUBLIC else f"{tg.root}/bot"
    assert bot.front_end._app.bot.base_url == expected + TOKEN
    assert [c["command"] for c in tg.commands["default"]] == [
        "imagine",
        "settings",
        "queue",
        "character",
        "info",
        "history",
        "show",
        "link",
        "help",
    ]
    # A group's admins see /group besides (and nobody sees /admin: it is for BOT_ADMINS).
    admins = [c["command"] for c in tg.commands["all_chat_administrators"]]
    assert admins == [
        "imagine",
        "settings",
        "queue",
        "character",
        "info",
        "history",
        "show",
        "link",
        "help",
        "group",
    ]
    asked = await tg.post_message(
        USER, USER, "/imagine a red fox --ar 16:9 --model pro --count 2 --seed 5"
    )
    await bot.delivered(1)

    # The status message says where the job is; answered at once, it is never edited to
    # "generating", and becomes the album's keyboard message: three calls in all.
    status_call = tg.calls_of("sendMessage")[0]
    assert text_of(status_call) == saying(UNDER_WAY)
    assert status_call.params["reply_parameters"]["message_id"] == asked["message"]["message_id"]
    [keyboard_edit] = tg.calls_of("editMessageText")
    status_id = keyboard_edit.params["message_id"]
    assert tg.calls_of("deleteMessage") == []
    assert [c.method for c in tg.calls if c.params.get("chat_id") == USER] == [
        "sendMessage",
        "sendMediaGroup",
        "editMessageText",
    ]
    [album] = tg.calls_of("sendMediaGroup")
    assert tg.media_bytes(album) == await bot.generated(1)
    assert album.params["reply_parameters"]["message_id"] == asked["message"]["message_id"]
    # The album's images are numbered as the buttons are.
    assert [item["caption"] for item in album.params["media"]] == ["Image 1 of 2", "Image 2 of 2"]
    keyboard = keyboard_message(bot)
    made = (await bot.job(1)).public_id
    assert keyboard["message_id"] == status_id
    assert keyboard["text"] == f"#{made} · nano-banana-pro · seed 5 · 16:9\n“a red fox”"
    assert labels(keyboard["reply_markup"]) == [
        ["⬆️ Upscale 1", "✏️ Edit 1"],
        ["⬆️ Upscale 2", "✏️ Edit 2"],
        ["🎲 Draw again"],
    ]
    assert callback_data(keyboard["reply_markup"]) == [
        [f"u:{made}:1", f"r:{made}:1"],
        [f"u:{made}:2", f"r:{made}:2"],
        [f"d:{made}:0"],
    ]
    assert generations(bot.flow) == [
        {
            "prompt": "a red fox",
            "model": "nano-banana-pro",
            "aspectRatio": "16:9",
            "count": 2,
            "seed": 5,
            "email": "alice@example.com",
        }
    ]


async def test_a_fault_on_the_keyboard_message_does_not_send_the_album_again(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "DELIVERY_BACKOFF", 0.05)
    await bot.start()
    tg = bot.tg
    bot.flow.latency = 0.2
    await tg.post_message(USER, USER, "/imagine two foxes --count 2")
    await tg.wait_for("sendMessage")  # the status message: it becomes the keyboard's
    tg.fail_next("editMessageText", error_code=502, description="Bad Gateway")
    await bot.delivered(1)

    [album] = tg.calls_of("sendMediaGroup")
    keyboards = [c for c in tg.calls_of("editMessageText") if "reply_markup" in c.params]
    assert [c.error for c in keyboards] == ["Bad Gateway", None]
    keyboard = next(m for m in tg.sent_messages(USER) if "reply_markup" in m)
    assert keyboards[-1].params["message_id"] == keyboard["message_id"]
    assert tg.media_bytes(album) == await bot.generated(1)
    assert await bot.store.peek_pending("answer.sent", "1") == []  # forgotten once whole


async def test_an_album_sent_before_a_restart_is_not_sent_again(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "DELIVERY_BACKOFF", 60.0)  # no second try in this process
    await bot.start()
    tg = bot.tg
    bot.flow.latency = 0.2
    await tg.post_message(USER, USER, "/imagine two foxes --count 2")
    await tg.wait_for("sendMessage")  # the status message: it becomes the keyboard's
    tg.fail_next("editMessageText", error_code=502, description="Bad Gateway")
    await tg.wait_for("editMessageText")  # the keyboard failed after the album...
    await bot.restart()  # ...and the process ended before its next try
    await bot.delivered(1)
    assert len(tg.calls_of("sendMediaGroup")) == 1
    keyboards = [c for c in tg.calls_of("editMessageText") if "reply_markup" in c.params]
    assert [c.error for c in keyboards] == ["Bad Gateway", None]


async def test_photo_with_caption_is_the_reference_at_its_best_size(bot: BotUnderTest) -> None:
    await bot.start()
    image = png(1000, 600)
    await bot.tg.post_photo(USER, USER, image, caption="/imagine make it blue --count 1")
    job = await bot.delivered(1)

    [upload] = uploads(bot.flow)
    assert upload.body == as_uploaded(image)  # the original, not one of Telegram's smaller sizes
    assert "reference_1" in generations(bot.flow)[0]
    [photo] = bot.tg.calls_of("editMessageMedia")  # the status message becomes the answer
    assert bot.tg.media_bytes(photo) == await bot.generated(1)
    assert isinstance(job.request, GenerationRequest)
    seed = job.request.seed
    # Lite can't upscale: no upscale buttons, and the caption says how to get them.
    assert photo.params["media"]["caption"] == (
        f"#{job.public_id} · nano-banana-2-lite · seed {seed} · 1:1\n“make it blue”\n"
        "nano-banana-2-lite can't upscale; for ⬆️ Upscale buttons, use --model 2."
    )
    assert labels(photo.params["reply_markup"]) == [["✏️ Edit 1"], ["🎲 Draw again"]]


async def test_album_with_the_caption_on_its_second_item_is_one_request(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    red, blue = png(color=(255, 0, 0)), png(color=(0, 0, 255))
    await bot.tg.post_photo(USER, USER, red, media_group_id="album-1")
    second = await bot.tg.post_photo(
        USER, USER, blue, media_group_id="album-1", caption="/imagine mix these --count 1"
    )
    await bot.delivered(1)

    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(red), as_uploaded(blue)]
    [request] = generations(bot.flow)
    assert {"reference_1", "reference_2"} <= set(request)
    status_call = bot.tg.calls_of("sendMessage")[0]
    assert status_call.params["reply_parameters"]["message_id"] == second["message"]["message_id"]
    assert await bot.store.pending_keys("album", older_than=0) == []


async def test_a_full_album_is_taken_at_once(bot: BotUnderTest) -> None:
    bot.album_wait = 30.0  # ten items is Telegram's maximum: no need to wait for more
    await bot.start()
    photos = [png(color=(c * 25, 100, 100)) for c in range(10)]
    await bot.tg.post_album(USER, USER, photos, "/imagine a collage --count 1")
    await bot.delivered(1)
    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(p) for p in photos]


async def test_an_album_parked_before_a_restart_is_still_answered(bot: BotUnderTest) -> None:
    bot.album_wait = 30.0  # the first process stops long before its timer would fire
    await bot.start()
    image = png(color=(0, 90, 0))
    await bot.tg.post_photo(USER, USER, image, media_group_id="g", caption="/imagine x --count 1")
    await bot.parked("album")

    bot.album_wait = 0.2
    await bot.restart()
    await bot.delivered(1)
    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(image)]


async def test_reply_with_imagine_to_a_users_photo_in_a_group(bot: BotUnderTest) -> None:
    await bot.start()
    image = png(color=(10, 200, 10))
    photo = await bot.tg.post_photo(GROUP, USER, image, chat_type="supergroup")  # not for the bot
    await bot.tg.post_message(
        GROUP,
        USER,
        "/imagine@fake_bot make it blue --count 1",
        chat_type="supergroup",
        reply_to=photo["message"]["message_id"],
    )
    await bot.delivered(1)
    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(image)]
    assert generations(bot.flow)[0]["prompt"] == "make it blue"


async def test_private_plain_text_caption_and_reply_to_the_bots_photo(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "a cat on a roof --count 1")
    await bot.delivered(1)
    result = next(m for m in tg.sent_messages(USER) if "photo" in m)

    await tg.post_message(USER, USER, "the same cat at night", reply_to=result["message_id"])
    await bot.delivered(2)
    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(g) for g in await bot.generated(1)]

    image = png(color=(0, 0, 120))
    await tg.post_photo(USER, USER, image, caption="make it a watercolour --count 1")
    await bot.delivered(3)
    prompts = [r["prompt"] for r in generations(bot.flow)]
    assert prompts == ["a cat on a roof", "the same cat at night", "make it a watercolour"]
    assert uploads(bot.flow)[-1].body == as_uploaded(image)


async def test_every_way_of_asking_in_a_group_works_with_privacy_mode_on(
    bot: BotUnderTest,
) -> None:
    """Privacy mode (Telegram's default) hides from the bot every group message that isn't a
    command, a mention of it or a reply to it: each way of asking must be one of those."""
    await bot.start()
    tg = bot.tg
    assert tg.privacy_mode

    async def ask(post: Callable[[], Awaitable[Json]], job_id: int, prompt: str) -> Json:
        posted = await post()
        assert "update_id" in posted, f"{prompt!r} never reached the bot"
        await bot.delivered(job_id)
        assert (await bot.job(job_id)).state is JobState.DONE
        assert generations(bot.flow)[-1]["prompt"] == prompt
        return posted

    def say(text: str, user: int = USER, **kw: Any) -> Callable[[], Awaitable[Json]]:
        return lambda: tg.post_message(GROUP, user, text, chat_type="supergroup", **kw)

    await ask(say("/imagine one --count 1"), 1, "one")
    await ask(say("/imagine@fake_bot two --count 1"), 2, "two")
    await ask(say("@fake_bot three --count 1"), 3, "three")
    image = png(color=(200, 0, 200))
    await ask(
        lambda: tg.post_photo(
            GROUP, USER, image, caption="/imagine four --count 1", chat_type="supergroup"
        ),
        4,
        "four",
    )
    await ask(
        lambda: tg.post_document(
            GROUP, USER, image, "r.png", "image/png", "@fake_bot five --count 1",
            chat_type="supergroup",
        ),
        5,
        "five",
    )  # fmt: skip
    theirs = await tg.post_photo(GROUP, OTHER, image, chat_type="supergroup")  # not for the bot
    await ask(say("/imagine six --count 1", reply_to=theirs["message"]["message_id"]), 6, "six")
    result = next(m for m in reversed(tg.sent_messages(GROUP)) if "photo" in m)
    await ask(say("seven --count 1", OTHER, reply_to=result["message_id"]), 7, "seven")
    reuse = await tg.press_button(GROUP, USER, result["message_id"], "r:7:1")
    await bot.parked("reuse")
    ask_for_prompt = tg.sent_messages(GROUP)[-1]
    await ask(say("eight --count 1", reply_to=ask_for_prompt["message_id"]), 8, "eight")
    answered(bot, reuse)
    assert [len([k for k in g if k.startswith("reference_")]) for g in generations(bot.flow)] == [
        0, 0, 0, 1, 1, 1, 1, 1,
    ]  # fmt: skip


async def test_an_album_in_a_group_needs_privacy_mode_off(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    pictures = [png(color=(9, 9, 200)), png(color=(200, 9, 9))]
    # With privacy mode on, only the captioned picture reaches the bot: it says so, rather
    # than make something from half of what was sent.
    ask = "/imagine mix --count 1"
    album = await tg.post_album(GROUP, USER, pictures, ask, chat_type="supergroup")
    [refusal] = await tg.wait_for("sendMessage", predicate=lambda c: c.params["chat_id"] == GROUP)
    assert text_of(refusal) == texts.failed(views.ALBUM_CUT)
    assert refusal.params["reply_parameters"]["message_id"] == album[0]["message"]["message_id"]
    assert upstream_posts(bot.flow) == []
    assert await bot.store.get_job(1) is None

    tg.privacy_mode = False  # privacy off in BotFather, or the bot made an admin of the group
    await tg.post_album(GROUP, USER, pictures, ask, chat_type="supergroup")
    await bot.delivered(1)
    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(p) for p in pictures]


@pytest.mark.parametrize("privacy_mode", [True, False])
async def test_groups_answer_mentions_commands_and_replies_to_the_bot_only(
    bot: BotUnderTest, privacy_mode: bool
) -> None:
    # Privacy mode off (or the bot an admin): it sees everything, and must pick out its own.
    bot.tg.privacy_mode = privacy_mode
    await bot.start()
    tg = bot.tg
    await tg.post_message(GROUP, USER, "a fox in the snow", chat_type="supergroup")
    await tg.post_message(GROUP, USER, "@fake_bot a fox --count 1", chat_type="supergroup")
    await bot.delivered(1)
    assert [r["prompt"] for r in generations(bot.flow)] == ["a fox"]
    assert await bot.store.get_job(2) is None

    result = next(m for m in tg.sent_messages(GROUP) if "photo" in m)
    await tg.post_message(
        GROUP, OTHER, "the fox at dawn", chat_type="supergroup", reply_to=result["message_id"]
    )
    await bot.delivered(2)
    assert (await bot.job(2)).owner.user_id == str(OTHER)
    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(g) for g in await bot.generated(1)]


async def test_document_with_an_image_type_is_a_reference(bot: BotUnderTest) -> None:
    await bot.start()
    image = png(color=(0, 128, 0))
    await bot.tg.post_document(
        USER, USER, image, "ref.png", "image/png", caption="/imagine blend it --count 1"
    )
    await bot.delivered(1)
    assert [u.body for u in uploads(bot.flow)] == [as_uploaded(image)]


# -- buttons -------------------------------------------------------------------------------


async def test_upscale_reroll_and_reuse_buttons(bot: BotUnderTest) -> None:
    await bot.start()
    tg, flow = bot.tg, bot.flow
    await tg.post_message(USER, USER, "/imagine a fox --model 2 --count 2 --seed 11")
    await bot.delivered(1)
    keyboard = keyboard_message(bot)
    first, second = await bot.results(1)

    made = (await bot.job(1)).public_id
    upscale = await tg.press_button(USER, USER, keyboard["message_id"], f"u:{made}:1")
    upscaled = (await bot.delivered(2)).public_id
    # The file, uncompressed, replying to the result: sent as a reply of its own when it is done
    # before its status message had its turn (the chat's budget rests after the album), else in
    # that status message's place. Which comes first is the machine's speed (the rule itself:
    # test_status_order.py); the answer is the same.
    statuses = [c for c in tg.calls_of("sendMessage") if replies_to(c, keyboard["message_id"])]
    [document] = tg.calls_of("editMessageMedia" if statuses else "sendDocument")
    assert list(document.files.values()) == [jpeg((128, 96), 2, f"{first.ref.media_id} 2k")]
    caption = document.params["media"]["caption"] if statuses else document.params["caption"]
    assert caption == f"#{upscaled} · Upscaled image 1 of #{made} to 2k · nano-banana-2"
    assert replies_to(statuses[0] if statuses else document, keyboard["message_id"])
    assert "reply_markup" not in document.params

    # A button posted before jobs had public ids carries the job's number: it still works.
    reroll = await tg.press_button(USER, USER, keyboard["message_id"], "d:1:0")
    await bot.delivered(3)
    again = generations(flow)[-1]
    assert (again["prompt"], again["model"], again["count"]) == ("a fox", "nano-banana-2", 2)
    assert again["seed"] != 11

    reuse = await tg.press_button(USER, USER, keyboard["message_id"], f"r:{made}:2")
    [ask] = await tg.wait_for(
        "sendMessage", predicate=lambda c: "force_reply" in c.params.get("reply_markup", {})
    )
    assert ask.params["reply_markup"]["force_reply"] is True
    assert text_of(ask) == "What should I make of image 2? Reply to this message with the prompt."
    asked = next(m for m in tg.sent_messages(USER) if m.get("text") == text_of(ask))
    await bot.parked("reuse")  # the pending prompt is parked right after the question
    await tg.post_message(USER, USER, "the fox at night --count 1", reply_to=asked["message_id"])
    await bot.delivered(4)
    assert generations(flow)[-1]["reference_1"] == second.ref.media_id
    assert uploads(flow) == []
    answered(bot, upscale, reroll, reuse)


async def test_forged_and_stale_buttons_are_refused(bot: BotUnderTest) -> None:
    await bot.start()
    await bot.tg.post_message(USER, USER, "/settings")
    await bot.tg.wait_for("sendMessage")
    message_id = bot.tg.sent_messages(USER)[-1]["message_id"]
    press = bot.tg.press_button
    garbage = await press(USER, USER, message_id, "u:1")
    too_long = await press(USER, USER, message_id, "u:1:1" + "0" * 60)
    unknown_job = await press(USER, USER, message_id, "d:999:0")
    await bot.tg.wait_for("answerCallbackQuery", count=3)
    assert answer_text(bot, garbage) == views.INVALID_BUTTON
    assert answer_text(bot, too_long) == views.INVALID_BUTTON
    # A refused press is told to the presser alone, never in the chat.
    assert answer_text(bot, unknown_job) == texts.JOB_NOT_FOUND
    assert len(bot.tg.calls_of("sendMessage")) == 1  # the /settings panel
    assert bot.tg.calls_of("editMessageText") == []
    answered(bot, garbage, too_long, unknown_job)
    assert upstream_posts(bot.flow) == []


async def test_settings_are_saved_shown_and_used(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/settings")
    await tg.wait_for("sendMessage")
    panel = keyboard_message(bot)
    # A labelled row per setting, as on Discord: what it is, and what applies now.
    assert labels(panel["reply_markup"]) == [
        ["Model: nano-banana-2-lite (bot default)"],
        ["Aspect ratio: 1:1 (bot default)"],
        ["Images per prompt: 4 (bot default)"],
        ["Upscale to: 2k (bot default)"],
        ["Language: your app's language (bot default)"],
        [views.RESET_LABEL],
    ]
    assert panel["text"].splitlines()[1:] == [
        "Model: nano-banana-2-lite (bot default)",
        "Aspect ratio: 1:1 (bot default)",
        "Images per prompt: 4 (bot default)",
        "Upscale to: 2k (bot default)",
        "Language: your app's language (bot default)",
        "",
        rules_texts.usage(0, 0),  # and the day, under what applies
    ]
    assert callback_data(panel["reply_markup"])[0] == ["set:open:m"]
    assert callback_data(panel["reply_markup"])[-1] == [views.RESET]

    async def press(data: str) -> str:
        query = await tg.press_button(USER, USER, panel["message_id"], data)
        await tg.wait_for("answerCallbackQuery", predicate=lambda c: query in str(c.params))
        return query

    opened = await press("set:open:m")
    await tg.wait_for("editMessageText")
    choices = tg.message(USER, panel["message_id"])
    assert choices is not None
    assert labels(choices["reply_markup"]) == [["✓ lite", "2", "pro"], [views.BACK]]
    assert callback_data(choices["reply_markup"])[0] == [
        "set:m:nano-banana-2-lite",
        "set:m:nano-banana-2",
        "set:m:nano-banana-pro",
    ]
    queries = [opened]
    for data in ("set:m:nano-banana-pro", "set:n:1", "set:ar:16:9", "set:m:dalle", "set:zz:1"):
        queries.append(await press(data))
    answered(bot, *queries)
    assert answer_text(bot, queries[1]) == views.SAVED
    assert answer_text(bot, queries[4]) == option_texts.unknown_model("dalle", bot.service.models)
    assert answer_text(bot, queries[5]) == views.INVALID_BUTTON
    # The choices, then each saved choice re-renders the panel (at the chat's pace: one message
    # a second).
    await tg.wait_for("editMessageText", count=4)
    rendered = bot.tg.message(USER, panel["message_id"])
    assert rendered is not None
    assert labels(rendered["reply_markup"])[:3] == [
        ["Model: nano-banana-pro"],
        ["Aspect ratio: 16:9"],
        ["Images per prompt: 1"],
    ]

    await tg.post_message(USER, USER, "/imagine a fox")
    await bot.delivered(1)
    request = generations(bot.flow)[0]
    assert (request["model"], request["count"], request["aspectRatio"]) == (
        "nano-banana-pro",
        1,
        "16:9",
    )

    reset = await tg.press_button(USER, USER, panel["message_id"], views.RESET)
    await tg.wait_for("answerCallbackQuery", count=len(queries) + 1)
    answered(bot, reset)
    settings = await bot.service.settings(UserKey("telegram", str(USER)))
    assert (settings.model, settings.count, settings.aspect_ratio) == (None, None, None)


async def test_queue_lists_jobs_and_cancels_a_waiting_one(bot: BotUnderTest) -> None:
    await bot.start(limits=Limits(running_per_user=1))
    tg = bot.tg
    bot.flow.stall_next(30)  # the first job keeps running until the test ends
    await tg.post_message(USER, USER, "/imagine first --count 1")
    await runs(bot, 1)
    await tg.post_message(USER, USER, "/imagine second --count 1")
    await until(lambda: bot.service.scheduler.position(2) > 0)
    # The busy chat's board lists it once the chat's budget has rested (answers go first).
    await tg.wait_for("sendMessage", predicate=lambda c: text_of(c).startswith(board.HEADING))

    await tg.post_message(USER, USER, "/queue")
    await tg.wait_for("sendMessage", predicate=lambda c: text_of(c).startswith("Your jobs"))
    listing = keyboard_message(bot)
    # The same words for the same states as the status messages (and Discord's /queue).
    one, two = (await bot.job(1)).public_id, (await bot.job(2)).public_id
    assert listing["text"].splitlines()[1:] == [
        f"#{one} “first” — {texts.STARTED}",
        f"#{two} “second” — {texts.queued(1)}",
    ]
    assert labels(listing["reply_markup"]) == [[f"✖ Cancel #{one}"], [f"✖ Cancel #{two}"]]
    assert callback_data(listing["reply_markup"]) == [[f"c:{one}:0"], [f"c:{two}:0"]]

    stranger = await tg.press_button(USER, OTHER, listing["message_id"], f"c:{two}:0")
    await tg.wait_for("answerCallbackQuery")
    assert answer_text(bot, stranger) == texts.NOT_YOUR_JOB
    owner = await tg.press_button(USER, USER, listing["message_id"], f"c:{two}:0")
    await tg.wait_for("editMessageText", predicate=lambda c: text_of(c).startswith("Your jobs"))
    answered(bot, stranger, owner)
    assert answer_text(bot, owner) == texts.CANCELLED
    assert (await bot.job(2)).state is JobState.CANCELLED
    updated = tg.message(USER, listing["message_id"])
    assert updated is not None
    assert updated["text"].splitlines()[1:] == [f"#{one} “first” — {texts.STARTED}"]
    assert labels(updated["reply_markup"]) == [[f"✖ Cancel #{one}"]]
    # The second job was listed on the busy chat's board: its line goes, and the board with it.
    await tg.wait_for("deleteMessage")
    assert not any("“second”" in m.get("text", "") for m in tg.sent_messages(USER))


async def test_a_restart_between_result_and_buttons(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    await tg.post_message(USER, USER, "/imagine a fox --model 2 --count 2")
    await bot.delivered(1)
    keyboard = keyboard_message(bot)
    reuse = await tg.press_button(USER, USER, keyboard["message_id"], "r:1:1")
    await bot.parked("reuse")
    asked = tg.sent_messages(USER)[-1]

    await bot.restart()
    upscale = await tg.press_button(USER, USER, keyboard["message_id"], "u:1:2")
    await bot.delivered(2)
    second = (await bot.results(1))[1]
    [document] = tg.calls_of("editMessageMedia")
    assert tg.media_bytes(document) == [jpeg((128, 96), 2, f"{second.ref.media_id} 2k")]

    await tg.post_message(USER, USER, "in winter --count 1", reply_to=asked["message_id"])
    await bot.delivered(3)
    first = (await bot.results(1))[0]
    assert generations(bot.flow)[-1]["reference_1"] == first.ref.media_id
    answered(bot, reuse, upscale)


async def test_a_job_interrupted_by_a_restart_answers_on_its_old_status(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    bot.flow.stall_next(30)
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await tg.wait_for("sendMessage")
    [status] = tg.sent_messages(USER)[-1:]
    await runs(bot, 1)
    await bot.restart()  # mid-generation: the job resumes in the new process
    await bot.delivered(1)
    [answer] = tg.calls_of("editMessageMedia")
    assert answer.params["message_id"] == status["message_id"]
    assert tg.calls_of("sendPhoto") == []


# -- the status message, live ----------------------------------------------------------------


@pytest.fixture
def calm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live progress at a tenth of its pace (a state shown once it lasted 0.2 s, refreshed every
    second), its elapsed time from 0.5 s on."""
    monkeypatch.setattr(progress, "SETTLE", 0.2)
    monkeypatch.setattr(progress, "PACE", 1.0)
    monkeypatch.setattr(texts, "SHOWN_ELAPSED", 0.5)


def to_the_chat(tg: FakeTelegramServer) -> list[str]:
    return [c.method for c in tg.calls if c.params.get("chat_id") == USER]


async def test_a_one_image_job_costs_two_calls_its_status_becoming_the_picture(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    asked = await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    # Answered within a second: no "generating" on the way, no chat action, nothing deleted.
    assert to_the_chat(tg) == ["sendMessage", "editMessageMedia"]
    [status] = tg.calls_of("sendMessage")
    assert text_of(status) == saying(UNDER_WAY)
    [answer] = tg.calls_of("editMessageMedia")
    message = tg.message(USER, answer.params["message_id"])
    assert message is not None
    assert message["reply_to_message"]["message_id"] == asked["message"]["message_id"]
    assert "text" not in message
    assert " · nano-banana-2-lite · seed " in message["caption"]
    assert labels(message["reply_markup"]) == [["✏️ Edit 1"], ["🎲 Draw again"]]


async def test_a_lone_jobs_status_message_is_true_for_its_whole_run(
    bot: BotUnderTest, calm: None
) -> None:
    # A one-image job's chat has no call to spare for its start (``allowance``): what its
    # status message says when it goes stands until the picture takes its place, and must
    # still be true while the job runs.
    await bot.start()
    tg = bot.tg
    bot.flow.hold()
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    [status] = await tg.wait_for("sendMessage")
    await runs(bot, 1)
    await asyncio.sleep(1.0)  # its start would have been told by now, had it a call for it
    assert text_of(status) == saying(UNDER_WAY)
    assert texts.queued(1) not in text_of(status)  # "you're next" while it runs: read as stuck
    bot.flow.release()
    await bot.delivered(1)
    assert to_the_chat(tg) == ["sendMessage", "editMessageMedia"]


async def test_a_running_jobs_status_counts_its_time_calmly_and_never_after_the_answer(
    bot: BotUnderTest, calm: None
) -> None:
    await bot.start()
    tg = bot.tg
    bot.flow.latency = 3.5
    # Four images bring four calls besides the answer: its status message, its start, and one
    # more refresh (the last is kept for a start: never more to spare than jobs open).
    await tg.post_message(USER, USER, "/imagine a slow fox --count 4")
    await bot.delivered(1, timeout=15)
    [status] = tg.calls_of("sendMessage")
    [album] = tg.calls_of("sendMediaGroup")
    *edits, keyboard = tg.calls_of("editMessageText")
    assert {c.params["message_id"] for c in edits} == {keyboard.params["message_id"]}
    assert [text_of(c) for c in edits] == [
        saying(texts.STARTED),  # shown once it had lasted a moment
        saying(f"{texts.STARTED} 1 s"),
    ]
    assert edits[0].at - status.at >= 0.2
    assert all(later.at - earlier.at >= 0.9 for earlier, later in itertools.pairwise(edits))
    assert tg.calls.index(album) > max(map(tg.calls.index, edits))  # the answer came last
    assert to_the_chat(tg) == [
        "sendMessage",
        "editMessageText",
        "editMessageText",
        "sendMediaGroup",
        "editMessageText",
    ]


async def test_a_one_image_job_in_a_long_queue_costs_two_calls_and_says_where_it_is(
    bot: BotUnderTest, calm: None
) -> None:
    await bot.start(limits=Limits(running_per_user=1))
    tg = bot.tg
    bot.flow.latency = 1.5
    others = range(100, 106)
    for user in others:  # six users' jobs ahead: a wait of seconds
        await tg.post_message(user, user, f"/imagine fox {user} --count 1")
    await until(lambda: bot.service.scheduler.position(6) > 0)
    asked = await tg.post_message(USER, USER, "/imagine a patient fox --count 1")
    await bot.delivered(7, timeout=20)
    # Its place counted down and its run lasted seconds (progress was told every second), yet
    # its one call besides the answer went to the status message: its place, and that the
    # answer takes its place.
    calls = [c for c in tg.calls if c.params.get("chat_id") == USER]
    assert [c.method for c in calls] == ["sendMessage", "editMessageMedia"]
    [status, answer] = calls
    said = text_of(status).splitlines()
    assert said[0] in [texts.queued(n) for n in range(2, 8)]
    assert said[1:] == [RESULT_HERE]
    assert status.params["reply_parameters"]["message_id"] == asked["message"]["message_id"]
    assert answer.params["message_id"] == tg.sent_messages(USER)[-1]["message_id"]


async def test_a_waiting_jobs_place_counts_down(bot: BotUnderTest, calm: None) -> None:
    await bot.start(limits=Limits(running_per_user=1))
    tg = bot.tg
    bot.flow.latency = 1.5
    for n in range(3):  # four images each: calls to spare for counting down (``allowance``)
        await tg.post_message(USER, USER, f"/imagine fox {n} --count 4")
    await bot.delivered(3, timeout=15)
    # The first has a status message of its own; the two asked while it was open are listed on
    # the chat's board.
    listings = [
        text_of(c)
        for c in tg.calls
        if c.method in ("sendMessage", "editMessageText") and text_of(c).startswith(board.HEADING)
    ]
    said = [
        line.partition(" — ")[2]
        for text in listings
        for line in text.splitlines()
        if "“fox 2”" in line
    ]
    # Its place, counted down as the two before it ran (the user's others on their way were
    # counted ahead at first; an edit overtaken by the next says only the next), then its run.
    waiting = [k for k, _ in itertools.groupby(itertools.takewhile(queued, said))]
    places = [texts.queued_for_all(n) for n in (3, 2, 1)]
    assert waiting in (places, places[1:], places[::2], places[:1], places[1:2], places[2:])
    assert said[len(list(itertools.takewhile(queued, said)))].startswith(texts.STARTED)
    assert not any(board.HEADING in m.get("text", "") for m in tg.sent_messages(USER))


def queued(text: str) -> bool:
    return not text.startswith(texts.STARTED)


async def test_a_slow_upload_shows_the_chat_action(bot: BotUnderTest) -> None:
    await bot.start()
    tg = bot.tg
    tg.delays["editMessageMedia"] = 1.5  # a large picture on a slow line
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    [action] = tg.calls_of("sendChatAction")
    [answer] = tg.calls_of("editMessageMedia")
    assert action.params["action"] == "upload_photo"
    assert answer.at < action.at  # shown while the upload was under way
    assert tg.calls.index(action) < tg.calls.index(answer)


# -- failures ------------------------------------------------------------------------------


async def test_bad_input_gets_one_sentence_and_no_upstream_call(bot: BotUnderTest) -> None:
    models = models_file.merged(
        ModelTable.builtin(), {"models": {"nano-banana-2-lite": {"max_references": 2}}}
    )
    await bot.start(models=models)
    tg = bot.tg
    bot.flow.reset_records()
    limits = bot.service.limits

    async def refused(post: Awaitable[Json | list[Json]], sentence: str) -> None:
        """The update is answered by one sentence replying to it: a message of its own when the
        core refuses it before any download, else its status message, edited."""
        asked = await post
        first = asked[0] if isinstance(asked, list) else asked
        text = texts.failed(sentence)
        await until(lambda: any(m.get("text") == text for m in tg.sent_messages(USER)))
        [answer] = [m for m in tg.sent_messages(USER) if m.get("text") == text]
        assert answer["reply_to_message"]["message_id"] == first["message"]["message_id"]

    huge = b"\x89PNG\r\n\x1a\n" + b"\0" * (30 * 2**20)
    await refused(
        tg.post_document(USER, USER, huge, "big.png", "image/png", caption="/imagine x"),
        option_texts.image_too_large(len(huge), limits.max_image_bytes),
    )
    assert tg.calls_of("download") == []  # refused by its stated size, never fetched
    await refused(tg.post_message(USER, USER, "/imagine"), texts.PROMPT_EMPTY)
    await refused(
        tg.post_message(USER, USER, "/imagine " + "x" * 2001),
        option_texts.prompt_too_long(2001, limits.max_prompt_chars),
    )
    await refused(
        tg.post_message(USER, USER, "/imagine a fox --model dalle"),
        option_texts.unknown_model("dalle", bot.service.models),
    )
    await refused(
        tg.post_message(USER, USER, "/imagine a fox --count 9"), option_texts.bad_count("9")
    )
    await refused(
        tg.post_album(
            USER, USER, [png(color=(c, 0, 0)) for c in (1, 2, 3)], "/imagine x --model lite"
        ),
        option_texts.too_many_references(3, "nano-banana-2-lite", 2),
    )
    await refused(
        tg.post_document(USER, USER, b"%PDF-1.4 a brief", "photo.png", "image/png", "/imagine x"),
        texts.IMAGE_UNREADABLE,
    )
    await refused(
        tg.post_document(USER, USER, png_header(8000, 8000), "bomb.png", "image/png", "/imagine x"),
        option_texts.image_too_many_pixels(8000, 8000, limits.max_image_pixels),
    )
    assert upstream_posts(bot.flow) == []
    assert await bot.store.unfinished_jobs() == []


def bmp(megabytes: float) -> bytes:
    """A real, uncompressed picture of about ``megabytes`` MB."""
    side = int((megabytes * 2**20 / 3) ** 0.5)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "BMP")
    return out.getvalue()


async def test_a_reference_of_20_to_25_mb_needs_a_local_bot_api_server(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    image = bmp(22)
    assert 20 * 2**20 < len(image) <= bot.service.limits.max_image_bytes  # BOT_MAX_IMAGE_MB=25
    asked = await tg.post_document(
        USER, USER, image, "big.bmp", "image/bmp", caption="/imagine bigger --count 1"
    )
    if bot.api == LOCAL:  # a local Bot API server hands the bot files of any size
        await bot.delivered(1)
        assert [u.body for u in uploads(bot.flow)] == [as_uploaded(image)]
        return
    # api.telegram.org serves bots 20 MB at most: said at once, nothing fetched.
    text = texts.failed(views.too_large_to_fetch(len(image), 20 * 2**20))
    await until(lambda: any(m.get("text") == text for m in tg.sent_messages(USER)))
    [answer] = [m for m in tg.sent_messages(USER) if m.get("text") == text]
    assert answer["reply_to_message"]["message_id"] == asked["message"]["message_id"]
    assert "Telegram lets bots fetch at most 20 MB" in text
    assert tg.calls_of("download") == []
    assert upstream_posts(bot.flow) == []


async def test_a_failed_job_is_told_on_its_status_or_anew_if_that_is_gone(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    bot.flow.fail_next_unsafe()
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    status = tg.sent_messages(USER)[-1]
    assert status["text"] == texts.failed(texts.CONTENT_POLICY)

    bot.flow.fail_next_unsafe()
    bot.flow.stall_next(2.0)  # time for its status message to go, and for an admin to delete it
    bot.refusals.append("editMessageText: Bad Request: message to edit not found")
    asked = await tg.post_message(USER, USER, "/imagine another fox --count 1")
    asked_id = asked["message"]["message_id"]
    await tg.wait_for("sendMessage", predicate=lambda c: replies_to(c, asked_id))
    [queued] = [m for m in tg.sent_messages(USER) if m.get("text") == saying(UNDER_WAY)]
    async with bot.raw_bot() as admin:
        await admin.delete_message(USER, queued["message_id"])
    await bot.delivered(2)
    told = tg.sent_messages(USER)[-1]
    assert told["text"] == texts.failed(texts.CONTENT_POLICY)
    assert told["reply_to_message"]["message_id"] == asked["message"]["message_id"]


def replies_to(call: Call, message_id: int) -> bool:
    return bool(call.params.get("reply_parameters", {}).get("message_id") == message_id)


def to_admin(call: Call) -> bool:
    return call.params.get("chat_id") == ADMIN


async def test_operator_problems_alert_the_admins(bot: BotUnderTest) -> None:
    bot.tg.start_bot(ADMIN)  # as README asks of every admin
    await bot.start()
    bot.flow.fail_next(402)
    await bot.tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    [alert] = await bot.tg.wait_for("sendMessage", predicate=to_admin)
    assert alert.error is None
    assert "no subscription or credits" in text_of(alert)
    assert bot.tg.sent_messages(USER)[-1]["text"] == texts.failed(texts.OPERATOR)


async def test_an_admin_who_never_started_the_bot_gets_the_alert_once_they_do(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    tg = bot.tg
    bot.flow.fail_next(402)
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    [refused] = await tg.wait_for("sendMessage", predicate=to_admin)
    assert refused.error == "Forbidden: bot can't initiate conversation with a user"
    bot.refusals.append(f"sendMessage: {refused.error}")
    async with asyncio.timeout(5):
        while not (kept := await bot.service.undelivered_alerts()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert [str(alert.admin) for alert in kept] == [f"telegram:{ADMIN}"]

    await tg.post_message(ADMIN, ADMIN, "/start")  # the admin opens a chat with the bot
    [_, alert] = await tg.wait_for(
        "sendMessage", count=2, predicate=lambda c: to_admin(c) and "Operator" in text_of(c)
    )
    assert alert.error is None
    assert text_of(alert) == kept[0].text
    assert "no subscription or credits" in text_of(alert)
    async with asyncio.timeout(5):
        while await bot.service.undelivered_alerts():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_images_too_large_for_a_photo_go_as_files(bot: BotUnderTest) -> None:
    await bot.start()
    bot.flow.image_size = (9000, 1500)  # width + height over Telegram's 10000 for photos
    await bot.tg.post_message(USER, USER, "/imagine a panorama --model 2 --count 1")
    await bot.delivered(1)
    [document] = bot.tg.calls_of("editMessageMedia")
    assert document.params["media"]["type"] == "document"
    assert bot.tg.media_bytes(document) == await bot.generated(1)
    assert labels(document.params["reply_markup"]) == [
        ["⬆️ Upscale 1", "✏️ Edit 1"],
        ["🎲 Draw again"],
    ]

    await bot.tg.post_message(USER, USER, "/imagine a panorama --model 2 --count 2")
    await bot.delivered(2)
    [album] = bot.tg.calls_of("sendMediaGroup")
    assert [m["type"] for m in album.params["media"]] == ["document", "document"]
    assert [m["caption"] for m in album.params["media"]] == ["Image 1 of 2", "Image 2 of 2"]
    assert bot.tg.media_bytes(album) == await bot.generated(2)
    assert bot.tg.calls_of("sendPhoto") == []


async def test_a_retry_after_storm_still_delivers(bot: BotUnderTest) -> None:
    await bot.start()
    bot.tg.fail_next("editMessageMedia", error_code=429, retry_after=1, count=3)
    await bot.tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1, timeout=15)
    calls = bot.tg.calls_of("editMessageMedia")
    assert [c.error is None for c in calls] == [False, False, False, True]
    assert bot.tg.media_bytes(calls[-1]) == await bot.generated(1)


async def test_a_blocked_bot_marks_the_job_delivered_and_keeps_working(
    bot: BotUnderTest,
) -> None:
    await bot.start()
    bot.tg.fail_next(
        "editMessageMedia", error_code=403, description="Forbidden: bot was blocked by the user"
    )
    await bot.tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    assert len(bot.tg.calls_of("editMessageMedia")) == 1  # permanent: not retried

    bot.flow.hold()  # until its status message went: the answer takes its place
    asked = await bot.tg.post_message(USER, USER, "/imagine another fox --count 1")
    asked_id = asked["message"]["message_id"]
    await bot.tg.wait_for("sendMessage", predicate=lambda c: replies_to(c, asked_id))
    bot.flow.release()
    await bot.delivered(2)
    assert [c.error is None for c in bot.tg.calls_of("editMessageMedia")] == [False, True]


# -- wiring --------------------------------------------------------------------------------


async def test_webhook_mode_with_a_secret_token(bot: BotUnderTest) -> None:
    pytest.importorskip("tornado", reason="webhooks need python-telegram-bot[webhooks]")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = "https://bot.example.test/telegram-hook"
    await bot.start(
        telegram_webhook_url=url,
        telegram_webhook_secret=Secret("s3cret-token"),
        telegram_webhook_listen=("127.0.0.1", port),
    )
    [hook] = bot.tg.calls_of("setWebhook")
    assert hook.params["url"] == url
    assert hook.params["secret_token"] == "s3cret-token"
    assert hook.params["allowed_updates"] == [
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
    ]
    assert bot.tg.calls_of("getUpdates") == []

    update = await bot.tg.post_message(USER, USER, "/help")
    endpoint = f"http://127.0.0.1:{port}/telegram-hook"
    async with aiohttp.ClientSession() as http:
        # PTB sets the webhook, then opens its server: knock until it answers.
        async with asyncio.timeout(5):
            while True:
                try:
                    async with http.post(endpoint, json=update) as refused:
                        assert refused.status == 403  # no secret: not from Telegram
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.01)
        header = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}
        async with http.post(endpoint, json=update, headers=header) as accepted:
            assert accepted.status == 200
    [reply] = await bot.tg.wait_for("sendMessage")
    assert "/imagine" in text_of(reply)
