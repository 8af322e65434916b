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

from bot.core import texts
from bot.core.domain import PUBLIC_ID_ALPHABET, Identity, UserKey
from bot.core.errors import InvalidInput
from bot.core.ports import Store

CODE_LENGTH = 8
CODE_TTL = texts.LINK_MINUTES * 60.0
# Wrong codes an account may send in TRY_WINDOW seconds; beyond, even a right one is refused.
MAX_TRIES = 5
TRY_WINDOW = 15 * 60.0
# Typed as shown ("k3x9-q2mz"), in any case, with Crockford's look-alikes read as meant.
_TYPED = str.maketrans("ilo", "110", " -")
_CODE = re.compile(rf"[{PUBLIC_ID_ALPHABET}]{{{CODE_LENGTH}}}")


class Identities:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def of(self, user: UserKey) -> Identity:
        return await self._store.identity(user)

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
            raise InvalidInput(texts.LINK_TOO_MANY)
        code = typed.strip().lower().translate(_TYPED)
        issuer = await self._store.take_link_code(_hashed(code)) if _CODE.fullmatch(code) else None
        if issuer is None:
            await self._store.add_link_try(user, within=TRY_WINDOW)
            raise InvalidInput(texts.LINK_BAD_CODE)
        if issuer.platform == user.platform:
            raise InvalidInput(texts.LINK_SAME_PLATFORM)
        if not await self._store.link(issuer, user):
            raise InvalidInput(texts.LINK_TAKEN)
        return issuer

    async def unlink(self, user: UserKey) -> list[UserKey]:
        return await self._store.unlink(user)


def _hashed(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()
