"""What a checked prompt asks for, as one ``GenerationRequest``: its options over the person's
settings over the server's default model, with its characters and references, resolved against
the model table and refused (``InvalidInput``, the sentence to show) where it can't be made.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from bot.core import texts
from bot.core.characters import check_budget, check_prompt
from bot.core.community import ServerSettings
from bot.core.domain import GenerationRequest, ImageRef
from bot.core.errors import InvalidInput
from bot.core.models_table import ModelTable
from bot.core.options import Options, resolve
from bot.core.people import Identity, Owner
from bot.core.policy import Defaults, Limits
from bot.core.ports import Store
from bot.core.routing import Refs
from bot.core.service.characters import Characters
from bot.core.service.roads import Roads


class Prompts:
    def __init__(
        self,
        store: Store,
        characters: Characters,
        roads: Roads,
        models: ModelTable,
        *,
        defaults: Defaults,
        limits: Limits,
        rng: random.Random,
    ) -> None:
        self._store = store
        self._characters = characters
        self._roads = roads
        self._models = models
        self._defaults = defaults
        self._limits = limits
        self._rng = rng

    async def request(
        self,
        owner: Owner,
        person: Identity,
        server: ServerSettings,
        prompt: str,
        asked: Options,
        references: int,
        refs: Sequence[ImageRef],
        like: GenerationRequest | None,
    ) -> tuple[GenerationRequest, int]:
        """The request a checked prompt makes, with the person's settings and the server's
        default filling what it leaves open; and how many of its references are to upload."""
        settings = await self._store.user_settings(person.key)
        if like is not None:
            settings = replace(settings, aspect_ratio=like.aspect_ratio, count=like.count)
        kept = like.characters if like is not None else ()
        characters = await self._characters.named_in(owner, prompt, kept)
        if characters and not (asked.model or settings.model):
            chosen = self._models.for_characters()
            asked = replace(asked, model=chosen.id) if chosen else asked
        if settings.model is None and server.model and self._models.resolve(server.model):
            settings = replace(settings, model=server.model)  # the server's default
        held_by = min((r.provider for r in refs), default=None)
        sent = Refs(uploads=references - len(refs), held_by=held_by, total=references)
        resolved = resolve(
            prompt,
            asked,
            settings,
            refs=sent,
            table=self._models,
            pictures=self._roads.pictures,
            defaults=self._defaults,
            limits=self._limits,
            rng=self._rng,
            naming=texts.naming(owner.platform),
        )
        if len({r.account for r in refs}) > 1:
            raise InvalidInput(texts.REFERENCE_NOT_USABLE)
        check_prompt(resolved.prompt, references)
        pictures = [len(c.images) for c in characters]
        roads = self._roads
        check_budget(resolved.model, pictures, references, roads.as_pictures, roads.unlinked)
        pinned = refs[0].account if refs else None
        request = GenerationRequest(
            prompt=resolved.prompt,
            model=resolved.model.id,
            aspect_ratio=resolved.aspect_ratio,
            count=resolved.count,
            seed=resolved.seed,
            references=tuple(refs),
            characters=await self._characters.placed(owner.user, characters, pinned),
            size=resolved.size,
            fixed_seed=resolved.fixed_seed,
        )
        return request, sent.uploads
