"""The ways to ask for an image: /imagine, a captioned photo, document or album, a reply to a
photo, a plain message in a private chat, and the reply to an R button's prompt request.

Handlers only turn the message into a request and hand it to the intake; the core decides
whether the request is valid.
"""

from __future__ import annotations

from telegram import Bot, Message, Update
from telegram.ext import ContextTypes

from bot.core.domain import Action, Button
from bot.core.ports import Parking
from bot.core.service.api import Admit, BotApi
from bot.frontends.telegram.addressing import (
    addressed_prompt,
    command_argument,
    replies_to_bot,
    sender_id,
)
from bot.frontends.telegram.albums import Album, Albums
from bot.frontends.telegram.intake import Intake, Source, sources_of

# Pending prompts for R buttons: key "chat:prompt-message", value "button-data user-id".
REUSE = "reuse"


def admit_prompt(service: BotApi, prompt: str, references: int) -> Admit:
    return lambda owner: service.admit(owner, prompt, references=references)


class Asking:
    def __init__(
        self, service: BotApi, parking: Parking, intake: Intake, bot: Bot, *, album_wait: float
    ) -> None:
        self._service = service
        self._parking = parking
        self._intake = intake
        self._bot = bot  # albums are handled after their updates, outside any handler
        self.albums = Albums(parking, self._on_album, wait=album_wait)

    async def imagine(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/imagine <prompt> [--ar …] [--model …] [--count …] [--seed …]."""
        message = update.message
        if message is None or message.text is None:
            return
        prompt = command_argument(message.text)
        if not await self._answer_reuse(context.bot, message, prompt):
            await self._ask(context.bot, message, prompt)

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A plain message: a prompt in private chats, or in groups when it is for the bot."""
        message = update.message
        if message is None or message.text is None:
            return
        to_bot = replies_to_bot(message, context.bot.id)
        prompt = addressed_prompt(
            message.text, private=_private(message), to_bot=to_bot, username=context.bot.username
        )
        if prompt is None:
            return
        if not await self._answer_reuse(context.bot, message, prompt):
            await self._ask(context.bot, message, prompt)

    async def media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo or document: its caption is the prompt; album items wait for the others."""
        message = update.message
        if message is None:
            return
        if message.media_group_id:
            await self.albums.add(message)
            return
        prompt = addressed_prompt(
            message.caption or "",
            private=_private(message),
            to_bot=replies_to_bot(message, context.bot.id),
            username=context.bot.username,
        )
        if prompt is not None:
            await self._ask(context.bot, message, prompt)

    async def _on_album(self, album: Album) -> None:
        # Telegram puts the album's caption on whichever item the user captioned.
        items = album.items
        captioned = next((item for item in items if item.caption), items[0])
        prompt = addressed_prompt(
            captioned.caption, private=captioned.private, to_bot=False, username=self._bot.username
        )
        if prompt is None:
            return
        await self._intake.start(
            self._bot,
            chat_id=album.chat_id,
            user_id=captioned.user_id,
            answer_to=captioned.message_id,
            admit=admit_prompt(self._service, prompt, len(items)),
            sources=[Source(item.file_id, item.file_size) for item in items],
            status_id=album.status_id,
            on_status=album.remember_status,
        )

    async def _ask(self, bot: Bot, message: Message, prompt: str) -> None:
        # The message's own image, then the one it replies to (a reply to any photo uses it).
        sources = sources_of(message) + sources_of(message.reply_to_message)
        await self._intake.start(
            bot,
            chat_id=message.chat_id,
            user_id=sender_id(message),
            answer_to=message.message_id,
            admit=admit_prompt(self._service, prompt, len(sources)),
            sources=sources,
        )

    async def _answer_reuse(self, bot: Bot, message: Message, prompt: str) -> bool:
        """If this replies to an R button's prompt request, submit with that image: True."""
        target, user = message.reply_to_message, message.from_user
        if target is None or user is None or not replies_to_bot(message, bot.id):
            return False
        key = f"{message.chat_id}:{target.message_id}"
        parked = await self._parking.take_pending(REUSE, key)
        if not parked:
            return False
        data, _, presser = parked[0].partition(" ")
        button = Button.parse(data)
        if button is None or button.action is not Action.REUSE:
            return False
        if presser != str(user.id):  # the request was for the user who pressed R
            await self._parking.add_pending(REUSE, key, parked[0])
            return False
        await self._intake.start(
            bot,
            chat_id=message.chat_id,
            user_id=user.id,
            answer_to=message.message_id,
            admit=lambda owner: self._service.admit_press(owner, button, prompt=prompt),
        )
        return True


def _private(message: Message) -> bool:
    return message.chat.type == "private"
