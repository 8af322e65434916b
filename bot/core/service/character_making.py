"""Characters on the road that holds them (Flow, a ``CharacterMaker``): made on an account from
their kept pictures, made again on another account when a job using one runs there, and deleted
there after their owner deleted them.

Moves of one character take turns (in this process), each from where the one before left it:
two jobs moving it to the same account share one copy there (one ``POST /characters``), and
a move to another account leaves the copy before it to be deleted.

A deleted character leaves the user's list at once; its handle stays in the store (written in
the same transaction) until the upstream has deleted its copy too, so that a failed or
interrupted delete is tried again (``purge``, at each refresh) instead of leaving the pictures
on the account for good. A character made again elsewhere leaves its old copy the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from bot.core import character_texts
from bot.core.character_records import Character, CharacterImage, CharacterRef
from bot.core.ports import Store
from bot.core.providers import CharacterMaker
from bot.core.service.fairness import Slots
from bot.core.service.references import ReferenceFailed
from bot.core.upstream import RejectedError, UpstreamError

log = logging.getLogger(__name__)


class Making:
    def __init__(self, store: Store, maker: CharacterMaker | None) -> None:
        self._store = store
        self._maker = maker
        self._moving = Slots(per_key=1)  # by character id
        # Sweeps take turns: two reading the same handles (the sweep after a delete and a
        # refresh's) would each send its DELETE, the second to meet the first's 404.
        self._sweeping = asyncio.Lock()

    async def make(self, account: str, name: str, pictures: Sequence[CharacterImage]) -> str:
        """Upload the pictures to ``account`` and make a character of them: its handle."""
        assert self._maker is not None  # an account to make it on was found: Flow is a road
        ids = [await self._maker.upload(p.data or b"", p.mime, account=account) for p in pictures]
        return await self._maker.create_character(account, ids, name)

    async def remake(self, character: Character, account: str) -> Character | None:
        """Make ``character`` again on ``account`` from its kept pictures, and move it there,
        unless a move before this one just did; None if it was deleted meanwhile."""
        async with self._moving.hold(character.id):
            now = await self._store.character(character.id)
            if now is None or now.account == account:
                return now
            pictures = await self._store.character_images(now.id)
            handle = await self.make(account, now.name, pictures)
            await self._store.move_character(now.id, account, handle)
        log.info("character %d made again on %s (was on %s)", now.id, account, now.account)
        return replace(now, account=account, handle=handle)

    async def on(self, characters: Sequence[CharacterRef], account: str) -> list[CharacterRef]:
        """``characters`` as they stand now, each made again on ``account`` if it lives on
        another (gone, or taken out since the job was queued); one deleted since ends the job."""
        placed = []
        for ref in characters:
            character = await self._store.character(ref.id)
            if character is None:
                raise ReferenceFailed(character_texts.CHARACTER_GONE)
            if character.account != account:
                try:
                    character = await self.remake(character, account)
                except RejectedError as exc:
                    log.info("character %d not made again on %s: %s", ref.id, account, exc)
                    raise ReferenceFailed(character_texts.CHARACTER_NOT_MADE) from exc
                if character is None:
                    raise ReferenceFailed(character_texts.CHARACTER_GONE)
            placed.append(replace(ref, handle=character.handle, account=character.account))
        return placed

    async def purge(self) -> None:
        """Delete upstream what deleted characters left there. A refusal (400, 403: the
        upstream will never take that id) is given up; anything else waits for the next round."""
        if self._maker is None:
            return
        async with self._sweeping:
            for handle, account in await self._store.character_deletions():
                try:
                    await self._maker.delete_character(handle)
                except UpstreamError as exc:
                    if not isinstance(exc, RejectedError):
                        log.info("character on %s not deleted there yet: %s", account, exc)
                        continue
                    log.warning("character on %s can't be deleted there: %s", account, exc)
                await self._store.character_deleted(handle)
