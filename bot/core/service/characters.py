"""Characters: making one from a user's pictures on an upstream account, listing and deleting
them, and finding the ones a prompt names, on the account its job will run on.

A character lives on the account that made it (google-flow-api.md), so a job using it is pinned
there. If that account can't serve (gone, taken out, or another account than the job's own
references), the character is made again there from its kept pictures, once, and moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence

from bot.core import character_texts, texts
from bot.core.character_records import Character, CharacterImage, CharacterRef, name_key
from bot.core.characters import MAX_IMAGES, MAX_OWNED, check_name, mentions
from bot.core.errors import InvalidInput
from bot.core.images import PreparedImage, thumbnail
from bot.core.people import Owner, UserKey
from bot.core.policy import Access
from bot.core.ports import Store
from bot.core.providers import CharacterMaker
from bot.core.scheduler import Entry, Scheduler
from bot.core.service.accounts import Accounts
from bot.core.service.api import Fetch
from bot.core.service.character_making import Making
from bot.core.service.tasks import Tasks
from bot.core.upstream import OperatorError, RejectedError, UpstreamError

log = logging.getLogger(__name__)
# The road whose accounts hold characters.
FLOW = "flow"

# Fetches and checks a user's pictures as references are (``Admission.fetch``).
Prepare = Callable[[UserKey, Fetch, int], Awaitable[list[PreparedImage]]]

# What a failed making of a character tells its user: the first row that matches.
_FAILURES: tuple[tuple[type[UpstreamError], str], ...] = (
    (RejectedError, character_texts.CHARACTER_NOT_MADE),
    (OperatorError, texts.OPERATOR),
    (UpstreamError, texts.UNAVAILABLE),
)


class Characters:
    def __init__(
        self,
        store: Store,
        maker: CharacterMaker | None,
        scheduler: Scheduler,
        accounts: Accounts,
        access: Access,
        prepare: Prepare,
        tasks: Tasks,
        making: Making,
    ) -> None:
        self._access = access
        self._store = store
        self._maker = maker  # Flow, where it is a road: characters are its alone
        self._making = making  # the runner's too: a character's moves take turns
        self._tasks = tasks
        self._scheduler = scheduler
        self._accounts = accounts
        self._prepare = prepare

    async def create(self, user: UserKey, name: str, images: int, fetch: Fetch) -> Character:
        """Check the name and count before anything is fetched, then fetch and check the
        pictures, make the character upstream and keep it."""
        name = check_name(name)
        if not 1 <= images <= MAX_IMAGES:
            raise InvalidInput(character_texts.character_count(images))
        mine = await self._store.characters(user)
        if any(name_key(c.name) == name_key(name) for c in mine):
            raise InvalidInput(character_texts.character_taken(name))
        if len(mine) >= MAX_OWNED:
            raise InvalidInput(character_texts.too_many_owned(MAX_OWNED))
        account = self._any_account(user)
        prepared = await self._prepare(user, fetch, images)
        pictures = tuple(CharacterImage(p.sha256, p.mime, p.data) for p in prepared)
        handle = await self._make(account, name, pictures)
        made = await self._store.add_character(user, name, account, handle, pictures)
        if made is None:  # the same name, created meanwhile from another chat
            raise InvalidInput(character_texts.character_taken(name))
        log.info("character %d made for %s on %s", made.id, user, account)
        return made

    async def mine(self, user: UserKey) -> list[Character]:
        return await self._store.characters(user)

    async def thumbnail(self, character: Character) -> bytes:
        """A small JPEG of the character's first picture."""
        images = await self._store.character_images(character.id)
        return await asyncio.to_thread(thumbnail, images[0].data or b"")

    async def delete(self, user: UserKey, name: str) -> str:
        """Delete it here at once; its upstream copy goes with ``purge``: now, in the
        background, else at a refresh."""
        found = await self._named(user, name)
        if found is None or not await self._store.delete_character(user, found.id):
            raise InvalidInput(character_texts.no_character(name))
        self._tasks.spawn(self.purge())
        return character_texts.character_deleted(found.name)

    async def purge(self) -> None:
        await self._making.purge()

    async def _named(self, user: UserKey, name: str) -> Character | None:
        key = name_key(name.strip().removeprefix("@"))
        return next(
            (c for c in await self._store.characters(user) if name_key(c.name) == key), None
        )

    async def named_in(
        self, owner: Owner, prompt: str, kept: Sequence[CharacterRef] = ()
    ) -> list[Character]:
        """The characters ``prompt`` names (the user's own first, then those shared where they
        ask), after ``kept``: those of the result R or 🎲 was pressed on, which must still be
        the presser's own or shared here."""
        wanted = mentions(prompt)
        if not wanted and not kept:
            return []  # most prompts: no store read
        shared = {c.id: c for c in await self._store.shared_characters(owner.place)}
        found: list[Character] = []
        for ref in kept:
            character = await self._store.character(ref.id)
            if character is None:
                raise InvalidInput(character_texts.CHARACTER_GONE)
            if character.owner != owner.user and character.id not in shared:
                raise InvalidInput(character_texts.NOT_YOUR_CHARACTER)  # private: its owner's alone
            found.append(character)
        if wanted:
            usable = {name_key(c.name): c for c in shared.values()}
            usable.update({name_key(c.name): c for c in await self._store.characters(owner.user)})
            taken = {c.id for c in found}
            found += [usable[k] for k in wanted if k in usable and usable[k].id not in taken]
        return found

    async def shared_here(self, owner: Owner) -> list[Character]:
        return await self._store.shared_characters(owner.place)

    async def share(self, owner: Owner, name: str) -> str:
        """Share the user's character where they ask, under its name."""
        found = await self._named(owner.user, name)
        if found is None:
            raise InvalidInput(character_texts.no_character(name))
        if not await self._store.share_character(owner.place, found.id, found.name):
            raise InvalidInput(character_texts.shared_name_taken(found.name))
        return character_texts.character_shared(found.name)

    async def unshare(self, owner: Owner, name: str, *, chat_admin: bool) -> str:
        """Stop sharing a character here: its owner may, and the place's admins."""
        key = name_key(name.strip().removeprefix("@"))
        here = await self._store.shared_characters(owner.place)
        found = next((c for c in here if name_key(c.name) == key), None)
        if found is None:
            raise InvalidInput(character_texts.not_shared(name))
        if found.owner != owner.user and not (chat_admin or self._access.is_admin(owner.user)):
            raise InvalidInput(character_texts.NOT_YOURS_TO_UNSHARE)
        await self._store.unshare_character(owner.place, found.id)
        return character_texts.character_unshared(found.name)

    async def placed(
        self, user: UserKey, characters: Sequence[Character], pinned: str | None
    ) -> tuple[CharacterRef, ...]:
        """The characters as a request sends them, all on one account that can serve: the one
        the job's references pin it to, else the first character's, else any. While no Flow
        account can, they stay where they are: another road takes their pictures, or the
        account they run on makes them again (``Renderer``)."""
        if not characters:
            return ()
        usable = [c.account for c in characters if self._usable(user, c.account)]
        target = pinned or (usable[0] if usable else self._free_account())
        refs = []
        for character in characters:
            if target is not None and character.account != target:
                character = await self._recreate(character, target)
            refs.append(
                CharacterRef(
                    character.id,
                    character.name,
                    character.handle,
                    character.account,
                    len(character.images),
                )
            )
        return tuple(refs)

    async def _recreate(self, character: Character, account: str) -> Character:
        """Make ``character`` again on ``account`` (once: a failure is the user's answer)."""
        with self._told(account):
            moved = await self._making.remake(character, account)
        if moved is None:
            raise InvalidInput(character_texts.CHARACTER_GONE)
        return moved

    async def _make(self, account: str, name: str, pictures: Sequence[CharacterImage]) -> str:
        with self._told(account):
            return await self._making.make(account, name, pictures)

    @contextlib.contextmanager
    def _told(self, account: str) -> Iterator[None]:
        """An upstream failure as the sentence its user is told (``_FAILURES``)."""
        try:
            yield
        except UpstreamError as exc:
            log.warning("character not made on %s: %s", account, exc)
            if isinstance(exc, OperatorError):
                self._accounts.take_out(exc, account)
            message = next(m for kind, m in _FAILURES if isinstance(exc, kind))
            raise InvalidInput(message) from exc

    def _usable(self, user: UserKey, account: str) -> bool:
        entry = Entry(job_id=0, user=user, pinned=account)
        return self._accounts.stranded(entry, waited=math.inf) is None

    def _any_account(self, user: UserKey) -> str:
        """A healthy account to make a character on, or the sentence saying why there is none."""
        if self._maker is None:
            raise InvalidInput(texts.CHARACTERS_NEED_FLOW)
        account = self._free_account()
        if account is None:
            entry = Entry(job_id=0, user=user, pinned=None)
            stranded = self._accounts.stranded(entry, waited=math.inf)
            raise InvalidInput(stranded.message if stranded else texts.UNAVAILABLE)
        return account

    def _free_account(self) -> str | None:
        """The healthy Flow account with the least in flight, if Flow is a road and has one."""
        healthy = self._scheduler.healthy_accounts(FLOW) if self._maker is not None else []
        return min(healthy, key=lambda a: self._scheduler.accounts[a].in_flight, default=None)
