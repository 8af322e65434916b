"""Callback queries: result buttons (upscale, draw again, edit), cancel buttons from /queue,
settings buttons.

Callback data comes from the client and may be forged: it is parsed strictly, the core decides
whether the presser may press it where they are, and everything else is read from the store, so
buttons keep working after a restart. Every callback query is answered exactly once, before any
slow work (the client shows a spinner until then); a refusal is that answer, as an alert only
the presser sees, never a message in the chat. A panel answers its owner only: anyone else
pressing it gets their own.
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
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ContextTypes

from bot.core import i18n, settings, texts
from bot.core.buttons import Action, Button
from bot.core.captions import caption
from bot.core.errors import AlreadyMade, InvalidInput
from bot.core.i18n import _
from bot.core.people import TELEGRAM, Owner, UserKey
from bot.core.ports import Parking
from bot.core.presenters import QueueView, SettingsPanel
from bot.core.service.api import BotApi
from bot.frontends.telegram import mentions, outbound, status, views
from bot.frontends.telegram.addressing import owner_in
from bot.frontends.telegram.asking import REUSE
from bot.frontends.telegram.intake import Intake
from bot.frontends.telegram.showing import Showing
from bot.frontends.telegram.status_book import StatusBook

log = logging.getLogger(__name__)
# Where an upscale's file was sent, by job: a second press of its button sends that file again.
UPSCALE_SENT = "upscale.sent"


class Buttons:
    def __init__(
        self,
        service: BotApi,
        intake: Intake,
        parking: Parking,
        book: StatusBook,
        showing: Showing,
    ) -> None:
        self._service = service
        self._intake = intake
        self._parking = parking
        self._book = book
        self._showing = showing

    async def result(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Upscale, draw again, edit, cancel and show: ``action:job:index``, resolved from the
        store."""
        query = update.callback_query
        if query is None:
            return
        button = Button.parse(query.data or "")
        if button is None or query.message is None:
            await query.answer(views.INVALID_BUTTON)
            return
        message = query.message
        if button.action is Action.CANCEL:
            await self._cancel(query, message, button)
        elif button.action is Action.SHOW:
            await self._show(query, message, button)
        elif button.action is Action.REUSE:
            await self._ask_prompt(context.bot, query, message, button)
        else:

            async def refused(refusal: InvalidInput) -> None:
                if isinstance(refusal, AlreadyMade):
                    await self._send_again(context.bot, query, message, button, refusal)
                else:
                    await answer(query, refusal.message)

            async def admitted() -> None:
                await answer(query)
                if button.action is Action.UPSCALE:
                    await _mark_done(query, message, button)

            # The presser owns the new job; its answer replies to the result it came from.
            await self._intake.start(
                context.bot,
                chat_id=message.chat.id,
                user_id=query.from_user.id,
                name=mentions.name_of(query.from_user),
                answer_to=message.message_id,
                admit=lambda owner: self._service.admit_press(owner, button),
                refuse=refused,
                admitted=admitted,
            )

    async def settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/settings: ``set:open:<key>`` shows a setting's choices, ``set:<key>:<value>`` saves
        one for the presser, ``set:back`` and ``set:reset`` — on the presser's own panel."""
        query = update.callback_query
        if query is None or query.message is None:
            return
        choice = views.parse_setting(query.data or "")
        if choice is None:
            await query.answer(views.INVALID_BUTTON)
            return
        user = UserKey(TELEGRAM, str(query.from_user.id))
        name, value = choice
        opened = value if name == "open" else None
        try:
            self._service.throttle_press(user)  # each press edits or sends a panel
            if mentions.owner_of(query.message) != query.from_user.id:
                await self._own_panel(query, user)
                return
            if name == "reset":
                saved = await self._service.update_settings(user, **dict.fromkeys(settings.NAMES))
            elif name in settings.NAMES:
                saved = await self._service.update_settings(user, **{name: value})
            else:
                saved = await self._service.settings(user)
            i18n.answer_in(await self._service.reader(user))  # a new language shows at once
            chat_id = query.message.chat.id if query.message else query.from_user.id
            usage = (await self._service.info(owner_in(chat_id, query.from_user.id))).usage
        except InvalidInput as refusal:
            await query.answer(refusal.message, show_alert=True)
            return
        await query.answer(views.SAVED if name in (*settings.NAMES, "reset") else None)
        characters = await self._service.characters(user)
        panel = SettingsPanel.of(saved, self._service.models, self._service.defaults, characters)
        await _redraw(query, query.message, *views.settings_view(panel, opened, usage))

    async def history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/history's ‹ ›: another page of the presser's jobs, on their own panel only."""
        query = update.callback_query
        if query is None or query.message is None:
            return
        page = views.parse_history(query.data or "")
        if page is None or mentions.owner_of(query.message) != query.from_user.id:
            await query.answer(views.INVALID_BUTTON)
            return
        user = UserKey(TELEGRAM, str(query.from_user.id))
        try:
            self._service.throttle_press(user)
        except InvalidInput as refusal:
            await query.answer(refusal.message, show_alert=True)
            return
        await query.answer()
        view = await self._service.history(user, page)
        await _redraw(query, query.message, *views.history_view(view))

    async def unlink(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Unlink, under /link: part the presser's accounts (on their own panel only)."""
        query = update.callback_query
        if query is None or query.message is None:
            return
        if mentions.owner_of(query.message) != query.from_user.id:
            await query.answer(views.INVALID_BUTTON)
            return
        try:
            said = await self._service.unlink(UserKey(TELEGRAM, str(query.from_user.id)))
        except InvalidInput as refusal:
            await query.answer(refusal.message, show_alert=True)
            return
        await query.answer()
        await _redraw(query, query.message, said, None)

    async def _show(
        self, query: CallbackQuery, message: MaybeInaccessibleMessage, button: Button
    ) -> None:
        """🔎 Show (under /history, or a shown job's parent): that job here, as /show."""
        owner = Owner(TELEGRAM, str(query.from_user.id), str(message.chat.id))
        try:
            job = await self._service.press_show(owner, button)
        except InvalidInput as refusal:
            await query.answer(refusal.message, show_alert=True)
            return
        await answer(query)
        await self._showing.post(query.get_bot(), owner, job, message.message_id)

    async def _own_panel(self, query: CallbackQuery, user: UserKey) -> None:
        """Someone pressed another member's panel: they get their own, privately if they have
        a private chat with the bot, else in the group addressed to them; nothing is saved."""
        current, characters = (
            await self._service.settings(user),
            await self._service.characters(user),
        )
        panel = SettingsPanel.of(current, self._service.models, self._service.defaults, characters)
        text, markup = views.settings_view(panel)
        bot = query.get_bot()
        try:
            await bot.send_message(query.from_user.id, text, reply_markup=markup)
            told = views.OTHERS_PANEL_SENT
        except (Forbidden, BadRequest):  # they never started a private chat with the bot
            assert query.message is not None
            mine, entities = mentions.addressed(query.from_user, text)
            await bot.send_message(
                query.message.chat.id, mine, entities=entities, reply_markup=markup
            )
            told = views.OTHERS_PANEL_BELOW
        await answer(query, told)

    async def _cancel(
        self, query: CallbackQuery, message: MaybeInaccessibleMessage, button: Button
    ) -> None:
        user = query.from_user
        owner = owner_in(message.chat.id, user.id)
        try:
            done = await self._service.press_cancel(owner, button)
        except InvalidInput as refusal:
            await query.answer(refusal.message, show_alert=True)
            return
        await query.answer(done)
        job = await self._service.find_job(button.job)
        if job is not None:
            self._book.release(job)  # its line leaves its chat's board
        key = await self._book.key(job) if job is not None else None
        if key is not None:
            with contextlib.suppress(TelegramError):  # the user may have deleted it
                await status.edit(query.get_bot(), key, texts.CANCELLED_STATUS)
        # The panel shows its owner's jobs, whoever pressed (an admin may cancel anyone's).
        panel_owner = mentions.owner_of(message)
        if panel_owner is not None:
            items = await self._service.queue(UserKey(TELEGRAM, str(panel_owner)))
            await _redraw(query, message, *views.queue_view(QueueView.of(items), owner))

    async def _ask_prompt(
        self, bot: Bot, query: CallbackQuery, message: MaybeInaccessibleMessage, button: Button
    ) -> None:
        """Edit n: ask the presser for the new prompt with a ForceReply that opens only for them;
        the pending request lives in the store, and only their reply answers it."""
        user = query.from_user
        try:  # before anything is posted: only a press that may act on the result gets a form
            await self._service.pressed_job(owner_in(message.chat.id, user.id), button)
        except InvalidInput as refusal:
            await query.answer(refusal.message, show_alert=True)
            return
        await query.answer()
        private = message.chat.type == "private"
        name = "" if private else mentions.name_of(user)
        question, entities = mentions.mentioned(user, views.reuse_request(button.index, name), name)
        if user.username:  # an @username mentions by itself
            entities = []
        asked = await bot.send_message(
            message.chat.id,
            question,
            entities=entities,
            # A selective ForceReply opens the reply field only for the users mentioned.
            reply_markup=ForceReply(
                selective=not private,
                input_field_placeholder=_("Prompt for image {index}", index=button.index),
            ),
            reply_parameters=status.reply_to(message.message_id),
        )
        await self._parking.add_pending(
            REUSE, f"{message.chat.id}:{asked.message_id}", f"{button.data} {user.id}"
        )

    async def _send_again(
        self,
        bot: Bot,
        query: CallbackQuery,
        message: MaybeInaccessibleMessage,
        button: Button,
        made: AlreadyMade,
    ) -> None:
        """A second press of an upscale: the file sent before, again (Telegram keeps it)."""
        # Read in place: taking and parking again would lose it to a stop in between, and hide
        # it from a press at the same time.
        parked = await self._parking.peek_pending(UPSCALE_SENT, str(made.job_id))
        job = await self._service.job(made.job_id)
        if not parked or job is None:
            await answer(query, views.UPSCALED_ABOVE)
            return
        await answer(query, made.message, alert=False)
        await _mark_done(query, message, button)
        await bot.send_document(
            message.chat.id,
            parked[-1],
            caption=caption(job, outbound.MAX_CAPTION),
            reply_parameters=status.reply_to(message.message_id),
        )


