"""/help, /settings, /queue, and the answer to a command the bot doesn't have."""

from __future__ import annotations

from telegram import Message, Update, User
from telegram.ext import ContextTypes

from bot.core.domain import TELEGRAM, UserKey
from bot.core.presenters import HelpView, QueueView, SettingsPanel
from bot.core.service.api import BotApi
from bot.frontends.telegram import views
from bot.frontends.telegram.addressing import COMMAND, sender_id


class Commands:
    def __init__(self, service: BotApi) -> None:
        self._service = service

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/help: what the bot does, examples, the options and the models."""
        if update.message is not None:
            text = views.help_text(HelpView.of(self._service.models), context.bot.username)
            await update.message.reply_text(text)

    async def settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/settings: the user's defaults, a labelled button each."""
        message = update.message
        if message is None:
            return
        user = UserKey(TELEGRAM, str(sender_id(message)))
        current, characters = (
            await self._service.settings(user),
            await self._service.characters(user),
        )
        text, markup = views.settings_view(
            SettingsPanel.of(current, self._service.models, self._service.defaults, characters)
        )
        text, entities = views.addressed(_owner(message), text)
        await message.reply_text(text, entities=entities, reply_markup=markup)

    async def queue(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/queue: the user's waiting and running jobs, with a cancel button for each."""
        message = update.message
        if message is None:
            return
        items = await self._service.queue(UserKey(TELEGRAM, str(sender_id(message))))
        text, markup = views.queue_view(QueueView.of(items))
        text, entities = views.addressed(_owner(message), text)
        await message.reply_text(text, entities=entities, reply_markup=markup)

    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A command the bot doesn't have: the list of those it has (in a group, only for a
        command addressed to this bot: other bots' commands are theirs)."""
        message = update.message
        command = COMMAND.match(message.text or "") if message is not None else None
        if message is None or command is None:
            return
        ours = command[2] is not None and command[2].lower() == context.bot.username.lower()
        if message.chat.type == "private" or ours:
            await message.reply_text(views.unknown_command(command[1]))


def _owner(message: Message) -> User | None:
    """Whom a panel in a group belongs to (named in it); in a private chat, the chat says it."""
    if message.chat.type == "private" or message.sender_chat is not None:
        return None
    return message.from_user
