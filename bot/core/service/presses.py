"""What a press of 🎲 or U on a finished result asks for: the same request with a new seed, or
the road's own upscale of the image (else the image rendered again at a larger size), refused
(``InvalidInput``, ``AlreadyMade``) where it can't be made or was made already.
"""

from __future__ import annotations

import random
from dataclasses import replace

from bot.core import option_texts, texts
from bot.core.domain import (
    GenerationRequest,
    ImageRef,
    Job,
    JobState,
    Request,
    ResultImage,
    UpscaleRequest,
)
from bot.core.errors import AlreadyMade, InvalidInput
from bot.core.models_table import ModelTable
from bot.core.options import new_seed
from bot.core.people import Identity, Owner
from bot.core.policy import Defaults
from bot.core.ports import Store
from bot.core.service.characters import Characters


class Presses:
    def __init__(
        self,
        store: Store,
        characters: Characters,
        models: ModelTable,
        *,
        defaults: Defaults,
        rng: random.Random,
    ) -> None:
        self._store = store
        self._characters = characters
        self._models = models
        self._defaults = defaults
        self._rng = rng

    async def again(self, owner: Owner, request: GenerationRequest) -> GenerationRequest:
        """🎲: the same request with a new seed, its characters where they can serve now."""
        again = replace(request, seed=new_seed(self._rng))
        if not request.characters:
            return again
        found = await self._characters.named_in(owner, "", request.characters)
        pinned = next((r.account for r in request.references if isinstance(r, ImageRef)), None)
        placed = await self._characters.placed(owner.user, found, pinned)
        return replace(again, characters=placed)

    async def upscale(
        self, person: Identity, job: Job, made: GenerationRequest, image: ResultImage
    ) -> Request:
        """What U asks for: the road's own upscale of the image where it has one, else the
        image rendered again (its seed, where the road takes one) at a larger size."""
        spec = self._models.resolve(image.model)
        offer = spec.offer(image.ref.provider) if spec else None
        if spec is None or offer is None or not offer.enlarges(made.size):
            raise InvalidInput(option_texts.cannot_upscale(image.model, self._models))
        settings = await self._store.user_settings(person.key)
        wanted = settings.upscale_resolution or self._defaults.upscale_resolution
        if offer.upscale and image.ref.media_id:
            resolution = wanted if wanted in offer.upscale else offer.upscale[0]
            return UpscaleRequest(job.id, image.index, image.ref, resolution, spec.id)
        larger = offer.larger_sizes(made.size)
        size = wanted.upper() if wanted.upper() in larger else larger[0]
        seed = image.seed if image.seed is not None else made.seed
        return replace(made, count=1, size=size, seed=seed, fixed_seed=offer.seed)

    async def check_not_made(self, source: int, index: int, size: str) -> None:
        """The same upscale (image and size; a larger render where the road has no upscale)
        asked for before, unless it failed: made once."""
        for job in await self._store.upscales_of(source):
            if enlarges(job.request, job.parent.index if job.parent else 0) != (index, size):
                continue
            if job.state is JobState.DONE and not job.pruned:
                raise AlreadyMade(texts.UPSCALE_AGAIN, job.id)
            if not job.state.final:
                raise InvalidInput(texts.ON_ITS_WAY)


def enlarges(request: Request, index: int) -> tuple[int, str]:
    """The image an upscale enlarges, and to what size: Flow's upscale, or the render of image
    ``index`` at a larger size (a 2K on a road without upscales cost as much the second time)."""
    if isinstance(request, UpscaleRequest):
        return request.index, request.resolution
    return index, request.size
