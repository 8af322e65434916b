"""Sending a final answer in as few messages as Telegram allows: the job's status message
becomes the answer. One image (or an upscale, as a file) takes the status message's place
(``editMessageMedia`` adds media to a text message); several go as an album, and the status
message becomes the one message with their keyboard (an album can't carry buttons). Without a
status message that can take it, the answer is a new reply and the status is removed.

A picture Telegram won't take as a photo goes as a file, shrunk to the document limit if need
be. While an answer uploads for longer than a moment, the chat shows "sending a photo".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from enum import Enum

from telegram import (
    Bot,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    ReplyParameters,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from bot.core import images
from bot.core.captions import ResultView, image_of
from bot.core.domain import Job, JobResult, ResultImage
from bot.core.history_views import ShowView
from bot.core.i18n import reader
from bot.core.ports import DeliveryError, Posted
from bot.frontends.parts import SentParts
from bot.frontends.telegram import media, outbound, status, views
from bot.frontends.telegram.line import Urgency
from bot.frontends.telegram.status import StatusKey

log = logging.getLogger(__name__)
# What a posted image's reference says it was sent as (its file id can be sent only as that).
PHOTO = "p"
DOCUMENT = "d"

# An upload that takes longer than this shows the chat action, renewed before it fades (5 s).
SHOW_UPLOAD_AFTER = 1.0
RENEW_UPLOAD_EVERY = 4.0

Media = InputMediaPhoto | InputMediaDocument


async def send(
    bot: Bot,
    result: JobResult,
    view: ResultView,
    key: StatusKey | None,
    parts: SentParts,
    *,
    max_document: int,
) -> Posted:
    """The answer of a finished job, on its status message ``key`` if it has one, else as a
    reply to the message that asked for it; where each image now is (``file_ref``). Of an
    answer in two calls (an album, then its buttons), a retry sends only what ``parts`` says
    did not go."""
    job = result.job
    pictures = [(image, image.data) for image in result.images if image.data]
    if not pictures:
        raise DeliveryError(f"job {job.id} has no image bytes left to send", permanent=True)
    caption = view.caption
    markup = views.keyboard(result.buttons)
    if job.is_upscale or len(pictures) == 1:
        # One file a message (an upscale goes uncompressed: a photo would be recompressed).
        posted = {}
        for number, (image, data) in enumerate(pictures):
            status_key = None if number else key  # the first takes the status message's place
            sent = await _single(
                bot, job, image, data, caption, markup, status_key, max_document=max_document
            )
            posted[image.index] = file_ref(sent)
        return posted
    titles = dict(zip((i.index for i in result.images), view.titles, strict=True))
    return await _album(
        bot, job, pictures, titles, caption, markup, key, parts, max_document=max_document
    )


async def _single(
    bot: Bot,
    job: Job,
    image: ResultImage,
    data: bytes,
    caption: str,
    markup: InlineKeyboardMarkup | None,
    key: StatusKey | None,
    *,
    max_document: int,
) -> Message:
    """One image: in the status message's place if it can take it, else as a new reply; the
    message that carries it."""
    as_photo = not job.is_upscale and media.fits_as_photo(data)
    chat_id = int(job.owner.chat_id)
    placed: _Placed | Message = _Placed.GONE
    async with _uploading(bot, chat_id, as_photo):
        if key is not None:
            placed = _Placed.REFUSED
            if as_photo:
                placed = await _edit(bot, key, InputMediaPhoto(data, caption=caption), markup)
                as_photo = placed is not _Placed.REFUSED
            if placed is _Placed.REFUSED:
                fitted, name = await _document(job, image, data, max_document)
                document = InputMediaDocument(fitted, caption=caption, filename=name)
                placed = await _edit(bot, key, document, markup)
            if isinstance(placed, Message):
                return placed
        answer = status.reply_to(status.answer_to(job.owner))
        sent = await _photo(bot, chat_id, data, caption, markup, answer) if as_photo else None
        if sent is None:
            fitted, name = await _document(job, image, data, max_document)
            sent = await bot.send_document(
                chat_id,
                fitted,
                filename=name,
                caption=caption,
                reply_markup=markup,
                reply_parameters=answer,
            )
    if key is not None and placed is _Placed.REFUSED:
        await status.clear(bot, key)  # it is there but couldn't become the answer: it goes
    return sent


async def _album(
    bot: Bot,
    job: Job,
    pictures: list[tuple[ResultImage, bytes]],
    titles: dict[int, str],
    caption: str,
    markup: InlineKeyboardMarkup | None,
    key: StatusKey | None,
    parts: SentParts,
    *,
    max_document: int,
) -> Posted:
    """Several images, numbered as the buttons are: an album, then its caption and keyboard
    on the status message; where the images are."""
    chat_id = int(job.owner.chat_id)

    def title(index: int) -> str:
        # An album's captions are rendered here: ``outbound`` sees only the request's own text.
        return reader().render(titles[index])

    async def album() -> str:
        group: list[Media] = []
        if all(media.fits_as_photo(data) for _, data in pictures):
            group = [InputMediaPhoto(data, caption=title(i.index)) for i, data in pictures]
        else:  # an album can't mix photos and files
            for image, data in pictures:
                fitted, name = await _document(job, image, data, max_document)
                group.append(InputMediaDocument(fitted, filename=name, caption=title(image.index)))
        answer = status.reply_to(status.answer_to(job.owner))
        async with _uploading(bot, chat_id, isinstance(group[0], InputMediaPhoto)):
            sent = await bot.send_media_group(chat_id, group, reply_parameters=answer)
        posted = {i.index: file_ref(m) for (i, _), m in zip(pictures, sent, strict=True)}
        return json.dumps({"first": sent[0].message_id, "posted": posted})

    await parts.load()
    went = json.loads(await parts.once("album", album))
    if key is None or not await status.edit(bot, key, caption, markup):
        first = status.reply_to(int(went["first"]))
        await bot.send_message(chat_id, caption, reply_markup=markup, reply_parameters=first)
    await parts.done()
    return {int(index): str(ref) for index, ref in went["posted"].items()}


async def repost(
    bot: Bot, chat_id: int, answer_to: int, result: JobResult, view: ShowView, *, max_document: int
) -> Posted:
    """A job's answer again (/show), replying to ``answer_to``: the images Telegram holds by
    their file ids, the others from their bytes; where each is now. Without images, the text."""
    answer = status.reply_to(answer_to)
    markup = views.keyboard(view.rows)
    items = [await _medium(result.job, image, max_document) for image in result.images]
    sent: list[Message] = []
    if len(items) > 1 and len({kind for kind, _, _ in items}) == 1:
        count = len(items)
        group = [
            _input(kind, value, name, reader().render(image_of(number, count)))
            for number, (kind, value, name) in enumerate(items, start=1)
        ]
        sent = list(await bot.send_media_group(chat_id, group, reply_parameters=answer))
        first = status.reply_to(sent[0].message_id)
        await bot.send_message(chat_id, view.text, reply_markup=markup, reply_parameters=first)
    else:  # one image, or photos and files (which an album can't mix): a message each
        for number, (kind, value, name) in enumerate(items, start=1):
            last = number == len(items)
            text, keys = (view.text, markup) if last else (None, None)
            if kind == PHOTO:
                message = await bot.send_photo(
                    chat_id, value, caption=text, reply_markup=keys, reply_parameters=answer
                )
            else:
                message = await bot.send_document(
                    chat_id,
                    value,
                    filename=name,
                    caption=text,
                    reply_markup=keys,
                    reply_parameters=answer,
                )
            sent.append(message)
        if not items:
            await bot.send_message(chat_id, view.text, reply_markup=markup, reply_parameters=answer)
    return {image.index: file_ref(m) for image, m in zip(result.images, sent, strict=True)}


async def _medium(job: Job, image: ResultImage, max_document: int) -> tuple[str, str | bytes, str]:
    """An image to post again, as what kind (``PHOTO``, ``DOCUMENT``), from what (the file id
    Telegram gave it, else its bytes: an upscale as a file, uncompressed), and its file name."""
    if image.posted is not None:
        kind, _, file_id = image.posted.partition(":")
        return kind, file_id, ""
    data = image.data or b""
    if not job.is_upscale and media.fits_as_photo(data):
        return PHOTO, data, ""
    fitted, name = await _document(job, image, data, max_document)
    return DOCUMENT, fitted, name


def _input(
    kind: str, value: str | bytes, name: str, caption: str
) -> InputMediaPhoto | InputMediaDocument:
    if kind == PHOTO:
        return InputMediaPhoto(value, caption=caption)
    return InputMediaDocument(value, caption=caption, filename=name or None)


def file_ref(message: Message) -> str:
    """Where a sent image is: ``p:<file id>`` for a photo, ``d:<file id>`` for a file."""
    if message.photo:
        return f"{PHOTO}:{message.photo[-1].file_id}"
    if message.document is not None:
        return f"{DOCUMENT}:{message.document.file_id}"
    raise DeliveryError("Telegram sent back no file for an image", permanent=True)


async def fetch(bot: Bot, ref: str) -> bytes:
    """The bytes of an image Telegram holds (``file_ref``), for another platform."""
    _, _, file_id = ref.partition(":")
    file = await bot.get_file(file_id)
    return bytes(await file.download_as_bytearray())


class _Placed(Enum):
    GONE = "gone"  # the status message is no more (deleted, or too old to edit)
    REFUSED = "refused"  # Telegram won't take this medium there (a photo it refuses, say)


async def _edit(
    bot: Bot, key: StatusKey, medium: Media, markup: InlineKeyboardMarkup | None
) -> _Placed | Message:
    """Put ``medium`` in the status message's place: the message it became, or why not."""
    try:
        edited = await bot.edit_message_media(
            medium, chat_id=key[0], message_id=key[1], reply_markup=markup
        )
    except BadRequest as exc:
        log.info("the status message can't take the answer (%s)", exc.message)
        return _Placed.GONE if status.gone(exc) else _Placed.REFUSED
    assert isinstance(edited, Message)  # a bot's own message: never an inline one
    return edited


