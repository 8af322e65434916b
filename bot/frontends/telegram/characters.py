"""``/character create|list|delete|share|unshare`` on Telegram. A character's pictures are the
photos (or image documents) the command comes with: a photo or album captioned ``/character
create Carol``, the command sent as a reply to a photo, or else the photos the user just sent
without a caption (kept for their next prompt)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Bot, ChatMember, InputMediaPhoto, ReplyParameters, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.core import character_texts, texts
from bot.core.errors import InvalidInput
from bot.core.i18n import reader
from bot.core.people import TELEGRAM, Owner
from bot.core.presenters import character_line
from bot.core.service.api import BotApi
from bot.frontends.telegram import views
from bot.frontends.telegram.addressing import COMMAND, command_argument, sender_id
from bot.frontends.telegram.intake import Intake, Source, sources_of
from bot.frontends.telegram.kept import KeptPhotos

log = logging.getLogger(__name__)

# Photos in one media group: Telegram's most.
ALBUM_ITEMS = 10


def character_arguments(text: str, username: str) -> str | None:
    """What follows ``/character`` (or ``/character@this_bot``) in a caption, else None."""
    command = COMMAND.match(text)
    if command is None or command[1].lower() != "character":
        return None
    if command[2] is not None and command[2].lower() != username.lower():
        return None  # another bot's
    return command_argument(text)


class CharacterCommands:
    def __init__(self, service: BotApi, intake: Intake, kept: KeptPhotos) -> None:
        self._service = service
        self._intake = intake
        self._kept = kept

    async def command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/character create <name> (a reply to a photo), list, delete <name>."""
        message = update.message
        if message is None or message.text is None:
            return
        sources = sources_of(message.reply_to_message)
        await self.run(
            context.bot, message.chat_id, sender_id(message), message.message_id,
            command_argument(message.text), sources,
        )  # fmt: skip

    async def run(
        self,
        bot: Bot,
        chat_id: int,
        user_id: int,
        answer_to: int,
        arguments: str,
        sources: Sequence[Source],
    ) -> None:
        """Do what ``arguments`` say, with ``sources`` as the pictures of a new character."""
        action, _, name = arguments.strip().partition(" ")
        owner = Owner(TELEGRAM, str(user_id), str(chat_id), str(answer_to))
        try:
            match action.lower():
                case "create":
                    # Else the photos the user sent here without a caption, as a prompt would.
                    sources = sources or await self._kept.take(chat_id, user_id)
                    text = await self._create(bot, owner, name, sources)
                case "list":
                    await self._list(bot, owner, answer_to)
                    return
                case "delete":
                    text = await self._service.delete_character(owner.user, name)
                case "share":
                    text = await self._service.share_character(owner, name)
                case "unshare":
                    admin = await _chat_admin(bot, chat_id, user_id)
                    text = await self._service.unshare_character(owner, name, chat_admin=admin)
                case _:
                    text = views.CHARACTER_USAGE
        except InvalidInput as refusal:
            text = texts.failed(refusal.message)
        await _reply(bot, chat_id, answer_to, text)

    async def _create(self, bot: Bot, owner: Owner, name: str, sources: Sequence[Source]) -> str:
        self._intake.check_sizes(sources)
        made = await self._service.create_character(
            owner, name, images=len(sources), fetch=lambda: self._intake.fetch_all(bot, sources)
        )
        return character_texts.character_created(made.name)

    async def _list(self, bot: Bot, owner: Owner, answer_to: int) -> None:
        """Each character's name under a thumbnail of its first picture: the user's own, then
        those others shared here."""
        chat_id = int(owner.chat_id)
        self._service.throttle_press(owner.user)  # a list of pictures: one member can't flood
        mine = await self._service.characters(owner.user)
        shared = [c for c in await self._service.shared_characters(owner) if c not in mine]
        if not mine and not shared:
            await _reply(bot, chat_id, answer_to, character_texts.NO_CHARACTERS_YET)
            return
        items = [
            (await self._service.character_thumbnail(c), character_line(c, shared=c in shared))
            for c in mine + shared
        ]
        reply = ReplyParameters(answer_to, allow_sending_without_reply=True)
        for at in range(0, len(items), ALBUM_ITEMS):
            chunk = items[at : at + ALBUM_ITEMS]
            if len(chunk) == 1:
                [(photo, caption)] = chunk
                await bot.send_photo(chat_id, photo, caption=caption, reply_parameters=reply)
            else:
                # An album's captions are rendered here: ``outbound`` sees the request's own.
                album = [InputMediaPhoto(photo, caption=reader().render(c)) for photo, c in chunk]
                await bot.send_media_group(chat_id, album, reply_parameters=reply)


async def _chat_admin(bot: Bot, chat_id: int, user_id: int) -> bool:
    """Whether Telegram says the user is an admin of the group (private chats have none)."""
    if chat_id > 0:
        return False
    try:
        member = await bot.get_chat_member(chat_id, user_id)
    except TelegramError as exc:  # not known as one: the owner can still undo their share
        log.info("chat %d: could not ask who is an admin: %s", chat_id, exc)
        return False
    return member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)


async def _reply(bot: Bot, chat_id: int, answer_to: int, text: str) -> None:
    try:
        await bot.send_message(
            chat_id,
            text,
            reply_parameters=ReplyParameters(answer_to, allow_sending_without_reply=True),
        )
    except TelegramError as exc:
        log.warning("chat %d: could not answer a character command: %s", chat_id, exc)
