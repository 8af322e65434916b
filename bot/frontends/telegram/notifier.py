"""``TelegramNotifier``: what the service reports, as Telegram messages — progress on the job's
status message, the answer in its place (``delivery``), failures, admin alerts.

Telegram errors become ``DeliveryError``: permanent when retrying cannot help (bot blocked,
chat gone, a request Telegram refuses), transient otherwise (network, timeouts, flood waits the
rate limiter could not absorb). Flood waits themselves are retried by the rate limiter
(``outbound``). Each report is sent on behalf of the job's owner (``outbound.answering``),
progress after everything else (``line.Urgency``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from functools import partial

from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from bot.core import texts
from bot.core.captions import ResultView
from bot.core.domain import Job, JobResult
from bot.core.ports import DeliveryError, Parking, Posted
from bot.core.presenters import JobStatus
from bot.core.service.api import BotApi
from bot.frontends.parts import SentParts
from bot.frontends.telegram import delivery, outbound, status
from bot.frontends.telegram.buttons import UPSCALE_SENT
from bot.frontends.telegram.line import Overtaken, Urgency
from bot.frontends.telegram.status_book import StatusBook

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


class TelegramNotifier:
    """Implements ``bot.core.ports.Notifier`` for Telegram."""

    def __init__(
        self,
        bot: Bot,
        service: BotApi,
        parking: Parking,
        book: StatusBook,
        *,
        max_document: int,
    ) -> None:
        self._bot = bot
        self._service = service
        self._parking = parking
        self._book = book
        self._max_document = max_document

    async def job_progress(self, job: Job, status_now: JobStatus) -> None:
        if self._book.boards.tell(job.id, status_now):  # its line on the chat's board
            return
        chat_id = int(job.owner.chat_id)
        running = status_now.running
        allowance = self._book.allowance
        need = allowance.need(chat_id, job.id, running=running)
        if not allowance.allows(chat_id, need):  # its chat's calls are kept for what tells more
            return
        key = await self._book.key(job)
        if key is None:
            return
        outbound.answering.set(int(job.owner.user_id))
        paid = partial(allowance.take, chat_id, need, job.id if running else None)
        told = status.own(status_now)
        at, due = outbound.at(Urgency.PROGRESS), outbound.unless_overtaken(paid)
        with contextlib.suppress(Overtaken), at, due:  # not paid for at its turn: not sent
            await status.edit(self._bot, key, told)

    async def job_finished(self, result: JobResult) -> Posted:
        owner = result.job.owner
        outbound.answering.set(int(owner.user_id))
        with delivery_errors():
            view = ResultView.of(result, self._service.models, limit=outbound.MAX_CAPTION)
            parts = SentParts(self._parking, result.job.id)
            posted = await delivery.send(
                self._bot,
                result,
                view,
                await self._book.for_answer(result.job),
                parts,
                max_document=self._max_document,
            )
        self._book.forget(result.job.id)
        if result.job.is_upscale:  # its file: a second press of its button sends it again
            for ref in posted.values():
                file_id = ref.partition(":")[2]
                await self._parking.add_pending(UPSCALE_SENT, str(result.job.id), file_id)
        return posted

    async def job_failed(self, job: Job, message: str) -> None:
        owner = job.owner
        outbound.answering.set(int(owner.user_id))
        with delivery_errors():
            await status.show(
                self._bot,
                await self._book.for_answer(job),
                texts.failed(message),
                int(owner.chat_id),
                status.answer_to(owner),
            )
        self._book.forget(job.id)

    async def job_ended_elsewhere(self, job: Job) -> None:
        self._book.release(job)  # its line leaves its chat's board

    async def fetch_image(self, ref: str) -> bytes:
        with delivery_errors():
            return await delivery.fetch(self._bot, ref)

    async def admin_alert(self, admin_id: str, text: str) -> None:
        # A bot can't start a conversation: an admin who never wrote to it gets a 403 here.
        with delivery_errors():
            await self._bot.send_message(int(admin_id), text)
