"""A request's reference images, fetched and checked by their content: one download per user and
a few overall (a request waits its turn holding its place in the queue, not a download), a few
decoded at once; and the ``Reservation`` that fetches them before its job is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from bot.core.domain import GenerationRequest, Lineage, Request, Submitted, Upload
from bot.core.images import PreparedImage, prepare_reference
from bot.core.people import Owner, UserKey
from bot.core.policy import Limits
from bot.core.service.api import Fetch
from bot.core.service.fairness import Slots

# References being downloaded (and held in memory) at once: one request per user, this many in
# all. A request waits its turn holding its place in the queue, not a download.
DOWNLOAD_SLOTS = 3
# Reference images decoded at once (a 50-megapixel image takes hundreds of MB).
PREPARE_SLOTS = 2

# Stores and queues a job for a person, its pictures' bytes by their sha256, the result it was
# made from (``Admission.enqueue``).
Enqueue = Callable[
    [Owner, UserKey, Request, dict[str, bytes], Lineage | None, bool], Awaitable[Submitted]
]


class Downloads:
    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._turns = Slots(per_key=1, overall=DOWNLOAD_SLOTS)
        self._prepare_slots = asyncio.Semaphore(PREPARE_SLOTS)

    async def fetch(self, user: UserKey, fetch: Fetch, expected: int) -> list[PreparedImage]:
        """Fetch and check a request's images in the user's download turn."""
        async with self._turns.hold(user):
            images = await fetch()
            if len(images) != expected:
                raise ValueError(f"fetched {len(images)} images, announced {expected}")
            return [await self._prepare(data) for data in images]

    async def _prepare(self, data: bytes) -> PreparedImage:
        async with self._prepare_slots:
            return await asyncio.to_thread(
                prepare_reference,
                data,
                max_bytes=self._limits.max_image_bytes,
                max_pixels=self._limits.max_image_pixels,
            )


class Reservation:
    """A request that passed every check that needs no image, holding its place in the user's
    queue and day: the front end acknowledges the user, then ``submit`` fetches the references
    (bounded per user and overall) and stores the job. Valid inside ``async with`` only."""

    def __init__(
        self,
        downloads: Downloads,
        enqueue: Enqueue,
        owner: Owner,
        person: UserKey,
        request: Request,
        *,
        uploads: int = 0,
        fetch: Fetch | None = None,
        parent: Lineage | None = None,
    ):
        self._downloads = downloads
        self._enqueue = enqueue
        self._owner = owner
        self._person = person
        self._request = request
        self._uploads = uploads
        self._fetch = fetch  # where the pictures come from when the front end has none
        self._parent = parent

    async def submit(
        self,
        *,
        fetch: Fetch | None = None,
        route: Mapping[str, str] | None = None,
        until_told: bool = False,
    ) -> Submitted:
        """Store and queue the job; ``route`` adds the front end's ids (its status message)."""
        owner = replace(self._owner, route=route) if route is not None else self._owner
        request, blobs = self._request, {}
        fetch = fetch or self._fetch
        if self._uploads:
            if fetch is None:
                raise ValueError("this request needs its reference images fetched")
            prepared = await self._downloads.fetch(owner.user, fetch, self._uploads)
            uploads = tuple(Upload(p.sha256, p.mime) for p in prepared)
            assert isinstance(request, GenerationRequest)
            request = replace(request, references=(*request.references, *uploads))
            blobs = {p.sha256: p.data for p in prepared}
        return await self._enqueue(owner, self._person, request, blobs, self._parent, until_told)
