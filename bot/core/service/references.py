"""Reference images on upstream accounts: a user's picture is uploaded once per account and
content (its id is cached a while), a job goes where its references already are, and a result's
own images are referenced by the ids the upstream gave them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from bot.core import texts
from bot.core.domain import GenerationRequest, ImageRef, Job, Reference, Request, Upload
from bot.core.ports import Store
from bot.core.scheduler import Scheduler
from bot.core.upstream import RejectedError, Upstream

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
    def __init__(self, store: Store, upstream: Upstream, scheduler: Scheduler) -> None:
        self._store = store
        self._upstream = upstream
        self._scheduler = scheduler

    async def preferred(self, request: Request) -> frozenset[str]:
        """The healthy accounts that hold every upload of ``request`` already."""
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

    async def media_id(self, ref: Reference, account: str) -> tuple[str, bool]:
        """A reference's id on ``account``, uploading our copy once per account and content;
        and whether it came from the cache."""
        if isinstance(ref, ImageRef):
            return ref.media_id, False
        cached = await self._store.cached_asset(ref.sha256, account, max_age=ASSET_MAX_AGE)
        if cached:
            return cached, True
        data = await self._store.blob(ref.sha256)
        if data is None:
            raise ReferenceFailed(texts.REFERENCE_NOT_USABLE)
        try:
            media_id = await self._upstream.upload_asset(account, data, ref.mime)
        except RejectedError as exc:
            log.info("reference upload refused on %s: %s", account, exc.detail)
            raise ReferenceFailed(texts.REFERENCE_REFUSED) from exc
        await self._store.cache_asset(ref.sha256, account, media_id)
        return media_id, False

    async def forget(self, account: str, uploads: Sequence[Upload]) -> None:
        """The upstream refused ids we cached: upload those pictures afresh next time."""
        await self._store.forget_assets(account, [u.sha256 for u in uploads])

    async def remember(self, job: Job, account: str, sent: Sequence[str]) -> None:
        """Rewrite uploads as the ids they were sent as, so 🎲 on this result needs no upload."""
        request = job.request
        if isinstance(request, GenerationRequest) and request.uploads:
            refs = tuple(ImageRef(media_id, account) for media_id in sent)
            await self._store.update_request(job.id, replace(request, references=refs))
