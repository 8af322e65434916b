"""Reference images on their way to a road: a road that holds them by handle gets a user's
picture uploaded once per account and content (its id is cached a while), and a job goes where
its references already are; a road that takes pictures gets the bytes, shrunk to what it takes;
a road that fetches them gets a fresh link to our stored copy at each attempt (never cached or
kept: it is valid a short while), a character's pictures as well; a result's own images are
referenced by the handles their road gave them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from bot.core import character_texts, texts
from bot.core.character_records import CharacterRef
from bot.core.domain import GenerationRequest, ImageRef, Job, Request, Upload
from bot.core.images import shrink, sniff_mime
from bot.core.ports import Store
from bot.core.providers import (
    ImageProvider,
    Links,
    ProviderProfile,
    Reference,
    ReferenceMode,
    Uploader,
)
from bot.core.scheduler import Scheduler
from bot.core.upstream import RejectedError

log = logging.getLogger(__name__)

# How long an uploaded asset's id is reused. The upstream doesn't say how long it keeps assets;
# a day saves the repeat uploads that matter (the same picture, prompt after prompt) without
# trusting an id forever. A refused cached id is dropped at once anyway (``forget``).
ASSET_MAX_AGE = 24 * 3600.0


class ReferenceFailed(Exception):
    """A reference can't be sent: ``message`` ends the job for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class References:
    def __init__(self, store: Store, scheduler: Scheduler, links: Links | None = None) -> None:
        self._store = store
        self._scheduler = scheduler
        self._links = links

    async def preferred(self, request: Request) -> frozenset[str]:
        """The healthy units that hold every upload of ``request`` already."""
        preferred: set[str] = set()
        uploads = request.uploads if isinstance(request, GenerationRequest) else ()
        if uploads:
            for account in self._scheduler.healthy_accounts():
                cached = [
                    await self._store.cached_asset(u.sha256, account, max_age=ASSET_MAX_AGE)
                    for u in uploads
                ]
                if all(cached):
                    preferred.add(account)
        return frozenset(preferred)

    async def sent(
        self, request: GenerationRequest, provider: ImageProvider, unit: str, account: str | None
    ) -> tuple[tuple[Reference, ...], list[str] | None, bool]:
        """``request``'s references as ``provider`` takes them on ``unit``; the handles they
        went as (None where a user's picture went as itself or as a link: it is sent again);
        whether a cached upload was among them."""
        profile = provider.profile
        out: list[Reference] = []
        handles: list[str] = []
        used_cache = False
        kept = False  # a user's picture went as itself or as a link, not as a handle
        for ref in request.references:
            if isinstance(ref, ImageRef):
                out.append(Reference(handle=ref.media_id))
                handles.append(ref.media_id)
            elif profile.references is ReferenceMode.BYTES:
                data = await self._picture(ref, profile.max_reference_bytes)
                out.append(Reference(data=data, mime=sniff_mime(data)))
                kept = True
            elif profile.links and self._links is not None:
                # A link to a picture no longer held would fail only at the road, unexplained.
                if await self._store.blob(ref.sha256) is None:
                    raise ReferenceFailed(texts.REFERENCE_NOT_USABLE)
                out.append(Reference(link=self._links.link(ref.sha256)))
                kept = True
            elif isinstance(provider, Uploader):
                media_id, cached = await self._uploaded(provider, ref, unit, account)
                used_cache = used_cache or cached
                out.append(Reference(handle=media_id))
                handles.append(media_id)
            else:  # routing never sends a picture here; a table changed under a queued job
                raise ReferenceFailed(texts.PICTURES_NOT_TAKEN)
        return tuple(out), None if kept else handles, used_cache

    async def characters(
        self, characters: Sequence[CharacterRef], profile: ProviderProfile
    ) -> tuple[Reference, ...]:
        """The characters' kept pictures, in order, for a road that takes no characters (it
        takes them as pictures, or as links to them: ``routing.by_characters``); one deleted
        since ends the job."""
        out: list[Reference] = []
        for character in characters:
            pictures = await self._store.character_images(character.id)
            if not pictures:
                raise ReferenceFailed(character_texts.CHARACTER_GONE)
            for picture in pictures:
                if profile.references is ReferenceMode.BYTES:
                    data = picture.data or b""
                    limit = profile.max_reference_bytes
                    if limit is not None and len(data) > limit:
                        data = await asyncio.to_thread(shrink, data, limit)
                    out.append(Reference(data=data, mime=sniff_mime(data)))
                elif profile.links and self._links is not None:
                    out.append(Reference(link=self._links.link(picture.sha256)))
                else:  # routing sends characters to neither; a table changed under a queued job
                    raise ReferenceFailed(texts.PICTURES_NOT_TAKEN)
        return tuple(out)

    async def _picture(self, ref: Upload, limit: int | None) -> bytes:
        data = await self._store.blob(ref.sha256)
        if data is None:
            raise ReferenceFailed(texts.REFERENCE_NOT_USABLE)
        if limit is not None and len(data) > limit:
            data = await asyncio.to_thread(shrink, data, limit)
        return data

    async def _uploaded(
        self, uploader: Uploader, ref: Upload, unit: str, account: str | None
    ) -> tuple[str, bool]:
        """The picture's id on ``unit``, uploading our copy once per unit and content; and
        whether it came from the cache."""
        cached = await self._store.cached_asset(ref.sha256, unit, max_age=ASSET_MAX_AGE)
        if cached:
            return cached, True
        data = await self._store.blob(ref.sha256)
        if data is None:
            raise ReferenceFailed(texts.REFERENCE_NOT_USABLE)
        try:
            media_id = await uploader.upload(data, ref.mime, account=account)
        except RejectedError as exc:
            log.info("reference upload refused on %s: %s", unit, exc.detail)
            raise ReferenceFailed(texts.REFERENCE_REFUSED) from exc
        await self._store.cache_asset(ref.sha256, unit, media_id)
        return media_id, False

    async def forget(self, unit: str, uploads: Sequence[Upload]) -> None:
        """The upstream refused ids we cached: upload those pictures afresh next time."""
        await self._store.forget_assets(unit, [u.sha256 for u in uploads])

    async def remember(self, job: Job, unit: str, road: str, sent: Sequence[str] | None) -> None:
        """Rewrite uploads as the handles they were sent as, so 🎲 on this result needs no
        upload (where they went as pictures they stay: 🎲 sends them again)."""
        request = job.request
        if sent is not None and isinstance(request, GenerationRequest) and request.uploads:
            refs = tuple(ImageRef(media_id, unit, road) for media_id in sent)
            await self._store.update_request(job.id, replace(request, references=refs))
