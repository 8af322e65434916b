"""The ways to ask for an image: /imagine, a captioned photo, document or album, a reply to a
photo, a plain message in a private chat, the reply to an edit button's prompt request, an
edited message, a photo and then its prompt; and an answer to every other input.

Handlers only turn the message into a request and hand it to the intake; the core decides
whether the request is valid. A message is read one version at a time: its edit waits until
the job the version before asked for is noted (``ASKED``), to replace it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from telegram import Bot, Message, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.core import texts
from bot.core.buttons import Action, Button
from bot.core.chatter import is_chatter
from bot.core.domain import JobState
from bot.core.errors import InvalidInput
from bot.core.people import TELEGRAM, UserKey
from bot.core.ports import Parking
from bot.core.service.api import Admit, BotApi
from bot.frontends.telegram import mentions, status, views
from bot.frontends.telegram.addressing import (
    addressed_prompt,
    command_argument,
    replies_to_bot,
    sender_id,
)
from bot.frontends.telegram.albums import Album, Albums
from bot.frontends.telegram.characters import CharacterCommands, character_arguments
from bot.frontends.telegram.intake import Intake, Source, sources_of
from bot.frontends.telegram.kept import KeptPhotos
from bot.frontends.telegram.status_book import StatusBook

# Pending prompts for edit buttons: key "chat:prompt-message", value "button-data user-id".
REUSE = "reuse"
# The job a message asked for, so that an edit of the message can replace it: key
# "chat:message", value the job id.
ASKED = "asked"


def admit_prompt(service: BotApi, prompt: str, references: int) -> Admit:
    return lambda owner: service.admit(owner, prompt, references=references)


class Asking:
    def __init__(
        self,
        service: BotApi,
        parking: Parking,
        intake: Intake,
        book: StatusBook,
        bot: Bot,
        characters: CharacterCommands,
        *,
        album_wait: float,
    ) -> None:
        self._service = service
        self._book = book
        self._characters = characters
        self._parking = parking
        self._intake = intake
        self._bot = bot  # albums are handled after their updates, outside any handler
        self._kept = KeptPhotos(parking)
        self.albums = Albums(parking, self._on_album, wait=album_wait)
        self._reading: dict[str, asyncio.Event] = {}  # messages being read: set when done

    async def imagine(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/imagine <prompt> [--ar …] [--model …] [--count …] [--seed …]."""
        message = update.message
        if message is None or message.text is None:
            return
        prompt = command_argument(message.text)
        if not await self._answer_reuse(context.bot, message, prompt):
            await self._ask(context.bot, message, prompt)

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A plain message: a prompt in private chats (small talk is asked about first), or in
        groups when it is for the bot."""
        message = update.message
        if message is None or message.text is None:
            return
        prompt = self._prompt(context.bot, message, message.text)
        if prompt is not None and not await self._answer_reuse(context.bot, message, prompt):
            await self._ask(context.bot, message, prompt, chatter=_private(message))

    async def media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo or document: its caption is the prompt; album items wait for the others;
        without a caption it is kept for the next prompt."""
        message = update.message
        if message is None:
            return
        if message.media_group_id:
            await self.albums.add(message)
            return
        arguments = character_arguments(message.caption or "", context.bot.username)
        if arguments is not None:
            await self._characters.run(
                context.bot, message.chat_id, sender_id(message), message.message_id,
                arguments, sources_of(message),
            )  # fmt: skip
            return
        prompt = self._prompt(context.bot, message, message.caption or "")
        if prompt == "":
            await self._keep(message.chat_id, sender_id(message), sources_of(message), message)
        elif prompt is not None:
            await self._ask(context.bot, message, prompt)

    async def other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A sticker, voice, video and the like, sent to the bot: say what it reads."""
        message = update.message
        if message is not None and (_private(message) or replies_to_bot(message, context.bot.id)):
            await message.reply_text(views.TEXT_AND_PHOTOS)

    async def edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An edited message is read again: the job it asked for is replaced while it still
        waits (a started one is kept, and the user told so)."""
        message = update.edited_message
        if message is None or message.media_group_id:
            return
        prompt = self._prompt(context.bot, message, message.text or message.caption or "")
        if not prompt:
            return
        async with self._one_version(message):
            await self._read_again(context.bot, message, prompt)

    async def _read_again(self, bot: Bot, message: Message, prompt: str) -> None:
        """The edited ``message`` asks anew, replacing the job its version before asked for."""
        asked = await self._parking.take_pending(ASKED, f"{message.chat_id}:{message.message_id}")
        status_id = None
        if asked:
            job = await self._service.job(int(asked[-1]))
            key = await self._book.key(job) if job is not None else None
            try:
                if job is None or job.state is not JobState.QUEUED:
                    raise InvalidInput(views.EDIT_TOO_LATE)
                await self._service.cancel(UserKey(TELEGRAM, job.owner.user_id), job.id)
                self._book.release(job)
            except InvalidInput:
                await message.reply_text(views.EDIT_TOO_LATE, do_quote=True)
                return
            status_id = key[1] if key is not None else None
        await self._asked(bot, message, prompt, chatter=_private(message), status_id=status_id)

    @contextlib.asynccontextmanager
    async def _one_version(self, message: Message) -> AsyncIterator[None]:
        """Read ``message`` once the reading of its version before is done: an edit that came
        while that one was still in its checks found no job to replace, and asked for another
        (two pictures paid for one message)."""
        key = f"{message.chat_id}:{message.message_id}"
        while (reading := self._reading.get(key)) is not None:
            await reading.wait()
        done = self._reading[key] = asyncio.Event()
        try:
            yield
        finally:
            del self._reading[key]
            done.set()

    async def draw(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """🎨 Draw it, under the question about a short message: draw it after all."""
        query = update.callback_query
        if query is None:
            return
        asked = query.message if isinstance(query.message, Message) else None
        original = asked.reply_to_message if asked is not None else None
        if asked is None or original is None or not original.text:
            await query.answer(views.INVALID_BUTTON)
            return
        if sender_id(original) != query.from_user.id:
            await query.answer(views.NOT_YOUR_MESSAGE, show_alert=True)
            return
        try:  # the question goes; a second tap finds it gone and starts nothing
            await asked.delete()
        except BadRequest:
            await query.answer()
            return
        await query.answer()
        await self._ask(context.bot, original, original.text.strip())

    def _prompt(self, bot: Bot, message: Message, text: str) -> str | None:
        return addressed_prompt(
            text,
            private=_private(message),
            to_bot=replies_to_bot(message, bot.id),
            username=bot.username,
        )

    async def _on_album(self, album: Album) -> None:
        # Telegram puts the album's caption on whichever item the user captioned.
        items = album.items
        captioned = next((item for item in items if item.caption), items[0])
        sources = [Source(item.file_id, item.file_size) for item in items]
        arguments = character_arguments(captioned.caption, self._bot.username)
        if arguments is not None and len(items) == 1 and not captioned.private:
            cut = texts.failed(views.ALBUM_CUT)  # as for a prompt, below
            await status.send(self._bot, album.chat_id, cut, captioned.message_id)
        elif arguments is not None:
            await self._characters.run(
                self._bot, album.chat_id, captioned.user_id, captioned.message_id,
                arguments, sources,
            )  # fmt: skip
        if arguments is not None:
            return
        prompt = addressed_prompt(
            captioned.caption, private=captioned.private, to_bot=False, username=self._bot.username
        )
        if prompt == "" and captioned.private:
            await self._keep(album.chat_id, captioned.user_id, sources)
            return
        if prompt is None:
            return
        if len(items) == 1 and not captioned.private:
            # An album has 2-10 items, but privacy mode (the default) passes a bot only the
            # group messages addressed to it: the uncaptioned pictures never came. Going on
            # with one would drop the others silently.
            await status.send(
                self._bot, album.chat_id, texts.failed(views.ALBUM_CUT), captioned.message_id
            )
            return
        await self._intake.start(
            self._bot,
            chat_id=album.chat_id,
            user_id=captioned.user_id,
            answer_to=captioned.message_id,
            admit=admit_prompt(self._service, prompt, len(items)),
            sources=sources,
            status_id=album.status_id,
            on_status=album.remember_status,
        )

    async def _keep(
        self, chat_id: int, user_id: int, sources: list[Source], message: Message | None = None
    ) -> None:
        """A picture without a prompt: keep it, and ask what to make of it."""
        await self._kept.keep(chat_id, user_id, sources)
        if message is not None:
            await message.reply_text(texts.PHOTO_KEPT)
        else:
            await self._bot.send_message(chat_id, texts.PHOTO_KEPT)

    async def _ask(self, bot: Bot, message: Message, prompt: str, *, chatter: bool = False) -> None:
        """Submit ``prompt`` (``_asked``), the first version of ``message``."""
        async with self._one_version(message):
            await self._asked(bot, message, prompt, chatter=chatter)

    async def _asked(
        self,
        bot: Bot,
        message: Message,
        prompt: str,
        *,
        chatter: bool = False,
        status_id: int | None = None,
    ) -> None:
        """Submit ``prompt`` with the message's own image, else the one it replies to, else the
        photos the user kept here; small talk (``chatter``) with none is asked about first."""
        user_id = sender_id(message)
        sources = sources_of(message) + sources_of(message.reply_to_message)
        kept = await self._kept.take(message.chat_id, user_id)
        sources = sources or kept
        if chatter and not sources and is_chatter(prompt):
            count = (await self._service.settings(UserKey(TELEGRAM, str(user_id)))).count
            question = texts.chatter(prompt, count or self._service.defaults.count)
            # Quoted: the question names the message, and 🎨 reads it back from there.
            await message.reply_text(question, reply_markup=views.draw(), do_quote=True)
            return
        submitted = await self._intake.start(
            bot,
            chat_id=message.chat_id,
            user_id=user_id,
            answer_to=message.message_id,
            admit=admit_prompt(self._service, prompt, len(sources)),
            sources=sources,
            status_id=status_id,
        )
        if submitted is not None:
            key = f"{message.chat_id}:{message.message_id}"
            await self._parking.add_pending(ASKED, key, str(submitted.job_id))

    async def _answer_reuse(self, bot: Bot, message: Message, prompt: str) -> bool:
        """If this replies to an edit button's prompt request, submit with that image: True.
        Only the presser's reply answers it; anyone else's is a new prompt of their own."""
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
        if presser != str(user.id):  # the request was for the user who pressed the button
            await self._parking.add_pending(REUSE, key, parked[0])
            return False
        await self._intake.start(
            bot,
            chat_id=message.chat_id,
            user_id=user.id,
            name=mentions.name_of(user),
            answer_to=message.message_id,
            admit=lambda owner: self._service.admit_press(owner, button, prompt=prompt),
        )
        return True


def _private(message: Message) -> bool:
    return message.chat.type == "private"
