"""Who may ask (and press) where, and how much: the operator's allowlists and bans, a server's
switch and channels, who may press a member's buttons, the blocked words, and the daily images
(a user's own quota, the admins' default, BOT_DAILY_IMAGES_PER_USER, a server's per member).
Read from the store for each request, so that an admin's change holds at once, in every process
sharing the store.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

from bot.core import rules_texts
from bot.core.community import ServerSettings
from bot.core.domain import Job
from bot.core.errors import InvalidInput
from bot.core.people import Owner, UserKey
from bot.core.policy import Access, Limits
from bot.core.ports import Store
from bot.core.presenters import Allowance

MAX_PHRASE = 100  # characters of a blocked word or phrase


class Rules:
    def __init__(self, store: Store, access: Access, limits: Limits) -> None:
        self._store = store
        self._access = access
        self._limits = limits

    async def check(self, owner: Owner) -> ServerSettings:
        """Refuse whom the operator did not open the bot to, or banned, and where the server's
        admins switched it off; the server's settings (the defaults, outside any server)."""
        if not self._opened_to(owner):
            raise InvalidInput(rules_texts.NOT_ALLOWED)
        if await self._store.is_banned(owner.user):
            raise InvalidInput(rules_texts.BANNED)
        if owner.server is None:
            return ServerSettings()
        server = await self._store.server_settings(owner.platform, owner.server)
        if not server.enabled:
            raise InvalidInput(rules_texts.switched_off(owner.platform))
        if server.channels and owner.channel not in server.channels:
            raise InvalidInput(rules_texts.CHANNEL_OFF)
        return server

    async def check_words(self, prompt: str) -> None:
        """Refuse a prompt holding a blocked word or phrase (whole words, any case)."""
        phrases = tuple(await self._store.blocked_words())
        if phrases and (found := blocked_pattern(phrases).search(prompt)):
            raise InvalidInput(rules_texts.blocked(found[0]))

    async def daily_limit(self, user: UserKey) -> int:
        """The images ``user`` may ask for a day (0: no limit): their own quota, else the
        default an admin set, else BOT_DAILY_IMAGES_PER_USER."""
        if self._access.is_admin(user):
            return 0
        for quota in (await self._store.quota(user), await self._store.quota(None)):
            if quota is not None:
                return quota
        return self._limits.daily_images_per_user

    async def allowance(self, user: UserKey) -> Allowance:
        """Today's images against the user's daily limit."""
        return Allowance(await self._store.images_on(user, today()), await self.daily_limit(user))

    async def allowance_here(self, owner: Owner) -> Allowance | None:
        """Today's images in this server against its limit per member, if it has one."""
        if owner.server is None or self._access.is_admin(owner.user):
            return None
        server = await self._store.server_settings(owner.platform, owner.server)
        if not server.daily_images:
            return None
        used = await self._store.images_in(owner.user, owner.server, today())
        return Allowance(used, server.daily_images)

    def _opened_to(self, owner: Owner) -> bool:
        """BOT_ALLOWED_USERS and BOT_ALLOWED_CHATS (a chat, a thread's channel, or a server)."""
        access = self._access
        if not (access.allowed_users or access.allowed_chats) or access.is_admin(owner.user):
            return True
        places = {owner.chat_id, owner.channel, owner.server}
        chats = {f"{owner.platform}:{place}" for place in places if place}
        return str(owner.user) in access.allowed_users or bool(chats & access.allowed_chats)

    async def check_press(self, owner: Owner, job: Job) -> None:
        """Where a result's buttons count (``History.may_press``), anyone may press them, unless
        its server's admins keep them to the one who asked (and admins)."""
        if owner.user == job.owner.user or job.owner.server is None:
            return
        server = await self._store.server_settings(job.owner.platform, job.owner.server)
        if not (server.shared_buttons or self._access.is_admin(owner.user)):
            raise InvalidInput(rules_texts.NOT_YOUR_BUTTONS)


def phrase_of(text: str) -> str | None:
    """A word or phrase to block, as it is kept: lower case, words one space apart; None if it
    is empty, longer than ``MAX_PHRASE`` or holds no word."""
    phrase = " ".join(text.lower().split())
    ok = 0 < len(phrase) <= MAX_PHRASE and re.search(r"\w", phrase)
    return phrase if ok else None


@functools.lru_cache(maxsize=4)
def blocked_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """Any of ``phrases`` as whole words, in any case, however the words are spaced."""
    words = (r"\s+".join(map(re.escape, phrase.split())) for phrase in phrases)
    return re.compile(rf"(?<!\w)(?:{'|'.join(words)})(?!\w)", re.IGNORECASE)


def today() -> str:
    """The UTC day quotas count on (``YYYY-MM-DD``)."""
    return datetime.now(UTC).date().isoformat()
