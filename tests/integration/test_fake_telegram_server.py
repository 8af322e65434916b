"""The real python-telegram-bot, polling FakeTelegramServer over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    Update,
)
from telegram.error import BadRequest, EndPointNotFound, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram_server import FakeTelegramServer, FloodControl

TOKEN = "123:ABC-fake-token"
USER = CHAT = 42  # a private chat's id is the user's id
OTHER = 43
GROUP = -1001234567890
App = Application[Any, Any, Any, Any, Any, Any]


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(token=TOKEN) as server:
        server.start_bot(USER)  # most tests write to the user's private chat
        yield server


def build(tg: FakeTelegramServer, *, rate_limited: bool = False) -> App:
    builder = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{tg.root}/bot")
        .base_file_url(f"{tg.root}/file/bot")
    )
    if rate_limited:
        return builder.rate_limiter(AIORateLimiter(max_retries=3)).build()
    return builder.build()


def raw_bot(tg: FakeTelegramServer, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=f"{tg.root}/bot", base_file_url=f"{tg.root}/file/bot")


@contextlib.asynccontextmanager
async def running(app: App) -> AsyncIterator[App]:
    """Start the way the bot does next to discord.py: not run_polling, which owns the loop."""
    assert app.updater is not None
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


async def test_command_reaches_handler_and_reply_is_recorded(tg: FakeTelegramServer) -> None:
    seen: list[list[str]] = []

    async def on_imagine(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen.append(list(context.args or []))
        await update.effective_message.reply_text(f"queued: {' '.join(context.args or [])}")

    app = build(tg)
    app.add_handler(CommandHandler("imagine", on_imagine))
    async with running(app):
        first = await tg.post_message(
            GROUP, USER, "/imagine a fox --ar 16:9", chat_type="supergroup"
        )
        await tg.post_message(GROUP, USER, "/imagine@fake_bot an owl", chat_type="supergroup")
        calls = await tg.wait_for("sendMessage", count=2)

    assert seen == [["a", "fox", "--ar", "16:9"], ["an", "owl"]]
    assert [c.params["text"] for c in calls] == ["queued: a fox --ar 16:9", "queued: an owl"]
    assert calls[0].params["chat_id"] == GROUP
    reply = tg.sent_messages(GROUP)[0]
    # PTB quotes by default outside private chats, via reply_parameters.
    assert reply["reply_to_message"]["message_id"] == first["message"]["message_id"]
    assert reply["from"] == tg.bot_user
    assert tg.calls_of("getMe")
    assert tg.calls_of("deleteWebhook")


async def test_posted_photo_downloads_byte_identical(tg: FakeTelegramServer) -> None:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        file = await update.effective_message.photo[-1].get_file()
        got.set_result(bytes(await file.download_as_bytearray()))

    app = build(tg)
    app.add_handler(MessageHandler(filters.PHOTO, on_photo))
    image = png(1000, 600)
    async with running(app):
        update = await tg.post_photo(CHAT, USER, image, caption="make it blue")
        data = await asyncio.wait_for(got, 5)

    assert data == image
    sizes = [(s["width"], s["height"]) for s in update["message"]["photo"]]
    assert sizes == [(90, 54), (320, 192), (800, 480), (1000, 600)]
    [download] = tg.calls_of("download")
    assert download.params["file_path"].startswith("photos/")


async def test_send_photo_with_keyboard_records_the_upload(tg: FakeTelegramServer) -> None:
    image = png(640, 640)
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("🎲", callback_data="reroll:1"),
                InlineKeyboardButton("U1", callback_data="up:1:0"),
            ]
        ]
    )
    async with build(tg) as app:
        msg = await app.bot.send_photo(
            CHAT, image, caption="<b>a fox</b> &amp; co", parse_mode="HTML", reply_markup=keyboard
        )
        downloaded = await (await app.bot.get_file(msg.photo[-1].file_id)).download_as_bytearray()

    [call] = tg.calls_of("sendPhoto")
    assert call.files["photo"] == image  # PTB uploads bytes as a part named like the parameter
    assert call.params["reply_markup"] == keyboard.to_dict()
    assert msg.reply_markup == keyboard
    assert msg.caption == "a fox & co"
    assert [(e.type, e.offset, e.length) for e in msg.caption_entities] == [("bold", 0, 5)]
    assert bytes(downloaded) == image == tg.file_bytes(msg.photo[-1].file_id)


async def test_send_media_group_with_two_photos(tg: FakeTelegramServer) -> None:
    first, second = png(color=(255, 0, 0)), png(color=(0, 0, 255))
    async with build(tg) as app:
        msgs = await app.bot.send_media_group(
            CHAT, [InputMediaPhoto(first, caption="1/2"), InputMediaPhoto(second)]
        )
        with pytest.raises(BadRequest, match="Too many messages to send as an album"):
            await app.bot.send_media_group(CHAT, [InputMediaPhoto(first)] * 11)
        with pytest.raises(BadRequest, match="2-10 items"):
            await app.bot.send_media_group(CHAT, [InputMediaPhoto(first)])

    call = tg.calls_of("sendMediaGroup")[0]
    assert [m["media"].startswith("attach://") for m in call.params["media"]] == [True, True]
    assert tg.media_bytes(call) == [first, second]
    assert len({m.media_group_id for m in msgs}) == 1
    assert [m.caption for m in msgs] == ["1/2", None]
    assert [m.message_id for m in msgs] == [1, 2]


async def test_a_text_message_edited_into_a_photo_and_then_a_file(tg: FakeTelegramServer) -> None:
    image, again = png(color=(0, 200, 0)), png(color=(0, 0, 200))
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("U1", callback_data="u:1:1")]])
    async with build(tg) as app:
        status = await app.bot.send_message(CHAT, "⏳ Queued — you're next.")
        photo = await app.bot.edit_message_media(
            InputMediaPhoto(image, caption="a fox"),
            chat_id=CHAT,
            message_id=status.message_id,
            reply_markup=keyboard,
        )
        assert isinstance(photo, Message)
        with pytest.raises(BadRequest, match="no text in the message"):
            await app.bot.edit_message_text("late", chat_id=CHAT, message_id=status.message_id)
        document = await app.bot.edit_message_media(
            InputMediaDocument(again, filename="fox.png"), chat_id=CHAT, message_id=photo.message_id
        )
        assert isinstance(document, Message)

    # Media added to a text message, as the Bot API allows: the text goes, the caption comes.
    assert photo.message_id == status.message_id
    assert photo.text is None
    assert photo.caption == "a fox"
    assert photo.reply_markup == keyboard
    assert tg.file_bytes(photo.photo[-1].file_id) == image
    assert document.photo == ()
    assert document.caption is None  # a new medium without a caption has none
    assert document.document is not None
    assert tg.file_bytes(document.document.file_id) == again


async def test_button_press_reaches_callback_handler(tg: FakeTelegramServer) -> None:
    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("on it")
        await query.edit_message_text(f"pressed {query.data}")

    app = build(tg)
    app.add_handler(CallbackQueryHandler(on_button))
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("🎲", callback_data="reroll:7")]])
    async with running(app):
        sent = await app.bot.send_message(CHAT, "pick one", reply_markup=keyboard)
        query_id = await tg.press_button(CHAT, USER, sent.message_id, "reroll:7")
        await tg.wait_for("editMessageText")

    assert query_id in tg.answered_callbacks
    [answer] = tg.calls_of("answerCallbackQuery")
    assert answer.params == {"callback_query_id": query_id, "text": "on it"}
    edited = tg.message(CHAT, sent.message_id)
    assert edited is not None
    assert edited["text"] == "pressed reroll:7"
    assert "reply_markup" not in edited  # an edit without reply_markup drops the keyboard


async def test_rate_limiter_retries_an_injected_429(tg: FakeTelegramServer) -> None:
    tg.fail_next("sendMessage", retry_after=1)
    async with build(tg, rate_limited=True) as app:
        started = time.monotonic()
        msg = await app.bot.send_message(CHAT, "hello")
        elapsed = time.monotonic() - started

    first, second = tg.calls_of("sendMessage")
    assert first.error == "Too Many Requests: retry after 1"
    assert second.error is None
    assert elapsed >= 1.0  # AIORateLimiter waited retry_after (+0.1 s)
    assert msg.text == "hello"


class Clock:
    """A clock the test moves by hand, so flood control is checked without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_flood_control_refuses_a_burst_in_one_chat_and_spares_other_chats() -> None:
    clock = Clock()
    flood = FloodControl(chat_burst=3, clock=clock)
    async with FakeTelegramServer(token=TOKEN, flood=flood) as tg, raw_bot(tg) as bot:
        tg.start_bot(CHAT)
        tg.start_bot(CHAT + 1)
        sent = [await bot.send_message(CHAT, f"m{i}") for i in range(3)]
        with pytest.raises(RetryAfter):
            await bot.send_message(CHAT, "one too many")
        with pytest.raises(RetryAfter):  # edits count as messages in the chat
            await bot.edit_message_text("edited", chat_id=CHAT, message_id=sent[0].message_id)
        assert await bot.delete_message(CHAT, sent[1].message_id)  # deletions are not counted
        await bot.send_message(CHAT + 1, "another chat has its own budget")
        clock.now += 1.0  # one message a second
        await bot.send_message(CHAT, "after a second")
        with pytest.raises(RetryAfter):
            await bot.send_message(CHAT, "and not two")

    refused = [c for c in tg.calls if c.error is not None]
    assert [c.method for c in refused] == ["sendMessage", "editMessageText", "sendMessage"]
    assert {c.error for c in refused} == {"Too Many Requests: retry after 1"}
    assert [m["text"] for m in tg.sent_messages(CHAT)] == ["m0", "m2", "after a second"]


