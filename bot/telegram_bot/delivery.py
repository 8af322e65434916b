"""What the service reports, as Telegram messages: progress, results, failures, admin alerts.

Telegram errors become ``DeliveryError``: permanent when retrying cannot help (bot blocked,
chat gone, a request Telegram refuses), transient otherwise (network, timeouts, flood waits the
rate limiter could not absorb). Flood waits themselves are retried by ``AIORateLimiter``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence

from telegram import (
    Bot,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    ReplyParameters,
)
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from bot.core import images, texts
from bot.core.domain import Job, JobResult, Owner, ResultImage
from bot.core.ports import DeliveryError
from bot.core.service import Service
from bot.telegram_bot import media, outbound, render, status
from bot.telegram_bot.status import StatusKey, StatusLocks

log = logging.getLogger(__name__)


@contextlib.contextmanager
def delivery_errors() -> Iterator[None]:
    """Translate Telegram's errors into the core's ``DeliveryError``."""
    try:
        yield
    except (Forbidden, BadRequest, ChatMigrated) as exc:
        # Blocked, kicked, chat not found, or a request Telegram refuses: it would refuse again.
        raise DeliveryError(f"Telegram refused: {exc.message}", permanent=True) from exc
    except TelegramError as exc:
        raise DeliveryError(f"Telegram failed: {exc.message}") from exc


def status_key(owner: Owner) -> StatusKey | None:
    message_id = owner.route.get("status")
    return (int(owner.chat_id), int(message_id)) if message_id else None


def _answer_to(owner: Owner) -> int | None:
    return int(owner.reply_to) if owner.reply_to else None


class Delivery:
    def __init__(self, service: Service, locks: StatusLocks, *, max_document: int) -> None:
        self._service = service
        self._locks = locks
        self._max_document = max_document

    async def started(self, bot: Bot, job: Job) -> None:
        outbound.answering.set(int(job.owner.user_id))
        key = status_key(job.owner)
        async with self._locks.hold(key):
            # This report races the final answer: never turn a result back into "generating".
            current = await self._service.job(job.id)
            if key is None or current is None or current.state.final:
                return
            await status.edit(bot, key, texts.UPSCALING if job.is_upscale else texts.STARTED)

    async def finished(self, bot: Bot, result: JobResult) -> None:
        owner = result.job.owner
        outbound.answering.set(int(owner.user_id))
        key = status_key(owner)
        async with self._locks.hold(key):
            await self._send(bot, int(owner.chat_id), result)
            if key is not None:
                await _clear(bot, key)

    async def failed(self, bot: Bot, job: Job, message: str) -> None:
        owner = job.owner
        outbound.answering.set(int(owner.user_id))
        key = status_key(owner)
        async with self._locks.hold(key):
            await status.show(
                bot, key, texts.failed(message), int(owner.chat_id), _answer_to(owner)
            )

    async def alert(self, bot: Bot, admin_ids: Sequence[str], text: str) -> None:
        for admin in admin_ids:
            try:
                await bot.send_message(int(admin), text)
            except TelegramError as exc:  # one unreachable admin must not silence the others
                log.warning("could not alert Telegram admin %s: %s", admin, exc.message)

    async def _send(self, bot: Bot, chat_id: int, result: JobResult) -> None:
        job = result.job
        pictures = [(image, image.data) for image in result.images if image.data]
        if not pictures:
            raise DeliveryError(f"job {job.id} has no image bytes left to send", permanent=True)
        caption = texts.caption(result)
        markup = render.keyboard(result.buttons)
        answer = status.reply_to(_answer_to(job.owner))
        if job.is_upscale:
            for image, data in pictures:  # uncompressed: a photo would be recompressed
                await self._document(bot, chat_id, job, image, data, caption, markup, answer)
            return
        if len(pictures) == 1:
            image, data = pictures[0]
            if not await self._photo(bot, chat_id, data, caption, markup, answer):
                await self._document(bot, chat_id, job, image, data, caption, markup, answer)
            return
        # An album can't carry buttons: the images, then one message with caption and keyboard.
        group: list[InputMediaPhoto | InputMediaDocument] = []
        if all(media.fits_as_photo(data) for _, data in pictures):
            group = [InputMediaPhoto(data) for _, data in pictures]
        else:  # an album can't mix photos and files
            for image, data in pictures:
                fitted = await self._fit(data)
                group.append(
                    InputMediaDocument(fitted, filename=images.file_name(job, image, fitted))
                )
        sent = await bot.send_media_group(chat_id, group, reply_parameters=answer)
        first = status.reply_to(sent[0].message_id)
        await bot.send_message(chat_id, caption, reply_markup=markup, reply_parameters=first)

    async def _photo(
        self,
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
        self,
        bot: Bot,
        chat_id: int,
        job: Job,
        image: ResultImage,
        data: bytes,
        caption: str,
        markup: InlineKeyboardMarkup | None,
        answer: ReplyParameters | None,
    ) -> None:
        fitted = await self._fit(data)
        await bot.send_document(
            chat_id,
            fitted,
            filename=images.file_name(job, image, fitted),
            caption=caption,
            reply_markup=markup,
            reply_parameters=answer,
        )

    async def _fit(self, data: bytes) -> bytes:
        return await asyncio.to_thread(images.shrink, data, self._max_document)


async def _clear(bot: Bot, key: StatusKey) -> None:
    """Remove the status message once the answer is there, or mark it done if that fails."""
    try:
        await bot.delete_message(*key)
    except TelegramError:  # e.g. older than 48 hours: bots may no longer delete it
        with contextlib.suppress(TelegramError):
            await status.edit(bot, key, render.DONE)
