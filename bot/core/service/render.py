"""One job on one road: the request as that road takes it (its own model id, the references as
handles or as pictures, its characters by their ids on the account it runs on or as their
pictures, the prompt's @words as that road grounds images, the seed where it takes one), the
call (or the asynchronous execution, ``executions``), and, once the slot is given back, what it
made fetched as the job's results, each recording its road and unit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from bot.core.characters import upstream_prompt, worded_prompt
from bot.core.domain import ImageRef, Job, ResultImage, UpscaleRequest
from bot.core.images import sniff_mime
from bot.core.models_table import ModelTable
from bot.core.ports import Store
from bot.core.providers import (
    ImageRequest,
    Reference,
    RenderedImage,
    Rendering,
    Resumable,
    Upscaler,
)
from bot.core.scheduler import Slot
from bot.core.service.character_making import Making
from bot.core.service.executions import Executions
from bot.core.service.references import References
from bot.core.service.roads import Roads
from bot.core.upstream import InvalidRequestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A job made ready for its road: the request as the road takes it (None: an upscale)."""

    asked: ImageRequest | None
    handles: list[str] | None  # what the references went as (None: as pictures)
    used_cache: bool  # a cached upload was among them


class Renderer:
    def __init__(
        self,
        store: Store,
        roads: Roads,
        models: ModelTable,
        references: References,
        making: Making,
    ) -> None:
        self._roads = roads
        self._models = models
        self._references = references
        self._executions = Executions(store)
        self._making = making
        self._store = store

    async def prepare(self, job: Job, slot: Slot) -> Prepared:
        """``job``'s request as the slot's road takes it, its references sent or uploaded."""
        request = job.request
        road = slot.provider
        if isinstance(request, UpscaleRequest):
            return Prepared(None, [], used_cache=False)
        spec = self._models.resolve(request.model)
        offer = spec.offer(road) if spec else None
        if offer is None:  # the table changed under a queued job
            raise InvalidRequestError(f"{road} no longer serves {request.model}")
        account = self._account(slot)
        provider = self._roads[road]
        references, handles, cached = await self._references.sent(
            request, provider, slot.account, account
        )
        characters = list(request.characters)
        if characters and offer.characters:  # by their ids, on the account it runs on
            characters = await self._making.on(characters, slot.account)
            if characters != list(request.characters):
                moved = replace(request, characters=tuple(characters))
                await self._store.update_request(job.id, moved)
                slot.entry.home = slot.account
            sent = tuple(c.handle for c in characters)
            pictures: tuple[Reference, ...] = ()
        else:  # as their pictures, after the references
            sent = ()
            pictures = await self._references.characters(characters, provider.profile)
        # A character's or reference's @word becomes what the road grounds its images by.
        marked = upstream_prompt if provider.profile.markers else worded_prompt
        asked = ImageRequest(
            prompt=marked(request.prompt, characters, len(references)),
            model=offer.provider_model,
            aspect_ratio=request.aspect_ratio,
            size=request.size,
            count=request.count,
            seed=request.seed if offer.seed else None,
            references=references + pictures,
            account=account,
            characters=sent,
        )
        return Prepared(asked, handles, cached)

    async def render(self, job: Job, slot: Slot, prepared: Prepared) -> Rendering:
        """Run the prepared job on the slot's road and unit: what it made (its pictures may
        be pending, for ``fetch``)."""
        request = job.request
        road = slot.provider
        provider = self._roads[road]
        if prepared.asked is None:
            assert isinstance(request, UpscaleRequest)
            if not isinstance(provider, Upscaler):
                raise InvalidRequestError(f"{road} has no upscale")
            data = await provider.upscale_image(
                request.image.media_id, request.resolution, account=self._account(slot)
            )
            return Rendering(road, (RenderedImage(data, sniff_mime(data)),), account=slot.account)
        return await self._call(job, road, prepared.asked)

    async def fetch(
        self, job: Job, slot: Slot, prepared: Prepared, rendering: Rendering
    ) -> list[ResultImage]:
        """The pictures of what ``render`` made, brought from the road (after the slot is given
        back: a download uses no generation capacity), as the job's results."""
        request = job.request
        road = slot.provider
        if prepared.asked is None:
            assert isinstance(request, UpscaleRequest)
            (image,) = rendering.pictures
            return [ResultImage(1, request.image, None, request.model, image.mime, image.data)]
        asked = prepared.asked
        rendering = await self._roads[road].fetch(rendering)
        images = [
            ResultImage(
                index=i,
                ref=ImageRef(image.handle or "", slot.account, road),
                seed=image.seed if image.seed is not None else asked.seed,
                model=request.model,
                mime=image.mime,
                data=image.data,
            )
            for i, image in enumerate(rendering.pictures, start=1)
        ]
        spec = self._models.resolve(request.model)
        offer = spec.offer(road) if spec else None
        price = offer.price(asked.size) if offer else None
        log.info(
            "job %d rendered on %s: %d images%s%s",
            job.id,
            road,
            len(images),
            f", {rendering.withheld} withheld by the filter" if rendering.withheld else "",
            f", ${price * len(images):.3f}" if price is not None else "",
        )
        return images

    def _account(self, slot: Slot) -> str | None:
        return slot.account if self._roads.pooled(slot.provider) else None

    async def _call(self, job: Job, road: str, asked: ImageRequest) -> Rendering:
        provider = self._roads[road]
        if isinstance(provider, Resumable):
            return await self._executions.render(job, road, provider, asked)
        return await provider.generate(asked)
