"""Which language each reader reads: their choice in /settings, else the one their app said
when they last wrote (Discord's interaction locale, Telegram's ``language_code``), else the
operator's ``BOT_DEFAULT_LANGUAGE``.

The app's word is kept in the store as it came (a tag: ``pt-BR``, ``ko``), so an answer
delivered later, or by another process, is told in the language its reader last wrote in, and
a language shipped later applies to its readers at once.
"""

from __future__ import annotations

import logging

from bot.core import i18n
from bot.core.domain import UserKey
from bot.core.i18n import Language
from bot.core.ports import Store
from bot.core.service.identities import Identities
from bot.core.settings import AUTO

log = logging.getLogger(__name__)


class Readers:
    def __init__(self, store: Store, identities: Identities) -> None:
        self._store = store
        self._identities = identities

    async def heard(self, user: UserKey, tag: str | None) -> Language:
        """``user`` wrote, their app in ``tag`` (None: it didn't say): the language to answer
        them in. A new tag is kept for what is told them later."""
        tag = (tag or "").strip()[:35] or None  # a tag is short (BCP 47): a forged one is cut
        try:
            if tag is not None and tag != await self._store.language(user):
                await self._store.save_language(user, tag)
        except Exception as exc:  # the answer matters more than remembering its language
            log.warning("the language of %s is not kept: %s", user, exc)
        return await self.of(user, tag)

    async def of(self, user: UserKey, tag: str | None = None) -> Language:
        """The language to tell ``user`` in (``tag``: their app's now, if known)."""
        try:
            person = await self._identities.of(user)
            chosen = (await self._store.user_settings(person.key)).language
            if tag is None:
                tag = await self._store.language(user)
        except Exception as exc:  # a store that can't answer: told in the operator's language
            log.warning("the language of %s is unknown here: %s", user, exc)
            return i18n.default()
        code = chosen if chosen not in (None, AUTO) else i18n.pick(tag)
        return i18n.language(code) if code is not None else i18n.default()