async def answer(query: CallbackQuery, text: str | None = None, *, alert: bool = True) -> None:
    """Answer a press (a refusal as an alert only the presser sees; news as a passing note). A
    press handled late (the bot was down) can't be answered any more; its job goes ahead."""
    try:
        await query.answer(text, show_alert=alert and text is not None)
    except BadRequest as exc:
        log.info("could not answer a button press: %s", exc.message)


async def _mark_done(
    query: CallbackQuery, message: MaybeInaccessibleMessage, button: Button
) -> None:
    """Show a pressed upscale as done on the result (a courtesy: the job goes ahead anyway)."""
    markup = message.reply_markup if isinstance(message, Message) else None
    marked = views.mark_done(markup, button) if markup is not None else None
    if marked is None or marked == markup:  # shown as done already
        return
    try:
        await query.edit_message_reply_markup(marked)
    except BadRequest as exc:
        if "message is not modified" not in exc.message.lower():
            log.info("could not mark an upscale as done: %s", exc.message)


async def _redraw(
    query: CallbackQuery,
    message: MaybeInaccessibleMessage,
    text: str,
    markup: InlineKeyboardMarkup | None,
) -> None:
    """Re-render a panel in place, keeping the mention of its owner (a group's panel)."""
    owner = None
    if isinstance(message, Message) and message.chat.type != "private":
        first = next(iter(message.entities), None)
        owner = first.user if first is not None else None
    text, entities = mentions.addressed(owner, text)
    try:
        await query.edit_message_text(text, entities=entities, reply_markup=markup)
    except BadRequest as exc:
        if "message is not modified" not in exc.message.lower():
            log.info("could not re-render a keyboard: %s", exc.message)
