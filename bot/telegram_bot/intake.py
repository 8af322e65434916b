"""From "a user asked" to "a job is queued": status message first, then references, then submit.

The status message is sent before the job exists so that the stored job knows where its status
lives (``Owner.route["status"]``) and a restarted process can still edit it. Refusals from the
core become that status message's text: the short reply to the user's message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from telegram import Bot, Message
from telegram.error import TelegramError

from bot.core import texts
from bot.core.domain import Owner, Submitted
from bot.core.errors import InvalidInput
from bot.core.service import Service
from bot.telegram_bot import render, status
from bot.telegram_bot.status import StatusLocks

PLATFORM = "telegram"
log = logging.getLogger(__name__)

# What the intake calls once the status message exists: submit, or press a button.
Request = Callable[[Owner, list[bytes]], Awaitable[Submitted]]


@dataclass(frozen=True)
class Source:
    """A user's image on Telegram's servers, and its size as Telegram reports it."""

    file_id: str
    file_size: int | None


def sources_of(message: Message | None) -> list[Source]:
    """A message's image: its largest photo size, or its document (the core judges content)."""
    if message is None:
        return []
    if message.photo:
        best = message.photo[-1]
        return [Source(best.file_id, best.file_size)]
    if message.document is not None:
        return [Source(message.document.file_id, message.document.file_size)]
    return []


class Intake:
    def __init__(self, service: Service, locks: StatusLocks, *, max_download: int | None) -> None:
        self._service = service
        self._locks = locks
        self._max_download = max_download

    async def start(
        self,
        bot: Bot,
        *,
        chat_id: int,
        user_id: int,
        answer_to: int,
        request: Request,
        sources: Sequence[Source] = (),
    ) -> None:
        """Answer with a status message, fetch the references, and hand the job to the core."""
        sent = await status.send_status(bot, chat_id, answer_to, render.RECEIVED)
        key = (chat_id, sent.message_id)
        owner = Owner(
            PLATFORM, str(user_id), str(chat_id), str(answer_to), {"status": str(sent.message_id)}
        )
        try:
            images = [await self._fetch(bot, source) for source in sources]
            # Held until "queued" is shown, so "generating" can never be overwritten by it.
            async with self._locks.hold(key):
                submitted = await request(owner, images)
                try:
                    await status.edit(bot, key, texts.queued(submitted.position))
                except TelegramError as exc:  # the job is queued; its progress is a courtesy
                    log.info("job %d: could not show its position: %s", submitted.job_id, exc)
        except InvalidInput as refusal:
            await status.show(bot, key, texts.failed(refusal.message), chat_id, answer_to)
        except Exception:  # a bug must not leave the user looking at "⏳" forever
            log.exception("a request from chat %d could not be submitted", chat_id)
            await status.show(bot, key, texts.failed(texts.INTERNAL), chat_id, answer_to)

    async def _fetch(self, bot: Bot, source: Source) -> bytes:
        limit = self._service.limits.max_image_bytes
        if self._max_download is not None:
            limit = min(limit, self._max_download)
        # Refuse by Telegram's stated size: nothing is downloaded that would be refused anyway.
        if source.file_size is not None and source.file_size > limit:
            raise InvalidInput(texts.image_too_large(source.file_size, limit))
        try:
            file = await bot.get_file(source.file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            log.info("could not download a reference: %s", exc)
            raise InvalidInput(render.DOWNLOAD_FAILED) from exc
