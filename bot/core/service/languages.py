"""Which language each reader reads: their choice in /settings, else the one their app said
when they last wrote (Discord's interaction locale, Telegram's ``language_code``), else the
operator's ``BOT_DEFAULT_LANGUAGE``.

The app's word is kept in the store as it came (a tag: ``pt-BR``, ``ko``), so an answer
delivered later, or by another process, is told in the language its reader last wrote in, and
a language shipped later applies to its readers at once. The sender may forge it: anything
without a tag's shape (``i18n.tag_of``) is as if the app had said nothing.

Both are kept here too, ``KEPT_FOR`` seconds: an update then reads nothing from the store for
its reader's language (it read three things: the tag, the person, their settings). A choice
made in /settings here holds at once (``forget``); one made in another process, or a new tag
heard there, holds here at most ``KEPT_FOR`` seconds later.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.core import i18n
from bot.core.i18n import Language
from bot.core.people import UserKey
from bot.core.ports import Store
from bot.core.service.identities import Identities
from bot.core.settings import AUTO

log = logging.getLogger(__name__)

KEPT_FOR = 60.0
KEPT_AT_MOST = 10_000  # readers; the least recently heard go first


@dataclass
class _Known:
    chosen: str | None  # in /settings (the person's)
    tag: str | None  # what their app said last
    until: float


class Readers:
    def __init__(
        self, store: Store, identities: Identities, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._identities = identities
        self._clock = clock
        self._known: OrderedDict[UserKey, _Known] = OrderedDict()

    async def heard(self, user: UserKey, tag: str | None) -> Language:
        """``user`` wrote, their app in ``tag`` (None: it didn't say): the language to answer
        them in. A new tag is kept for what is told them later."""
        tag = i18n.tag_of(tag)  # the sender's to forge: kept only if it has a tag's shape
        known = await self._read(user)
        if known is None:
            return _language(None, tag)
        if tag is not None and tag != known.tag:
            try:
                await self._store.save_language(user, tag)
                known.tag = tag
            except Exception as exc:  # the answer matters more than remembering its language
                log.warning("the language of %s is not kept: %s", user, exc)
        return _language(known.chosen, tag or known.tag)

    async def of(self, user: UserKey, tag: str | None = None) -> Language:
        """The language to tell ``user`` in (``tag``: their app's now, if known)."""
        known = await self._read(user)
        if known is None:  # a store that can't answer: told in the operator's language
            return i18n.default()
        return _language(known.chosen, tag or known.tag)

    def forget(self, users: Iterable[UserKey] | None = None) -> None:
        """Read these users' language from the store next time (None: everyone's): their
        choice changed, or who they are (``/link``)."""
        if users is None:
            self._known.clear()
        for user in users or ():
            self._known.pop(user, None)

    async def _read(self, user: UserKey) -> _Known | None:
        now = self._clock()
        known = self._known.get(user)
        if known is not None and now < known.until:
            self._known.move_to_end(user)
            return known
        try:
            person = await self._identities.of(user)
            chosen = (await self._store.user_settings(person.key)).language
            tag = i18n.tag_of(await self._store.language(user))  # one kept before it was checked
        except Exception as exc:
            log.warning("the language of %s is unknown here: %s", user, exc)
            return None
        known = self._known[user] = _Known(chosen, tag, now + KEPT_FOR)
        self._known.move_to_end(user)
        while len(self._known) > KEPT_AT_MOST:
            self._known.popitem(last=False)
        return known


def _language(chosen: str | None, tag: str | None) -> Language:
    code = chosen if chosen not in (None, AUTO) else i18n.pick(tag)
    return i18n.language(code) if code is not None else i18n.default()
