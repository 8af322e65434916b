"""The configured providers, in the operator's order (``BOT_PROVIDERS``): each by its name,
what it takes as references (and the ``Links`` to give a road that fetches pictures), the model
table as they serve it, and the roads a job may take.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from bot.core import routing
from bot.core.domain import Request, UpscaleRequest
from bot.core.models_table import ModelOffer, ModelTable
from bot.core.providers import (
    CharacterMaker,
    ImageProvider,
    Links,
    Pooled,
    ReferenceMode,
    Uploader,
)
from bot.core.scheduler import Route


class Roads:
    def __init__(self, providers: Sequence[ImageProvider], *, links: Links | None = None) -> None:
        if not providers:
            raise ValueError("the service needs at least one provider")
        self._by_name = {p.profile.name: p for p in providers}
        self.order = tuple(self._by_name)
        self.links = links
        # Roads that take a picture a user sent: as bytes, through an upload of their own, or
        # fetched from a link to our copy (where the bot has ``links`` to give).
        self.pictures = frozenset(
            name
            for name, p in self._by_name.items()
            if p.profile.references is ReferenceMode.BYTES
            or isinstance(p, Uploader)
            or (links is not None and p.profile.links)
        )
        # Roads a character goes to as its pictures: with the request, or fetched from a link.
        self.as_pictures = frozenset(
            name
            for name, p in self._by_name.items()
            if p.profile.references is ReferenceMode.BYTES
            or (links is not None and p.profile.links)
        )
        # Roads that would take pictures from links, had the bot an address to give: a
        # refusal there names the operator's fix (``BOT_PUBLIC_URL``), not the model.
        self.unlinked = frozenset(
            name for name, p in self._by_name.items() if links is None and p.profile.links
        )

    @property
    def character_maker(self) -> CharacterMaker | None:
        """The road that makes characters (Flow), if it is one of these."""
        return next((p for p in self if isinstance(p, CharacterMaker)), None)

    def __getitem__(self, name: str) -> ImageProvider:
        return self._by_name[name]

    def __iter__(self) -> Iterator[ImageProvider]:
        return iter(self._by_name.values())

    def pooled(self, name: str) -> bool:
        """Whether the road's units are accounts (Flow): requests then name theirs."""
        return isinstance(self._by_name[name], Pooled)

    def table(self, models: ModelTable) -> ModelTable:
        """``models`` as these roads serve them, where a plan takes fewer references than a
        model does narrowed to the plan's."""
        served = models.serving(self.order)
        caps = {name: p.profile.limits.references for name, p in self._by_name.items()}

        def planned(offer: ModelOffer) -> ModelOffer:
            cap = caps[offer.provider]
            return (
                offer
                if cap is None
                else replace(offer, max_references=min(offer.max_references, cap))
            )

        specs = (replace(m, offers=tuple(map(planned, m.offers))) for m in served.models)
        return ModelTable(tuple(specs), served.default_id)

    def routes(self, request: Request, models: ModelTable) -> tuple[Route, ...]:
        """Where ``request`` may run, in order, with its calls on each."""
        if isinstance(request, UpscaleRequest):
            return (Route(request.image.provider),)  # a native upscale, where the image is
        spec = models.resolve(request.model)
        if spec is None:
            return ()
        offers = routing.serving(spec, request, self.pictures, self.as_pictures)
        return tuple(Route(o.provider, o.calls_for(request.count)) for o in offers)
