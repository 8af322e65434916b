"""Meeting the bot: /start greets the user by name with examples to tap, and the bot introduces
itself once when it is added to a group. A tapped example is the presser's own prompt: it goes
through the same checks (queue, quota) and is paid like any other; /help keeps the reference."""

from __future__ import annotations

import logging

from telegram import ChatMember, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.core import texts
from bot.core.i18n import _
from bot.core.service.api import BotApi
from bot.frontends.telegram import views
from bot.frontends.telegram.asking import admit_prompt
from bot.frontends.telegram.buttons import answer
from bot.frontends.telegram.intake import Intake

log = logging.getLogger(__name__)
_OUT = (ChatMember.LEFT, ChatMember.BANNED)
_IN = (ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER, ChatMember.RESTRICTED)


class Onboarding:
    def __init__(self, service: BotApi, intake: Intake) -> None:
        self._service = service
        self._intake = intake

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start: a greeting by name, and examples that run when tapped."""
        message = update.message
        if message is None:
            return
        name = message.from_user.first_name if message.from_user else ""
        await message.reply_text(texts.greeting(name), reply_markup=views.examples())

    async def joined(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The bot was added to a group: say once who it is and how to ask it."""
        change = update.my_chat_member
        if change is None or change.chat.type not in ("group", "supergroup"):
            return
        if change.old_chat_member.status not in _OUT or change.new_chat_member.status not in _IN:
            return
        username = context.bot.username
        how = _(
            "Ask with /imagine a fox in the snow, or mention me (@{username}).", username=username
        )
        text = texts.introduction(f"@{username}", how, "/help")
        try:
            await context.bot.send_message(change.chat.id, text, reply_markup=views.examples())
        except TelegramError as exc:  # added without the right to post: nothing to say it with
            log.info("could not introduce the bot in chat %d: %s", change.chat.id, exc)

    async def example(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tapped example: the presser's own prompt, answered under the greeting."""
        query = update.callback_query
        if query is None:
            return
        prompt = views.example_prompt(query.data or "")
        if prompt is None or query.message is None:
            await query.answer(views.INVALID_BUTTON)
            return
        await self._intake.start(
            context.bot,
            chat_id=query.message.chat.id,
            user_id=query.from_user.id,
            answer_to=query.message.message_id,
            admit=admit_prompt(self._service, prompt, 0),
            refuse=lambda refusal: answer(query, refusal.message),
            admitted=lambda: answer(query),
        )
