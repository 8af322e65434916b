"""/start, /help, /settings and /queue."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.core.domain import TELEGRAM, UserKey
from bot.core.presenters import HelpView, QueueView, SettingsPanel
from bot.core.service.api import BotApi
from bot.frontends.telegram import views
from bot.frontends.telegram.addressing import sender_id


class Commands:
    def __init__(self, service: BotApi) -> None:
        self._service = service

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start and /help: what the bot does, examples, the options and the models."""
        if update.message is not None:
            text = views.help_text(HelpView.of(self._service.models), context.bot.username)
            await update.message.reply_text(text)

    async def settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/settings: the user's defaults, as a keyboard of choices."""
        message = update.message
        if message is None:
            return
        current = await self._service.settings(UserKey(TELEGRAM, str(sender_id(message))))
        text, markup = views.settings_view(
            SettingsPanel.of(current, self._service.models, self._service.defaults)
        )
        await message.reply_text(text, reply_markup=markup)

    async def queue(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/queue: the user's waiting and running jobs, with a cancel button for each waiting."""
        message = update.message
        if message is None:
            return
        items = await self._service.queue(UserKey(TELEGRAM, str(sender_id(message))))
        text, markup = views.queue_view(QueueView.of(items))
        await message.reply_text(text, reply_markup=markup)
