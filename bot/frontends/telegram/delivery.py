"""Sending a final answer: one image as a photo with its keyboard, several as an album followed
by one message with the keyboard (an album can't carry buttons), upscales as files; a picture
Telegram won't take as a photo goes as a file, shrunk to the document limit if need be.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import (
    Bot,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    ReplyParameters,
)
from telegram.error import BadRequest

from bot.core import images
from bot.core.domain import Job, JobResult, ResultImage
from bot.core.ports import DeliveryError
from bot.core.presenters import ResultView
from bot.frontends.parts import SentParts
from bot.frontends.telegram import media, status, views

log = logging.getLogger(__name__)


async def send(
    bot: Bot, result: JobResult, view: ResultView, parts: SentParts, *, max_document: int
) -> str | None:
    """The answer of a finished job, replying to the message that asked for it; for an
    upscale, the file id Telegram gave its file (to send it again without paying). Of an
    answer in two calls, a retry sends only what ``parts`` says did not go."""
    job = result.job
    chat_id = int(job.owner.chat_id)
    pictures = [(image, image.data) for image in result.images if image.data]
    if not pictures:
        raise DeliveryError(f"job {job.id} has no image bytes left to send", permanent=True)
    caption = view.caption
    markup = views.keyboard(result.buttons)
    answer = status.reply_to(status.answer_to(job.owner))
    if job.is_upscale:
        file_id = None
        for image, data in pictures:  # uncompressed: a photo would be recompressed
            file_id = await _document(
                bot, chat_id, job, image, data, caption, markup, answer, max_document
            )
        return file_id
    if len(pictures) == 1:
        image, data = pictures[0]
        if not await _photo(bot, chat_id, data, caption, markup, answer):
            await _document(bot, chat_id, job, image, data, caption, markup, answer, max_document)
        return None
    # An album can't carry buttons: the images, numbered as the buttons are, then one message
    # with caption and keyboard.
    titles = dict(zip((i.index for i in result.images), view.titles, strict=True))

    async def album() -> str:
        group: list[InputMediaPhoto | InputMediaDocument] = []
        if all(media.fits_as_photo(data) for _, data in pictures):
            group = [InputMediaPhoto(data, caption=titles[i.index]) for i, data in pictures]
        else:  # an album can't mix photos and files
            for image, data in pictures:
                fitted = await _fit(data, max_document)
                name = images.file_name(job, image, fitted)
                group.append(InputMediaDocument(fitted, filename=name, caption=titles[image.index]))
        sent = await bot.send_media_group(chat_id, group, reply_parameters=answer)
        return str(sent[0].message_id)

    await parts.load()
    first = status.reply_to(int(await parts.once("album", album)))
    await bot.send_message(chat_id, caption, reply_markup=markup, reply_parameters=first)
    await parts.done()
    return None


async def _photo(
    bot: Bot,
    chat_id: int,
    data: bytes,
    caption: str,
    markup: InlineKeyboardMarkup | None,
    answer: ReplyParameters | None,
) -> bool:
    """Send as a photo if Telegram takes it as one; False means "send it as a file"."""
    if not media.fits_as_photo(data):
        return False
    try:
        await bot.send_photo(
            chat_id, data, caption=caption, reply_markup=markup, reply_parameters=answer
        )
    except BadRequest as exc:
        if "chat not found" in exc.message.lower():
            raise
        log.info("Telegram refused an image as a photo (%s); sending it as a file", exc.message)
        return False
    return True


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
) -> str | None:
    fitted = await _fit(data, max_document)
    sent = await bot.send_document(
        chat_id,
        fitted,
        filename=images.file_name(job, image, fitted),
        caption=caption,
        reply_markup=markup,
        reply_parameters=answer,
    )
    return sent.document.file_id if sent.document is not None else None


async def _fit(data: bytes, limit: int) -> bytes:
    return await asyncio.to_thread(images.shrink, data, limit)