async def _photo(
    bot: Bot,
    chat_id: int,
    data: bytes,
    caption: str,
    markup: InlineKeyboardMarkup | None,
    answer: ReplyParameters | None,
) -> Message | None:
    """Send as a photo if Telegram takes it as one; None means "send it as a file"."""
    try:
        return await bot.send_photo(
            chat_id, data, caption=caption, reply_markup=markup, reply_parameters=answer
        )
    except BadRequest as exc:
        if "chat not found" in exc.message.lower():
            raise
        log.info("Telegram refused an image as a photo (%s); sending it as a file", exc.message)
        return None


async def _document(
    job: Job, image: ResultImage, data: bytes, max_document: int
) -> tuple[bytes, str]:
    """The image as a file: within the document limit, and its name."""
    fitted = await asyncio.to_thread(images.shrink, data, max_document)
    return fitted, images.file_name(job, image, fitted)


@contextlib.asynccontextmanager
async def _uploading(bot: Bot, chat_id: int, photo: bool) -> AsyncIterator[None]:
    """Show "sending a photo" (or a file) in the chat while an upload lasts more than a moment."""
    action = ChatAction.UPLOAD_PHOTO if photo else ChatAction.UPLOAD_DOCUMENT

    async def show() -> None:
        await asyncio.sleep(SHOW_UPLOAD_AFTER)
        with outbound.at(Urgency.PROGRESS):
            while True:
                with contextlib.suppress(TelegramError):  # a courtesy: the answer counts
                    await bot.send_chat_action(chat_id, action)
                await asyncio.sleep(RENEW_UPLOAD_EVERY)

    showing = asyncio.create_task(show())
    try:
        yield
    finally:
        showing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await showing
