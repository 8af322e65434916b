"""Sending a final answer: one image as a photo with its keyboard, several as an album followed
by one message with the keyboard (an album can't carry buttons), upscales as files; a picture
Telegram won't take as a photo goes as a file, shrunk to the document limit if need be.
"""

from __future__ import annotations

import asyncio
import json
import logging

from telegram import (
    Bot,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
    ReplyParameters,
)
from telegram.error import BadRequest

from bot.core import images
from bot.core.captions import ResultView, image_of
from bot.core.domain import Job, JobResult, ResultImage
from bot.core.history_views import ShowView
from bot.core.i18n import reader
from bot.core.ports import DeliveryError, Posted
from bot.frontends.parts import SentParts
from bot.frontends.telegram import media, status, views

log = logging.getLogger(__name__)
# What a posted image's reference says it was sent as (its file id can be sent only as that).
PHOTO = "p"
DOCUMENT = "d"


async def send(
    bot: Bot, result: JobResult, view: ResultView, parts: SentParts, *, max_document: int
) -> Posted:
    """The answer of a finished job, replying to the message that asked for it; where each
    image now is (``file_ref``). Of an answer in two calls, a retry sends only what ``parts``
    says did not go."""
    job = result.job
    chat_id = int(job.owner.chat_id)
    pictures = [(image, image.data) for image in result.images if image.data]
    if not pictures:
        raise DeliveryError(f"job {job.id} has no image bytes left to send", permanent=True)
    caption = view.caption
    markup = views.keyboard(result.buttons)
    answer = status.reply_to(status.answer_to(job.owner))
    if job.is_upscale:
        posted = {}
        for image, data in pictures:  # uncompressed: a photo would be recompressed
            sent = await _document(
                bot, chat_id, job, image, data, caption, markup, answer, max_document
            )
            posted[image.index] = file_ref(sent)
        return posted
    if len(pictures) == 1:
        image, data = pictures[0]
        photo = await _photo(bot, chat_id, data, caption, markup, answer)
        if photo is not None:
            return {image.index: file_ref(photo)}
        sent = await _document(
            bot, chat_id, job, image, data, caption, markup, answer, max_document
        )
        return {image.index: file_ref(sent)}
    # An album can't carry buttons: the images, numbered as the buttons are, then one message
    # with caption and keyboard.
    titles = dict(zip((i.index for i in result.images), view.titles, strict=True))

    def title(index: int) -> str:
        # An album's captions are rendered here: ``outbound`` sees only the request's own text.
        return reader().render(titles[index])

    async def album() -> str:
        """The album; what the next part needs (its first message) and where the images are."""
        group: list[InputMediaPhoto | InputMediaDocument] = []
        if all(media.fits_as_photo(data) for _, data in pictures):
            group = [InputMediaPhoto(data, caption=title(i.index)) for i, data in pictures]
        else:  # an album can't mix photos and files
            for image, data in pictures:
                fitted = await _fit(data, max_document)
                name = images.file_name(job, image, fitted)
                group.append(InputMediaDocument(fitted, filename=name, caption=title(image.index)))
        sent = await bot.send_media_group(chat_id, group, reply_parameters=answer)
        posted = {i.index: file_ref(m) for (i, _), m in zip(pictures, sent, strict=True)}
        return json.dumps({"first": sent[0].message_id, "posted": posted})

    await parts.load()
    went = json.loads(await parts.once("album", album))
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
    fitted = await _fit(data, max_document)
    return DOCUMENT, fitted, images.file_name(job, image, fitted)


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


async def _photo(
    bot: Bot,
    chat_id: int,
    data: bytes,
    caption: str,
    markup: InlineKeyboardMarkup | None,
    answer: ReplyParameters | None,
) -> Message | None:
    """Send as a photo if Telegram takes it as one; None means "send it as a file"."""
    if not media.fits_as_photo(data):
        return None
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
    bot: Bot,
    chat_id: int,
    job: Job,
    image: ResultImage,
    data: bytes,
    caption: str,
    markup: InlineKeyboardMarkup | None,
    answer: ReplyParameters | None,
    max_document: int,
) -> Message:
    fitted = await _fit(data, max_document)
    return await bot.send_document(
        chat_id,
        fitted,
        filename=images.file_name(job, image, fitted),
        caption=caption,
        reply_markup=markup,
        reply_parameters=answer,
    )


async def _fit(data: bytes, limit: int) -> bytes:
    return await asyncio.to_thread(images.shrink, data, limit)
