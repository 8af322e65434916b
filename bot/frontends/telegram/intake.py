"""From "a user asked" to "a job is queued": checks first, then the status message, then the
references, then the stored job.

Everything the core can refuse without the images is refused before anything is sent or
downloaded: one short answer, and a refused album costs no download. The status message is
sent before the job exists so that the stored job knows where its status lives
(``Owner.route["status"]``) and a restarted process can still edit it; it says the place the
request takes in the queue, so that a job answered soon costs no edit before its answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from telegram import Bot, Message
from telegram.error import TelegramError

from bot.core import option_texts, texts
from bot.core.domain import Submitted
from bot.core.errors import InvalidInput
from bot.core.service.api import Admit, BotApi
from bot.frontends.telegram import outbound, status, views
from bot.frontends.telegram.addressing import owner_in
from bot.frontends.telegram.status import StatusKey

log = logging.getLogger(__name__)

# Says a refusal the core gave before anything was sent (a button's goes in its alert).
Refuse = Callable[[InvalidInput], Awaitable[object]]


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
    def __init__(self, service: BotApi, *, max_download: int | None) -> None:
        self._service = service
        self._max_download = max_download

    async def start(
        self,
        bot: Bot,
        *,
        chat_id: int,
        user_id: int,
        answer_to: int,
        admit: Admit,
        name: str = "",
        sources: Sequence[Source] = (),
        refuse: Refuse | None = None,
        admitted: Callable[[], Awaitable[object]] | None = None,
        status_id: int | None = None,
        on_status: Callable[[int], Awaitable[None]] | None = None,
    ) -> Submitted | None:
        """Check the request, show a status message, fetch the references, queue the job;
        the queued job, or None if it was refused (and told so).

        ``name`` is how a caption names the user (a press on someone else's result says whose
        the new one is). ``refuse`` says a refusal that comes before the status message (by
        default a reply);
        ``admitted`` runs once the checks passed. ``status_id`` is a status message an
        interrupted attempt sent, to be used again; ``on_status`` learns the one in use.
        """
        owner = replace(owner_in(chat_id, user_id, answer_to), name=name)
        key: StatusKey | None = None
        try:
            async with admit(owner) as admission:
                self.check_sizes(sources)
                if admitted is not None:
                    await admitted()
                with outbound.at(outbound.Urgency.STATUS):
                    text = admission.status().text
                    key = await self._status(bot, chat_id, answer_to, text, status_id)
                if key is not None and on_status is not None:
                    await on_status(key[1])
                route = {"status": str(key[1])} if key is not None else {}
                return await admission.submit(
                    fetch=lambda: self.fetch_all(bot, sources), route=route
                )
        except InvalidInput as refusal:
            if key is None and refuse is not None:
                await refuse(refusal)
            else:
                await status.show(bot, key, texts.failed(refusal.message), chat_id, answer_to)
        except TelegramError as exc:  # Telegram refuses to let us talk there: nothing to answer
            log.warning("a request in chat %d can't be answered: %s", chat_id, exc)
        except Exception:  # a bug must not leave the user looking at "⏳" forever
            log.exception("a request from chat %d could not be submitted", chat_id)
            await status.show(bot, key, texts.failed(texts.INTERNAL), chat_id, answer_to)
        return None

    async def _status(
        self, bot: Bot, chat_id: int, answer_to: int, text: str, reuse: int | None
    ) -> StatusKey | None:
        """The request's status message saying ``text`` (again, after an interruption), or
        None if Telegram keeps failing: the request goes on, and its answer comes as a reply of
        its own."""
        if reuse is not None:
            try:
                if await status.edit(bot, (chat_id, reuse), text):
                    return chat_id, reuse
            except TelegramError as exc:
                log.info("could not take up status message %d again: %s", reuse, exc)
        try:
            sent = await status.send(bot, chat_id, text, answer_to)
        except TelegramError as exc:
            if not status.passing(exc):
                raise
            log.warning("chat %d: no status message (%s); the request goes on", chat_id, exc)
            return None
        return chat_id, sent.message_id

    def check_sizes(self, sources: Sequence[Source]) -> None:
        # Refused by Telegram's stated size: nothing is downloaded that would be refused anyway,
        # by the bot (BOT_MAX_IMAGE_MB) or by the public Bot API, which serves bots 20 MB.
        limit = self._service.limits.max_image_bytes
        for source in sources:
            size = source.file_size
            if size is not None and size > limit:
                raise InvalidInput(option_texts.image_too_large(size, limit))
            if size is not None and self._max_download is not None and size > self._max_download:
                raise InvalidInput(views.too_large_to_fetch(size, self._max_download))

    async def fetch_all(self, bot: Bot, sources: Sequence[Source]) -> list[bytes]:
        return [await self._fetch(bot, source) for source in sources]

    async def _fetch(self, bot: Bot, source: Source) -> bytes:
        try:
            file = await bot.get_file(source.file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            log.info("could not download a reference: %s", exc)
            raise InvalidInput(views.DOWNLOAD_FAILED) from exc
