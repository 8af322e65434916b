"""/help, /settings, /queue, /info, /show, /history, /link, the operator's /admin, and the answer
to a command the bot doesn't have."""

from __future__ import annotations

from telegram import Message, Update, User
from telegram.error import BadRequest, Forbidden
from telegram.ext import ContextTypes

from bot.core import history_texts, texts
from bot.core.errors import InvalidInput
from bot.core.people import TELEGRAM, Owner, UserKey
from bot.core.presenters import HelpView, QueueView
from bot.core.service.api import BotApi
from bot.core.stats import StatsView
from bot.frontends.telegram import mentions, views
from bot.frontends.telegram.addressing import COMMAND, command_argument, owner_in, sender_id
from bot.frontends.telegram.showing import Showing


class Commands:
    def __init__(self, service: BotApi, showing: Showing) -> None:
        self._service = service
        self._showing = showing

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
        info = await self._service.info(owner_in(message.chat_id, sender_id(message)))
        text, markup = views.settings_view(info.settings, usage=info.usage)
        text, entities = mentions.addressed(_owner(message), text)
        await message.reply_text(text, entities=entities, reply_markup=markup)

    async def queue(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/queue: the user's waiting and running jobs, with a cancel button for each."""
        message = update.message
        if message is None:
            return
        items = await self._service.queue(UserKey(TELEGRAM, str(sender_id(message))))
        here = owner_in(message.chat_id, sender_id(message))
        text, markup = views.queue_view(QueueView.of(items), here)
        text, entities = mentions.addressed(_owner(message), text)
        await message.reply_text(text, entities=entities, reply_markup=markup)

    async def show(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/show <job id>: that job's images again, here, with buttons that work here."""
        message = update.message
        if message is None or message.text is None:
            return
        typed = command_argument(message.text)
        if not typed:
            await message.reply_text(history_texts.SHOW_HOW)
            return
        owner = Owner(TELEGRAM, str(sender_id(message)), str(message.chat_id))
        try:
            job = await self._service.show(owner, typed)
        except InvalidInput as refusal:
            await message.reply_text(refusal.message)
            return
        await self._showing.post(context.bot, owner, job, message.message_id)

    async def history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/history: your jobs, newest first, a page at a time, each with a 🔎 button. Only in
        a private chat: asked in a group, it is sent there."""
        message = update.message
        if message is None:
            return
        user_id = sender_id(message)
        view = await self._service.history(UserKey(TELEGRAM, str(user_id)))
        text, markup = views.history_view(view)
        if message.chat.type == "private":
            await message.reply_text(text, reply_markup=markup)
            return
        try:
            await context.bot.send_message(user_id, text, reply_markup=markup)
        except (Forbidden, BadRequest):  # they never started a private chat with the bot
            await message.reply_text(history_texts.history_private(context.bot.username))
            return
        await message.reply_text(history_texts.HISTORY_SENT)

    async def link(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/link: a code to join this account with your Discord one (or the link you have);
        /link <code>: join them; /link off: part them. In a private chat only: a code shown in
        a group could be taken by anyone there."""
        message = update.message
        if message is None or message.text is None:
            return
        if message.chat.type != "private":
            await message.reply_text(history_texts.LINK_PRIVATE)
            return
        user = UserKey(TELEGRAM, str(sender_id(message)))
        typed = command_argument(message.text)
        try:
            if typed.lower() == views.UNLINK_WORD:
                await message.reply_text(await self._service.unlink(user))
                return
            shown = await self._service.link(user, typed or None)
        except InvalidInput as refusal:
            await message.reply_text(refusal.message)
            return
        await message.reply_text(shown.text, reply_markup=views.unlink() if shown.linked else None)

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

    async def info(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/info: the user's images today and left, their jobs, their defaults."""
        message = update.message
        if message is None:
            return
        owner = owner_in(message.chat_id, sender_id(message))
        await message.reply_text(views.info_text(await self._service.info(owner), owner))

    async def admin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/admin <command> …: the operator's commands (for BOT_ADMINS; others are refused)."""
        message = update.message
        if message is None or message.text is None:
            return
        actor = UserKey(TELEGRAM, str(sender_id(message)))
        try:
            answer = await self._service.admin(actor, command_argument(message.text))
        except InvalidInput as refusal:
            await message.reply_text(texts.failed(refusal.message))
            return
        text = views.stats_text(answer) if isinstance(answer, StatsView) else answer
        await message.reply_text(text)


def _owner(message: Message) -> User | None:
    """Whom a panel in a group belongs to (named in it); in a private chat, the chat says it."""
    if message.chat.type == "private" or message.sender_chat is not None:
        return None
    return message.from_user
