"""What the service answers about characters (``/character``): a part of ``Service``, kept
apart, as ``Operating`` is."""

from __future__ import annotations

from bot.core.character_records import Character
from bot.core.people import Owner, UserKey
from bot.core.service.admission import Admission
from bot.core.service.api import Fetch
from bot.core.service.characters import Characters


class CharacterUse:
    """Mixed into ``Service``, which builds these parts."""

    _admission: Admission
    _characters: Characters

    async def create_character(
        self, owner: Owner, name: str, *, images: int, fetch: Fetch
    ) -> Character:
        await self._admission.check_allowed(owner)
        self._admission.throttle_press(owner.user)  # each one costs upstream calls
        return await self._characters.create(owner.user, name, images, fetch)

    async def characters(self, user: UserKey) -> list[Character]:
        return await self._characters.mine(user)

    async def character_thumbnail(self, character: Character) -> bytes:
        return await self._characters.thumbnail(character)

    async def delete_character(self, user: UserKey, name: str) -> str:
        return await self._characters.delete(user, name)

    async def shared_characters(self, owner: Owner) -> list[Character]:
        return await self._characters.shared_here(owner)

    async def share_character(self, owner: Owner, name: str) -> str:
        return await self._characters.share(owner, name)

    async def unshare_character(self, owner: Owner, name: str, *, chat_admin: bool) -> str:
        return await self._characters.unshare(owner, name, chat_admin=chat_admin)
