"""Posting a past job again (/show, and 🔎 Show buttons): the core brings its answer for this
chat, and it goes out as a reply — the images Telegram holds by file id, the others from their
bytes — with buttons that work here from now on."""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import TelegramError

from bot.core import history_texts
from bot.core.domain import Job
from bot.core.history_views import ShowView
from bot.core.i18n import join
from bot.core.people import TELEGRAM, Owner
from bot.core.service.api import BotApi
from bot.frontends.telegram import delivery, outbound, status

log = logging.getLogger(__name__)


class Showing:
    def __init__(self, service: BotApi, *, max_document: int) -> None:
        self._service = service
        self._max_document = max_document

    async def post(self, bot: Bot, owner: Owner, job: Job, answer_to: int) -> None:
        """Post ``job`` (which the service let ``owner`` see) in ``owner``'s chat."""
        brought = await self._service.bring(owner, job)
        view = ShowView.of(brought.result, missing=brought.missing, limit=outbound.MAX_CAPTION)
        chat_id = int(owner.chat_id)
        try:
            posted = await delivery.repost(
                bot, chat_id, answer_to, brought.result, view, max_document=self._max_document
            )
        except TelegramError as exc:  # a file Telegram lost, say: the job's text still helps
            log.warning("job %d could not be shown again: %s", job.id, exc)
            await status.send(
                bot, chat_id, join("\n", [view.text, history_texts.IMAGES_UNAVAILABLE]), answer_to
            )
            return
        if posted:
            await self._service.save_posted(job.id, TELEGRAM, posted)
