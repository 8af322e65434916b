"""The Telegram front end: python-telegram-bot's Application in the bot's own event loop.

``run()`` starts the Application the way PTB documents for sharing a loop (not
``run_polling()``, which owns it), so Discord can run beside it. Once it has started, the
front end attaches its ``TelegramNotifier`` to the service: from then on answers go out. A
process that doesn't hear Telegram users (``BOT_PLATFORMS``) starts no poller and no webhook:
it only delivers, and the Bot API needs nothing more for that.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    LinkPreviewOptions,
    Update,
)
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    Updater,
    filters,
)

from bot.config import PUBLIC_TELEGRAM_API, ConfigError, Settings
from bot.core import i18n
from bot.core.people import TELEGRAM, UserKey
from bot.core.ports import Parking
from bot.core.service.api import BotApi
from bot.frontends.telegram import media, outbound, views
from bot.frontends.telegram.asking import Asking
from bot.frontends.telegram.buttons import Buttons
from bot.frontends.telegram.characters import CharacterCommands
from bot.frontends.telegram.commands import Commands
from bot.frontends.telegram.intake import Intake
from bot.frontends.telegram.kept import KeptPhotos
from bot.frontends.telegram.line import TELEGRAM_LIMITS, FloodLimits
from bot.frontends.telegram.notifier import TelegramNotifier
from bot.frontends.telegram.onboarding import Onboarding
from bot.frontends.telegram.outbound import Outbound, Stopping
from bot.frontends.telegram.server import GroupAdmins, Server
from bot.frontends.telegram.showing import Showing
from bot.frontends.telegram.status_book import StatusBook
from bot.frontends.telegram.updates import Updates

log = logging.getLogger(__name__)
# Nothing else is handled: don't fetch it. my_chat_member: the bot was added to a group.
UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")


class TelegramFrontEnd:
    """``await TelegramFrontEnd(service, settings, parking).run()`` inside ``async with
    service``; ``parking`` is where albums and R's prompt requests wait (the store)."""

    PLATFORM = TELEGRAM

    def __init__(
        self,
        service: BotApi,
        settings: Settings,
        parking: Parking,
        *,
        album_wait: float = 1.0,
        receive: bool = True,
        flood: FloodLimits = TELEGRAM_LIMITS,
    ) -> None:
        self._receive_updates = receive
        if settings.telegram_token is None:
            raise ValueError("TELEGRAM_TOKEN is not set")
        self._settings = settings
        self._service = service
        api = settings.telegram_api_url.rstrip("/")
        public = api == PUBLIC_TELEGRAM_API
        outbound = self._outbound = Outbound(max_retries=3, limits=flood)
        self._app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(settings.telegram_token.reveal())
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
            # Flood limits (answers first, a group's shared fairly), flood waits retried, texts
            # clipped.
            .rate_limiter(outbound)
            # Handlers only submit and return; no update waits for another's generation, nor
            # another sender's answers.
            .concurrent_updates(Updates())
            # Its texts repeat what members typed (a prompt on a board, in /queue): a link
            # there must not draw its page's picture and title under the bot's message.
            .defaults(Defaults(link_preview_options=LinkPreviewOptions(is_disabled=True)))
            .build()
        )
        max_download = media.PUBLIC_MAX_DOWNLOAD if public else None
        book = self._book = StatusBook(parking, service.statuses)
        intake = Intake(service, book, max_download=max_download)
        max_document = media.PUBLIC_MAX_DOCUMENT if public else media.LOCAL_MAX_DOCUMENT
        self.notifier = TelegramNotifier(
            self._app.bot, service, parking, book, max_document=max_document
        )
        characters = CharacterCommands(service, intake, KeptPhotos(parking))
        self._asking = Asking(
            service, parking, intake, book, self._app.bot, characters, album_wait=album_wait
        )
        showing = Showing(service, max_document=max_document)
        self._add_handlers(
            Onboarding(service, intake),
            Commands(service, showing),
            self._asking,
            Buttons(service, intake, parking, book, showing),
            characters,
            Server(service, GroupAdmins()),
        )

    def _add_handlers(
        self,
        onboarding: Onboarding,
        commands: Commands,
        asking: Asking,
        buttons: Buttons,
        characters: CharacterCommands,
        server: Server,
    ) -> None:
        new = filters.UpdateType.MESSAGE  # channel posts are not requests
        edited = filters.UpdateType.EDITED_MESSAGE
        images = filters.PHOTO | filters.Document.ALL
        # What the bot can't read; animations (GIFs) come with a document too, so first.
        unread = (
            filters.Sticker.ALL
            | filters.VOICE
            | filters.VIDEO
            | filters.VIDEO_NOTE
            | filters.AUDIO
            | filters.ANIMATION
            | filters.LOCATION
            | filters.CONTACT
            | filters.POLL
            | filters.Dice.ALL
        )
        self._app.add_handler(TypeHandler(Update, self._reader), group=-3)
        self._app.add_handler(TypeHandler(Update, self._seen), group=-2)
        self._app.add_handler(TypeHandler(Update, outbound.note_sender), group=-1)
        self._app.add_handlers(
            [
                CommandHandler("start", onboarding.start, filters=new),
                CommandHandler("help", commands.help, filters=new),
                CommandHandler("settings", commands.settings, filters=new),
                CommandHandler("queue", commands.queue, filters=new),
                CommandHandler("info", commands.info, filters=new),
                CommandHandler("admin", commands.admin, filters=new),
                CommandHandler("group", server.show, filters=new),
                CommandHandler("show", commands.show, filters=new),
                CommandHandler("history", commands.history, filters=new),
                CommandHandler("link", commands.link, filters=new),
                CommandHandler("imagine", asking.imagine, filters=new),
                CommandHandler("character", characters.command, filters=new),
                MessageHandler(new & filters.COMMAND, commands.unknown),
                MessageHandler(new & unread, asking.other),
                MessageHandler(new & images, asking.media),
                MessageHandler(new & filters.TEXT, asking.text),
                MessageHandler(edited & (filters.TEXT | images), asking.edited),
                ChatMemberHandler(onboarding.joined, ChatMemberHandler.MY_CHAT_MEMBER),
                CallbackQueryHandler(buttons.settings, pattern=r"^set:"),
                CallbackQueryHandler(buttons.history, pattern=r"^hist:"),
                CallbackQueryHandler(buttons.unlink, pattern=rf"^{views.UNLINK_DATA}$"),
                CallbackQueryHandler(onboarding.example, pattern=r"^ex:"),
                CallbackQueryHandler(asking.draw, pattern=rf"^{views.DRAW_DATA}$"),
                CallbackQueryHandler(server.press, pattern=r"^srv:"),
                CallbackQueryHandler(buttons.result),
            ]
        )
        self._app.add_error_handler(_log_error)

    async def _reader(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Run first for every update: what the bot says for it is in its sender's language."""
        user = update.effective_user
        if user is not None:
            key = UserKey(TELEGRAM, str(user.id))
            i18n.answer_in(await self._service.reader(key, user.language_code))

    async def _seen(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Someone wrote to the bot privately, so it can write to them: alerts kept for them."""
        chat, user = update.effective_chat, update.effective_user
        if chat is not None and chat.type == "private" and user is not None:
            self._service.seen(UserKey(TELEGRAM, str(user.id)))

    async def run(self) -> None:
        """Serve until cancelled, then stop in reverse order and re-raise CancelledError."""
        app = self._app
        updater = app.updater
        assert updater is not None  # ApplicationBuilder makes one unless told not to
        async with _refused_token_is_a_setting_error(), app:
            if self._receive_updates:
                await self._register_commands(app.bot)
            await app.start()
            try:
                self._service.attach(self.PLATFORM, self.notifier)
                if self._service.leading:  # the boards a previous run left, kept true again
                    await self._book.boards.take_up(app.bot, self._service)
                if self._receive_updates:
                    await self._receive(updater)
                    await self._asking.albums.recover()
                await asyncio.Event().wait()
            finally:
                self._service.detach(self.PLATFORM)
                await self._asking.albums.close()
                await self._book.close()
                if updater.running:
                    await updater.stop()
                # The updates being handled end before the stop does; their replies waiting
                # for a chat's budget would hold it for as long as that chat's line lasts.
                if refused := self._outbound.close():
                    log.info("stopping: %d messages waiting for their turn are not sent", refused)
                await app.stop()

    async def _receive(self, updater: Updater) -> None:
        url = self._settings.telegram_webhook_url
        if url is None:
            # Updates that arrived while we were down are kept (drop_pending_updates=False).
            await updater.start_polling(allowed_updates=UPDATES, drop_pending_updates=False)
            return
        host, port = self._settings.telegram_webhook_listen
        secret = self._settings.telegram_webhook_secret
        # Telegram sends the secret with every update; PTB refuses requests without it. Several
        # webhook processes need TELEGRAM_WEBHOOK_SECRET: a random one each would shut out all
        # but the last to register.
        await updater.start_webhook(
            listen=host,
            port=port,
            url_path=urlsplit(url).path.lstrip("/"),
            webhook_url=url,
            secret_token=secret.reveal() if secret else secrets.token_urlsafe(32),
            allowed_updates=UPDATES,
            drop_pending_updates=False,
        )

    async def _register_commands(self, bot: Bot) -> None:
        """The command list Telegram shows in its menu, in each shipped language (a user whose
        app is in another gets the default's); cosmetic, so a failure is only logged."""
        admins = BotCommandScopeAllChatAdministrators()
        try:
            for code in (None, *i18n.LANGUAGES):
                language = i18n.default() if code is None else i18n.language(code)
                tag = None if code is None else views.language_code(code)
                for commands, scope in ((views.COMMANDS, None), (views.ADMIN_COMMANDS, admins)):
                    await bot.set_my_commands(
                        [BotCommand(name, language.render(text)) for name, text in commands],
                        scope=scope,
                        language_code=tag,
                    )
        except TelegramError as exc:
            log.warning("could not register the command list: %s", exc.message)


@asynccontextmanager
async def _refused_token_is_a_setting_error() -> AsyncIterator[None]:
    """Telegram refusing the token is the operator's to fix: say so, without the token.

    PTB's own ``InvalidToken`` text quotes the token, and so would its traceback.
    """
    try:
        yield
    except InvalidToken:
        raise ConfigError(
            "TELEGRAM_TOKEN was refused by Telegram: check it, or get a new one from @BotFather"
        ) from None


async def _log_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log what a handler raised; the next update is handled as usual."""
    if isinstance(context.error, Stopping):
        return  # said once, when the line closed
    log.error("handling a Telegram update failed", exc_info=context.error)
