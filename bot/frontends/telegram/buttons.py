"""Callback queries: result buttons (U, 🎲, R), cancel buttons from /queue, settings buttons.

Callback data comes from the client and may be forged: it is parsed strictly, the core decides
whether the presser may press it where they are, and everything else is read from the store, so
buttons keep working after a restart. Every callback query is answered exactly once, before any
slow work (the client shows a spinner until then); a refusal is that answer, as an alert only
the presser sees, never a message in the chat.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import (
    Bot,
    CallbackQuery,
    ForceReply,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessage,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.core import settings, texts
from bot.core.domain import TELEGRAM, Action, Button, Owner, UserKey
from bot.core.errors import InvalidInput
from bot.core.ports import Parking
from bot.core.presenters import QueueView, SettingsPanel
from bot.core.service.api import BotApi
from bot.frontends.telegram import status, views
from bot.frontends.telegram.asking import REUSE
from bot.frontends.telegram.intake import Intake

log = logging.getLogger(__name__)


class Buttons:
    def __init__(self, service: BotApi, intake: Intake, parking: Parking) -> None:
        self._service = service
        self._intake = intake
        self._parking = parking

    async def result(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """U1–U4, 🎲, R1–R4 and cancel: ``action:job:index``, resolved from the store."""
        query = update.callback_query
        if query is None:
            return
        button = Button.parse(query.data or "")
        if button is None or query.message is None:
            await query.answer(views.INVALID_BUTTON)
            return
        if button.action is Action.CANCEL:
            await self._cancel(query, query.message, button)
        elif button.action is Action.REUSE:
            await self._ask_prompt(context.bot, query, query.message, button)
        else:
            # The presser owns the new job; its answer replies to the result it came from.
            await self._intake.start(
                context.bot,
                chat_id=query.message.chat.id,
                user_id=query.from_user.id,
                answer_to=query.message.message_id,
                admit=lambda owner: self._service.admit_press(owner, button),
                refuse=lambda text: _answer(query, text),
                admitted=lambda: _answer(query),
            )

    async def settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /settings choice: ``set:<key>:<value>`` or ``set:reset``, saved for the presser."""
        query = update.callback_query
        if query is None:
            return
        choice = views.parse_setting(query.data or "")
        if choice is None:
            await query.answer(views.INVALID_BUTTON)
            return
        user = UserKey(TELEGRAM, str(query.from_user.id))
        name, value = choice
        try:
            self._service.throttle_press(user)  # each choice edits the panel, maybe in a group
            if name == "reset":
                saved = await self._service.update_settings(user, **dict.fromkeys(settings.NAMES))
            else:
                saved = await self._service.update_settings(user, **{name: value})
        except InvalidInput as refusal:
            await query.answer(refusal.message, show_alert=True)
            return
        await query.answer(views.SAVED)
        text, markup = views.settings_view(
            SettingsPanel.of(saved, self._service.models, self._service.defaults)
        )
        await _edit_quietly(query, text, markup)

    async def _cancel(
        self, query: CallbackQuery, message: MaybeInaccessibleMessage, button: Button
    ) -> None:
        user = query.from_user
        owner = Owner(TELEGRAM, str(user.id), str(message.chat.id))
        try:
            await self._service.press_cancel(owner, button)
        except InvalidInput as refusal:
            await query.answer(refusal.message, show_alert=True)
            return
        await query.answer(texts.CANCELLED)
        job = await self._service.job(button.job_id)
        key = status.key_of(job.owner) if job is not None else None
        if key is not None:
            with contextlib.suppress(TelegramError):  # the user may have deleted it
                await status.edit(query.get_bot(), key, f"✖ {texts.CANCELLED}")
        items = await self._service.queue(UserKey(TELEGRAM, str(user.id)))
        await _edit_quietly(query, *views.queue_view(QueueView.of(items)))

    async def _ask_prompt(
        self, bot: Bot, query: CallbackQuery, message: MaybeInaccessibleMessage, button: Button
    ) -> None:
        """Rn: ask for the new prompt with a ForceReply; the pending request lives in the store."""
        user = query.from_user
        try:  # before anything is posted: only a press that may act on the result gets a form
            await self._service.pressed_job(
                Owner(TELEGRAM, str(user.id), str(message.chat.id)), button
            )
        except InvalidInput as refusal:
            await query.answer(refusal.message, show_alert=True)
            return
        await query.answer()
        # In groups, a selective ForceReply opens the reply field only for mentioned users.
        mention = f"@{user.username}" if user.username else ""
        asked = await bot.send_message(
            message.chat.id,
            views.reuse_request(button.index, mention),
            reply_markup=ForceReply(
                selective=bool(mention), input_field_placeholder=f"Prompt for image {button.index}"
            ),
            reply_parameters=status.reply_to(message.message_id),
        )
        await self._parking.add_pending(
            REUSE, f"{message.chat.id}:{asked.message_id}", f"{button.data} {user.id}"
        )


async def _answer(query: CallbackQuery, refusal: str | None = None) -> None:
    """Answer a press (a refusal as an alert only the presser sees). A press handled late (the
    bot was down) can't be answered any more; its job goes ahead all the same."""
    try:
        await query.answer(refusal, show_alert=refusal is not None)
    except BadRequest as exc:
        log.info("could not answer a button press: %s", exc.message)


async def _edit_quietly(
    query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """Re-render the message a button sits on; pressing the current choice changes nothing."""
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as exc:
        if "message is not modified" not in exc.message.lower():
            log.info("could not re-render a keyboard: %s", exc.message)