async def test_flood_control_caps_the_bot_overall_and_each_group() -> None:
    clock = Clock()
    # A per-chat budget out of the way, so that only the overall and group limits act.
    flood = FloodControl(chat_per_second=100, chat_burst=100, clock=clock)
    async with FakeTelegramServer(token=TOKEN, flood=flood) as tg, raw_bot(tg) as bot:
        for chat in range(1, 32):
            tg.start_bot(chat)
        await tg.post_message(GROUP, USER, "hello, bot")  # the group exists for the bot
        for chat in range(1, 31):  # 30 messages a second to different users
            await bot.send_message(chat, "hello")
        with pytest.raises(RetryAfter):
            await bot.send_message(31, "the 31st in that second")
        clock.now += 1.0
        for _ in range(20):  # 20 messages a minute to a group
            await bot.send_message(GROUP, "news")
        with pytest.raises(RetryAfter):
            await bot.send_message(GROUP, "the 21st")
        clock.now += 3.0  # the group earns one message every three seconds
        await bot.send_message(GROUP, "later")

    refused = [c for c in tg.calls if c.error is not None]
    assert [c.params["chat_id"] for c in refused] == [31, GROUP]
    assert refused[1].error == "Too Many Requests: retry after 3"


async def test_the_rate_limiter_waits_out_flood_control() -> None:
    # The bot's own set-up: AIORateLimiter retries the 429 after retry_after, on the real clock.
    async with (
        FakeTelegramServer(token=TOKEN, flood=FloodControl(chat_burst=1)) as tg,
        build(tg, rate_limited=True) as app,
    ):
        tg.start_bot(CHAT)
        started = time.monotonic()
        await app.bot.send_message(CHAT, "first")
        await app.bot.send_message(CHAT, "second")
        elapsed = time.monotonic() - started
    assert [c.error for c in tg.calls_of("sendMessage")] == [
        None,
        "Too Many Requests: retry after 1",
        None,
    ]
    assert elapsed >= 1.0


