"""From "a user asked" to "a job is queued": checks first, then the references, then the
stored, queued job, then its status message (or its line on its busy chat's board).

Everything the core can refuse without the images is refused before anything is sent or
downloaded: one short answer, and a refused album costs no download. The job is queued before
its status message is sent: Telegram takes about one message a second in a chat
(platforms.md, "Flood limits"), and a command must not wait for its chat's budget to take its
place in the queue. The status message says the place the job took, so that a job answered
soon costs no edit before its answer; ``StatusBook`` keeps where it is, and decides which of it
and the answer goes (``status_book``).
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
from bot.core.presenters import JobStatus
from bot.core.service.api import Admit, BotApi
from bot.frontends.telegram import status, views
from bot.frontends.telegram.addressing import owner_in
from bot.frontends.telegram.status_book import Posting, StatusBook

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
    def __init__(self, service: BotApi, book: StatusBook, *, max_download: int | None) -> None:
        self._service = service
        self._book = book
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
        """Check the request, fetch the references, queue the job, show its status message;
        the queued job, or None if it was refused (and told so).

        ``name`` is how a caption names the user (a press on someone else's result says whose
        the new one is). ``refuse`` says a refusal (by default a reply); ``admitted`` runs once
        the checks passed. ``status_id`` is a status message an interrupted attempt sent, to
        be used again; ``on_status`` learns the one in use.
        """
        owner = replace(owner_in(chat_id, user_id, answer_to), name=name)
        reuse = (chat_id, status_id) if status_id is not None else None
        submitted: Submitted | None = None
        posting: Posting | None = None
        try:
            async with admit(owner) as admission:
                self.check_sizes(sources)
                if admitted is not None:
                    await admitted()
                submitted = await admission.submit(fetch=lambda: self.fetch_all(bot, sources))
                # Nothing awaited since the job was queued: its answer can't have come yet.
                # A busy chat's board is this process's to keep only where its answers are
                # given (a follower of several processes gives none).
                posting = self._book.expect(
                    bot,
                    submitted.job_id,
                    chat_id,
                    reuse,
                    may_list=self._service.leading,
                    images=submitted.images,
                    answer_in=submitted.answer_in,
                )
        except InvalidInput as refusal:
            if submitted is None:
                await self._refuse(bot, refusal, refuse, chat_id, answer_to)
        except TelegramError as exc:  # Telegram refuses to let us talk there: nothing to answer
            log.warning("a request in chat %d can't be answered: %s", chat_id, exc)
        except Exception:  # a bug must not leave the user without an answer
            log.exception("a request from chat %d could not be submitted", chat_id)
            if submitted is None:
                await self._refuse(bot, InvalidInput(texts.INTERNAL), None, chat_id, answer_to)
        if submitted is None or posting is None:
            return submitted
        shown = self._show(bot, submitted, posting, chat_id, answer_to, on_status)
        if posting.hold:  # its answer is expected first: the sender's next update needn't wait
            self._book.later(shown)
        else:
            await shown
        return submitted

    async def _show(
        self,
        bot: Bot,
        submitted: Submitted,
        posting: Posting,
        chat_id: int,
        answer_to: int,
        on_status: Callable[[int], Awaitable[None]] | None,
    ) -> None:
        """The queued job's status message, or its line on its chat's board."""
        if posting.listed:
            await self._book.held(submitted.job_id, posting)  # an answer due soon may come first
        else:
            waiting = JobStatus(False, submitted.position, paused=submitted.paused)  # any kind
            key = await self._book.post(
                bot,
                submitted.job_id,
                posting,
                chat_id=chat_id,
                answer_to=answer_to,
                text=status.own(waiting),
            )
            if key is not None and on_status is not None:
                await on_status(key[1])
            if not posting.listed:  # else held while its chat got a board: listed there
                return
        job = await self._service.job(submitted.job_id)  # its line says what it is (if still due)
        if job is not None:
            shown = JobStatus(job.is_upscale, submitted.position, paused=submitted.paused)
            self._book.boards.describe(job, shown)

    async def _refuse(
        self,
        bot: Bot,
        refusal: InvalidInput,
        refuse: Refuse | None,
        chat_id: int,
        answer_to: int,
    ) -> None:
        """Say why the request is not queued (it has no status message yet)."""
        try:
            if refuse is not None:
                await refuse(refusal)
            else:
                await status.send(bot, chat_id, texts.failed(refusal.message), answer_to)
        except TelegramError as exc:
            log.warning("a refusal in chat %d can't be said: %s", chat_id, exc)

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
