"""Which roads can serve a request, in the operator's order (``BOT_PROVIDERS``): pure, from the
model table's offers and what each road takes as references.

A request goes to the first road that can serve all of it: its model, its references (their
number, and their kind: a road takes the pictures a user sends only as bytes or through an
upload of its own; an image a road made, held there by its handle, ties the request to that
road), its aspect ratio and size. The roads after it, in order, are where it moves when that
one can't serve (an operator problem). ``bot.core.options`` turns the first fault into the
sentence a user sees; the scheduler (``bot.core.scheduler``) takes the first road that can.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.domain import GenerationRequest, ImageRef, Upload
from bot.core.models_table import ModelOffer, ModelSpec


@dataclass(frozen=True)
class Refs:
    """A request's references as routing sees them."""

    uploads: int = 0  # pictures the user sent, held by us until sent
    held_by: str | None = None  # the road holding the rest (images it made), if any
    total: int = 0

    @classmethod
    def of(cls, references: Iterable[ImageRef | Upload]) -> Refs:
        refs = list(references)
        held = {r.provider for r in refs if isinstance(r, ImageRef)}
        return cls(
            uploads=sum(isinstance(r, Upload) for r in refs),
            held_by=min(held) if held else None,  # two roads at once: admission refuses it
            total=len(refs),
        )


def by_kind(spec: ModelSpec, refs: Refs, pictures: frozenset[str]) -> list[ModelOffer]:
    """The offers, in order, on roads that can take this kind of reference: the road that
    holds them, and only roads that take pictures when the user sent some."""
    return [
        offer
        for offer in spec.offers
        if (refs.held_by is None or offer.provider == refs.held_by)
        and (not refs.uploads or offer.provider in pictures)
    ]


def by_count(offers: Iterable[ModelOffer], refs: Refs) -> list[ModelOffer]:
    return [o for o in offers if refs.total <= o.max_references]


def by_ratio(offers: Iterable[ModelOffer], ratio: str, refs: Refs) -> list[ModelOffer]:
    return [o for o in offers if o.accepts_ratio(ratio, with_references=refs.total > 0)]


def by_size(offers: Iterable[ModelOffer], size: str) -> list[ModelOffer]:
    return [o for o in offers if size in o.sizes]


def by_count_of_images(offers: Iterable[ModelOffer], count: int) -> list[ModelOffer]:
    return [o for o in offers if count <= o.max_count]


def by_seed(offers: Iterable[ModelOffer], fixed: bool) -> list[ModelOffer]:
    return [o for o in offers if o.seed or not fixed]


def takes_characters(offer: ModelOffer, as_pictures: frozenset[str]) -> bool:
    """Whether ``offer`` takes characters: by their ids (Flow's ``character_n``), or as their
    pictures on a road that takes them so (``as_pictures``: Gemini and nano-banana-pro.net
    inline; Wireflow by link, where the bot has links to give)."""
    return offer.characters or offer.provider in as_pictures


def by_characters(
    offers: Iterable[ModelOffer], request: GenerationRequest, as_pictures: frozenset[str]
) -> list[ModelOffer]:
    """Roads that take the request's characters, their pictures counted with the references
    against the model's budget there (a character is the same pictures on every road)."""
    if not request.characters:
        return list(offers)
    pictures = len(request.references) + sum(c.images for c in request.characters)
    return [o for o in offers if takes_characters(o, as_pictures) and pictures <= o.max_references]


def serving(
    spec: ModelSpec,
    request: GenerationRequest,
    pictures: frozenset[str],
    as_pictures: frozenset[str] = frozenset(),
) -> list[ModelOffer]:
    """Every offer that can serve all of ``request``, in the order the roads are used."""
    refs = Refs.of(request.references)
    offers = by_count(by_kind(spec, refs, pictures), refs)
    offers = by_size(by_ratio(offers, request.aspect_ratio, refs), request.size)
    offers = by_seed(by_count_of_images(offers, request.count), request.fixed_seed)
    return by_characters(offers, request, as_pictures)
