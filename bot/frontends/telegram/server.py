"""/group: the bot's settings in this group, for its administrators — as Telegram says
(getChatMember), remembered for ``ADMIN_TTL`` seconds so that a panel's presses don't each ask.

A group's anonymous admins post as the group itself: such a message is from an admin. Every
press on the panel checks the presser again; others are told who can change what.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from telegram import Bot, ChatMember, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.core import rules_texts, texts
from bot.core.errors import InvalidInput
from bot.core.i18n import _
from bot.core.presenters import ServerPanel
from bot.core.service.api import BotApi
from bot.frontends.telegram import views
from bot.frontends.telegram.addressing import owner_in, sender_id

log = logging.getLogger(__name__)

ADMIN_TTL = 60.0  # seconds a group's answer about one of its members is trusted
_ADMINS = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR})
_GROUPS = frozenset({"group", "supergroup"})


class GroupAdmins:
    """Who administers which group, as Telegram said a moment ago."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._known: dict[tuple[int, int], tuple[bool, float]] = {}

    async def check(self, bot: Bot, chat_id: int, user_id: int) -> bool:
        now = self._clock()
        known = self._known.get((chat_id, user_id))
        if known is not None and now - known[1] < ADMIN_TTL:
            return known[0]
        try:
            member = await bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:  # not remembered: the next try asks again
            log.info("could not ask chat %d about a member: %s", chat_id, exc)
            return False
        is_admin = member.status in _ADMINS
        # Forget answers that are stale anyway, so the memory stays small.
        self._known = {k: v for k, v in self._known.items() if now - v[1] < ADMIN_TTL}
        self._known[(chat_id, user_id)] = (is_admin, now)
        return is_admin


class Server:
    def __init__(self, service: BotApi, admins: GroupAdmins) -> None:
        self._service = service
        self._admins = admins

    async def show(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/group: the panel, for the group's admins."""
        message = update.message
        if message is None:
            return
        chat, sender = message.chat, sender_id(message)
        if chat.type not in _GROUPS:
            await message.reply_text(texts.failed(rules_texts.SERVER_ONLY))
            return
        # An anonymous admin writes as the group itself.
        if sender != chat.id and not await self._admins.check(context.bot, chat.id, sender):
            await message.reply_text(texts.failed(views.GROUP_ADMINS_ONLY))
            return
        panel = await self._service.server_panel(owner_in(chat.id, sender))
        text, markup = group_view(panel)
        await message.reply_text(text, reply_markup=markup)

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A panel button, ``srv:<key>:<value>``: saved for the group, if the presser is one of
        its admins (told to them alone otherwise)."""
        query = update.callback_query
        if query is None:
            return
        chosen = parse_server(query.data or "")
        if chosen is None or query.message is None or query.message.chat.type not in _GROUPS:
            await query.answer(views.INVALID_BUTTON)
            return
        chat_id, user_id = query.message.chat.id, query.from_user.id
        if not await self._admins.check(context.bot, chat_id, user_id):
            await query.answer(views.GROUP_ADMINS_ONLY, show_alert=True)
            return
        name, raw = chosen
        value: object = {
            "enabled": raw == "1",
            "shared_buttons": raw == "1",
            "model": None if raw == "default" else raw,
            "daily_images": int(raw) if raw.isdigit() else -1,
        }[name]
        try:
            panel = await self._service.update_server(owner_in(chat_id, user_id), **{name: value})
        except (InvalidInput, ValueError):
            await query.answer(views.INVALID_BUTTON, show_alert=True)
            return
        await query.answer(views.SAVED)
        text, markup = group_view(panel)
        try:
            await query.edit_message_text(text, reply_markup=markup)
        except BadRequest as exc:  # pressing what is chosen already changes nothing
            if "message is not modified" not in exc.message.lower():
                log.info("could not re-render the group panel: %s", exc.message)


# Group settings buttons carry ``srv:<key>:<value>``; no prefix another keyboard uses.
_SERVER = re.compile(r"srv:(on|share|m|lim):([A-Za-z0-9._-]{1,40})")
_SERVER_KEYS = {"on": "enabled", "share": "shared_buttons", "m": "model", "lim": "daily_images"}


def parse_server(data: str) -> tuple[str, str] | None:
    """``srv:lim:20`` → ``("daily_images", "20")``; anything else None."""
    match = _SERVER.fullmatch(data) if len(data) <= 64 else None
    return (_SERVER_KEYS[match[1]], match[2]) if match else None


def group_view(panel: ServerPanel) -> tuple[str, InlineKeyboardMarkup]:
    """The /group panel: on or off, the members' default model, their daily images here, and
    whether others may press a member's buttons; the current choice marked."""
    current = panel.settings

    def button(label: str, key: str, value: str, chosen: bool) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            f"✓ {label}" if chosen else label, callback_data=f"srv:{key}:{value}"
        )

    models = [button(_("bot default"), "m", "default", current.model is None)] + [
        button(c.short, "m", c.value, current.model == c.value)
        for c in panel.models
        if parse_server(f"srv:m:{c.value}")
    ]
    limits = [
        button(str(n) if n else _("no limit"), "lim", str(n), current.daily_images == n)
        for n in panel.limits
    ]
    rows = [
        [
            button(_("Bot on"), "on", "1", current.enabled),
            button(_("off"), "on", "0", not current.enabled),
        ],
        *views.in_rows(models),
        *views.in_rows(limits),
        [
            button(_("Others may press: yes"), "share", "1", current.shared_buttons),
            button(_("no"), "share", "0", not current.shared_buttons),
        ],
    ]
    text = _(
        "The bot in this group (for its admins):\n{summary}\n"
        "Rows: on or off, the members' default model, images a day per member, and whether "
        "others may press the buttons under a member's images.",
        summary=rules_texts.server_summary(current, panel.model),
    )
    return text, InlineKeyboardMarkup(rows)