async def test_limits_the_real_api_enforces(tg: FakeTelegramServer) -> None:
    long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x" * 65)]])
    async with build(tg) as app:
        bot = app.bot
        with pytest.raises(BadRequest, match="Message caption is too long"):
            await bot.send_photo(CHAT, png(), caption="x" * 1025)
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(CHAT, "x" * 4097)
        await bot.send_message(
            CHAT, "<i>x</i>" + "x" * 4095, parse_mode="HTML"
        )  # counted after parsing
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(CHAT, "hi", reply_markup=long_data)
        with pytest.raises(BadRequest, match="Can't parse entities"):
            await bot.send_message(CHAT, "1 < 2", parse_mode="HTML")
        with pytest.raises(BadRequest, match="File of size 10485761 bytes is too big for a photo"):
            await bot.send_photo(CHAT, b"\0" * (10 * 1024 * 1024 + 1))
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query("12345")
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("x", chat_id=CHAT, message_id=999)
        same = await bot.send_message(CHAT, "same")
        with pytest.raises(BadRequest, match="Message is not modified"):
            await bot.edit_message_text("same", chat_id=CHAT, message_id=same.message_id)


async def test_faults_and_authentication(tg: FakeTelegramServer) -> None:
    tg.fail_next(
        "sendMessage", error_code=403, description="Forbidden: bot was blocked by the user"
    )
    async with build(tg) as app:
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await app.bot.send_message(CHAT, "hi")
        await app.bot.send_message(CHAT, "hi again")  # the fault was for one call only
        with pytest.raises(EndPointNotFound):
            await app.bot.do_api_request("noSuchMethod")
    with pytest.raises(InvalidToken):
        async with raw_bot(tg, token="999:WRONG"):
            pass
    assert [c.error for c in tg.calls_of("sendMessage")] == [
        "Forbidden: bot was blocked by the user",
        None,
    ]


async def test_get_updates_long_polls_and_confirms_by_offset(tg: FakeTelegramServer) -> None:
    async with raw_bot(tg) as bot:
        started = time.monotonic()
        assert await bot.get_updates(timeout=1) == ()
        assert time.monotonic() - started >= 0.9  # held open for the whole timeout

        poll = asyncio.create_task(bot.get_updates(timeout=10))
        posted = await tg.post_message(CHAT, USER, "hi")
        [update] = await asyncio.wait_for(poll, 5)  # answered as soon as the update arrived
        assert update.update_id == posted["update_id"]

        # Unconfirmed updates are delivered again; an offset past them confirms them.
        assert [u.update_id for u in await bot.get_updates()] == [posted["update_id"]]
        assert await bot.get_updates(offset=posted["update_id"] + 1) == ()

        await bot.get_updates(allowed_updates=["callback_query"])
        await tg.post_message(CHAT, USER, "not wanted")
        assert await bot.get_updates() == ()


