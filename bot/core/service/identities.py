"""One person on several platforms: ``/link`` gives a short code on one platform, and sending it
on the other joins the two accounts; from then on their history, settings, quota and caps are
the person's (``Identity``), while each job keeps the platform it was answered on.

A code is single use, valid ten minutes, and drawn from 32⁸ (≈10¹²): with a handful of wrong
tries allowed per account and quarter hour (counted in the store, so restarts and other
processes don't reset them), guessing anyone's code is hopeless. Only its hash is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import asdict, replace

from bot.core import history_texts
from bot.core.errors import InvalidInput
from bot.core.i18n import _
from bot.core.people import DISCORD, TELEGRAM, Identity, UserKey
from bot.core.ports import Store
from bot.core.presenters import LinkView
from bot.core.public_ids import PUBLIC_ID_ALPHABET

CODE_LENGTH = 8
CODE_TTL = history_texts.LINK_MINUTES * 60.0
# Wrong codes an account may send in TRY_WINDOW seconds; beyond, even a right one is refused.
MAX_TRIES = 5
TRY_WINDOW = 15 * 60.0
# Typed as shown ("k3x9-q2mz"), in any case, with Crockford's look-alikes read as meant.
_TYPED = str.maketrans("ilo", "110", " -")
_CODE = re.compile(rf"[{PUBLIC_ID_ALPHABET}]{{{CODE_LENGTH}}}")
# Platforms whose users /link joins (the console is the operator's, on one machine).
_LINKABLE = (TELEGRAM, DISCORD)


class Identities:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def of(self, user: UserKey) -> Identity:
        return await self._store.identity(user)

    async def link(self, user: UserKey, code: str | None) -> LinkView:
        """/link: the link ``user`` has, or a code to send from the other platform; with
        ``code``, join the two accounts (the code's issuer's settings are the person's, what
        they left unset the other's fill)."""
        if code is None:
            person = await self.of(user)
            if person.linked:
                others = [_named(u) for u in person.users if u != user]
                return LinkView(history_texts.linked(others), linked=True)
            elsewhere = " or ".join(
                history_texts.platform_name(p) for p in _LINKABLE if p != user.platform
            )
            code = await self.new_code(user)
            return LinkView(history_texts.link_code(code, elsewhere), linked=False)
        issuer = await self.redeem(user, code)
        theirs = await self._store.user_settings(issuer)
        mine = await self._store.user_settings(user)
        filled = {k: v for k, v in asdict(mine).items() if getattr(theirs, k) is None}
        await self._store.save_user_settings(issuer, replace(theirs, **filled))
        return LinkView(history_texts.linked([_named(issuer)]), linked=True)

    async def new_code(self, user: UserKey) -> str:
        """A code for ``user`` to send from their other account, as shown ("k3x9-q2mz")."""
        code = "".join(secrets.choice(PUBLIC_ID_ALPHABET) for _ in range(CODE_LENGTH))
        await self._store.add_link_code(user, _hashed(code), ttl=CODE_TTL)
        half = CODE_LENGTH // 2
        return f"{code[:half]}-{code[half:]}"

    async def redeem(self, user: UserKey, typed: str) -> UserKey:
        """Join ``user`` to the account whose code ``typed`` is; that account. Too many wrong
        tries are refused before the code is even looked at."""
        if await self._store.link_tries(user, within=TRY_WINDOW) >= MAX_TRIES:
            raise InvalidInput(history_texts.LINK_TOO_MANY)
        code = typed.strip().lower().translate(_TYPED)
        issuer = await self._store.take_link_code(_hashed(code)) if _CODE.fullmatch(code) else None
        if issuer is None:
            await self._store.add_link_try(user, within=TRY_WINDOW)
            raise InvalidInput(history_texts.LINK_BAD_CODE)
        if issuer.platform == user.platform:
            raise InvalidInput(history_texts.LINK_SAME_PLATFORM)
        if not await self._store.link(issuer, user):
            raise InvalidInput(history_texts.LINK_TAKEN)
        return issuer

    async def unlink(self, user: UserKey) -> list[UserKey]:
        return await self._store.unlink(user)


def _named(user: UserKey) -> str:
    return _("your {platform} account", platform=history_texts.platform_name(user.platform))


def _hashed(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()