async def test_album_document_and_reply_parse_in_ptb(tg: FakeTelegramServer) -> None:
    album = await tg.post_album(CHAT, USER, [png(), png(color=(0, 255, 0))], caption="/imagine mix")
    doc = await tg.post_document(CHAT, USER, b"%PDF-1.4 fake", "brief.pdf", "application/pdf")
    first = album[0]["message"]
    await tg.post_message(CHAT, USER, "bluer", reply_to=first["message_id"])

    async with raw_bot(tg) as bot:
        updates = await bot.get_updates()
        messages = [u.message for u in updates if u.message is not None]
        assert len(messages) == 4
        photo_a, photo_b, document, reply = messages
        assert photo_a.media_group_id == photo_b.media_group_id is not None
        assert photo_a.caption == "/imagine mix"
        assert photo_b.caption is None
        assert photo_a.caption_entities[0].type == "bot_command"
        assert reply.reply_to_message is not None
        assert reply.reply_to_message.photo == photo_a.photo
        assert document.document is not None
        assert document.document.file_name == "brief.pdf"
        data = await (
            await bot.get_file(doc["message"]["document"]["file_id"])
        ).download_as_bytearray()
        assert bytes(data) == b"%PDF-1.4 fake"


async def test_a_bot_cannot_start_a_conversation(tg: FakeTelegramServer) -> None:
    async with raw_bot(tg) as bot:
        with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
            await bot.send_message(77, "hello, stranger")
        with pytest.raises(BadRequest, match=r"[Cc]hat not found"):
            await bot.send_message(-100555, "a group no one wrote in")
        await tg.post_message(77, 77, "/start")
        await bot.send_message(77, "hello")  # they wrote first: the chat exists now
        tg.start_bot(78)  # pressed Start
        await bot.send_message(78, "hello")
    assert [c.error for c in tg.calls_of("sendMessage")] == [
        "Forbidden: bot can't initiate conversation with a user",
        "Bad Request: chat not found",
        None,
        None,
    ]


async def test_privacy_mode_lets_through_only_what_is_for_the_bot(tg: FakeTelegramServer) -> None:
    group = -100777

    async def reaches(text: str, **kw: Any) -> bool:
        posted = await tg.post_message(group, USER, text, chat_type="supergroup", **kw)
        return "update_id" in posted

    assert tg.privacy_mode  # Telegram's default for every new bot
    assert await reaches("/imagine a fox")
    assert await reaches("/imagine@fake_bot a fox")
    assert await reaches("/IMAGINE@Fake_Bot a fox")
    assert not await reaches("/imagine@other_bot a fox")
    assert await reaches("look, @fake_bot, a fox")
    assert not await reaches("a fox, says @other_bot")
    assert not await reaches("a fox in the snow")
    assert not await reaches("a fox /imagine")  # a command, but not what the message starts with
    async with raw_bot(tg) as bot:
        mine = await bot.send_message(group, "I am the bot")
    assert await reaches("more foxes", reply_to=mine.message_id)
    theirs = await tg.post_message(group, OTHER, "/imagine x", chat_type="supergroup")
    assert not await reaches("more", reply_to=theirs["message"]["message_id"])
    album = await tg.post_album(
        group, USER, [png(), png(color=(0, 9, 0))], "/imagine two", chat_type="supergroup"
    )
    assert ["update_id" in item for item in album] == [True, False]  # the uncaptioned one: no
    tg.privacy_mode = False  # turned off in BotFather, or the bot made a group admin
    assert await reaches("a fox in the snow")


async def test_a_bot_on_the_public_api_reaches_the_fake_through_the_patch(
    tg: FakeTelegramServer,
) -> None:
    big = b"\0" * (21 * 2**20)
    posted = await tg.post_document(CHAT, USER, big, "big.bin", "application/octet-stream")
    file_id = posted["message"]["document"]["file_id"]
    with tg.patch_public_api():
        async with Bot(TOKEN) as bot:  # the default base URL: https://api.telegram.org/bot
            assert bot.base_url == f"https://api.telegram.org/bot{TOKEN}"
            assert (await bot.get_me()).username == "fake_bot"
            with pytest.raises(BadRequest, match="too big"):
                await bot.get_file(file_id)  # api.telegram.org serves bots 20 MB at most
            tg.local_server = True  # what a local Bot API server (--local) would do
            data = await (await bot.get_file(file_id)).download_as_bytearray()
    assert bytes(data) == big
    assert [c.method for c in tg.calls[-4:]] == ["getMe", "getFile", "getFile", "download"]
