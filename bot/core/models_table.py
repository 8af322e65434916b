"""The model table: every fact about the image models and the roads that serve them, as data.

The upstreams rename and retire models under us (Imagen left Flow in July 2026, Gemini's
``-preview`` ids were shut down in June 2026), so nothing else in the code names a model: it
asks this table. Each model lists its offers: how each provider serves it (the provider's own
model id, reference limit, aspect ratios, sizes, images per call, seed, native upscale, price per
image). What a model can do on a road lives here, once, where an operator can correct it
without a code change (``BOT_MODELS_FILE``, read by ``bot.core.models_file``); what a road's plan
allows (concurrency, requests per minute, how it takes references) is the provider's own, in
its ``ProviderProfile``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

AUTO = "auto"
# What one request may ask of any model: images per prompt, seeds, sizes, upscale sizes.
MIN_COUNT, MAX_COUNT = 1, 4
MAX_SEED = 2**31 - 1
SIZES = ("1K", "2K", "4K")
UPSCALE_SIZES = ("2k", "4k")
# The roads the bot knows, in the order it uses them unless told (BOT_PROVIDERS).
PROVIDERS = ("flow", "gemini", "nbpro", "wireflow")

FLOW_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16")
# Google's ten ratios; Gemini, nano-banana-pro.net (less two) and Wireflow take these.
GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
NBPRO_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9")


@dataclass(frozen=True)
class ModelOffer:
    """One model as one provider serves it. ``model`` is the bot's model id, ``provider_model``
    the provider's; ``upscale`` lists native upscale resolutions (Flow's endpoint); ``prices``
    are USD per image by size (empty: a subscription, or plan credits with no stated price)."""

    model: str
    provider_model: str
    max_references: int
    aspect_ratios: tuple[str, ...]
    sizes: tuple[str, ...] = ("1K",)
    images_per_call: int = 1
    max_count: int = MAX_COUNT
    seed: bool = False
    auto_aspect: bool = False  # "auto": the ratio of the first reference
    upscale: tuple[str, ...] = ()
    prices: tuple[tuple[str, float], ...] = ()
    provider: str = ""
    characters: bool = False  # takes Flow characters (character_1…)

    def price(self, size: str) -> float | None:
        return dict(self.prices).get(size)

    def calls_for(self, count: int) -> int:
        return math.ceil(count / self.images_per_call)

    def accepts_ratio(self, ratio: str, *, with_references: bool) -> bool:
        if ratio == AUTO:
            return self.auto_aspect and with_references
        return ratio in self.aspect_ratios

    def larger_sizes(self, size: str) -> tuple[str, ...]:
        """The sizes above ``size`` this offer renders at: what U re-renders at, where the
        provider has no upscale of its own."""
        above = SIZES[SIZES.index(size) + 1 :] if size in SIZES else ()
        return tuple(s for s in above if s in self.sizes)

    def enlarges(self, size: str) -> bool:
        """Whether U has something to do on an image this offer made at ``size``."""
        return bool(self.upscale or self.larger_sizes(size))


@dataclass(frozen=True)
class ModelSpec:
    """One model: its names, the model tried when moderation refuses it twice, and its offers
    (in the order the roads are used). The capabilities below are over every offer, for what
    is listed to users; a job is checked against the offer that will serve it."""

    id: str
    label: str
    aliases: tuple[str, ...] = ()
    moderation_fallback: str | None = None
    offers: tuple[ModelOffer, ...] = ()

    def offer(self, provider: str) -> ModelOffer | None:
        return next((o for o in self.offers if o.provider == provider), None)

    @property
    def max_references(self) -> int:
        return max((o.max_references for o in self.offers), default=0)

    @property
    def aspect_ratios(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for o in self.offers for r in o.aspect_ratios))

    @property
    def auto_aspect(self) -> bool:
        return any(o.auto_aspect for o in self.offers)

    @property
    def upscale(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r for o in self.offers for r in o.upscale))

    @property
    def characters(self) -> bool:
        """Whether some road takes Flow characters (``character_1``…) with this model."""
        return any(o.characters for o in self.offers)

    @property
    def can_upscale(self) -> bool:
        return any(o.enlarges("1K") for o in self.offers)

    def accepts_ratio(self, ratio: str, *, with_references: bool) -> bool:
        return any(o.accepts_ratio(ratio, with_references=with_references) for o in self.offers)


def _flow(
    model: str, *, auto: bool = False, upscale: tuple[str, ...] = (), characters: bool = True
) -> ModelOffer:
    # One call makes up to four images; every model takes ten references and a seed. Flow is
    # paid by subscription (useapi.net and the Google account), not per image. Characters are
    # Flow's alone (POST /characters).
    return ModelOffer(
        model,
        model,
        max_references=10,
        aspect_ratios=FLOW_RATIOS,
        images_per_call=4,
        seed=True,
        auto_aspect=auto,
        upscale=upscale,
        provider="flow",
        characters=characters,
    )


def _gemini(model: str, wire: str, **offer: Any) -> ModelOffer:
    # One image per call; a seed and "auto" (no aspectRatio sent) on every model. Prices are
    # Google's standard (not batch) output prices per image.
    return ModelOffer(model, wire, seed=True, auto_aspect=True, provider="gemini", **offer)


def _wireflow(model: str, node: str, **offer: Any) -> ModelOffer:
    # A generation node per model (only generate:nano_banana_pro is in Wireflow's examples; the
    # other two follow its naming); Wireflow's per-image prices, billed as credits.
    return ModelOffer(model, node, aspect_ratios=GEMINI_RATIOS, provider="wireflow", **offer)


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="nano-banana-2-lite",
        label="Nano Banana 2 Lite",
        # imagen-4 is the deprecated alias the upstream kept when Imagen left Flow (July 2026).
        aliases=("lite", "2-lite", "flash-lite", "imagen-4", "imagen"),
        moderation_fallback="nano-banana-2",
        # Flow's own: no other road serves it; Imagen (now its alias) took no characters.
        offers=(_flow("nano-banana-2-lite", characters=False),),
    ),
    ModelSpec(
        id="nano-banana-2",
        label="Nano Banana 2",
        # "nano-banana" is this model, as in Flow's API and as this bot's users have typed it;
        # the 2025 model Google called Nano Banana is nano-banana-1.
        aliases=("2", "nb2", "nano-banana", "banana", "flash"),
        moderation_fallback="nano-banana-2-lite",
        offers=(
            _flow("nano-banana-2", auto=True, upscale=UPSCALE_SIZES),
            _gemini(
                "nano-banana-2",
                "gemini-3.1-flash-image",
                max_references=14,
                aspect_ratios=(*GEMINI_RATIOS, "1:4", "4:1", "1:8", "8:1"),
                sizes=SIZES,
                prices=(("1K", 0.067), ("2K", 0.101), ("4K", 0.151)),
            ),
            # No model parameter (it renders Nano Banana 2), no seed, plan credits.
            ModelOffer(
                "nano-banana-2",
                "nano-banana-2",
                max_references=14,
                aspect_ratios=NBPRO_RATIOS,
                sizes=SIZES,
                provider="nbpro",
            ),
            _wireflow(
                "nano-banana-2",
                "generate:nano_banana_2",
                max_references=14,
                sizes=SIZES,
                prices=(("1K", 0.07), ("2K", 0.07), ("4K", 0.07)),
            ),
        ),
    ),
    ModelSpec(
        id="nano-banana-pro",
        label="Nano Banana Pro",
        aliases=("pro", "nbp", "banana-pro"),
        moderation_fallback="nano-banana-2",
        offers=(
            _flow("nano-banana-pro", auto=True, upscale=UPSCALE_SIZES),
            _gemini(
                "nano-banana-pro",
                "gemini-3-pro-image",
                max_references=14,
                aspect_ratios=GEMINI_RATIOS,
                sizes=SIZES,
                prices=(("1K", 0.134), ("2K", 0.134), ("4K", 0.24)),
            ),
            _wireflow(
                "nano-banana-pro",
                "generate:nano_banana_pro",
                max_references=14,
                sizes=SIZES,
                prices=(("1K", 0.13), ("2K", 0.13), ("4K", 0.24)),
            ),
        ),
    ),
    ModelSpec(
        id="nano-banana-1",
        label="Nano Banana 1 (Gemini 2.5 Flash Image)",
        aliases=("1", "nb1", "2.5-flash"),
        moderation_fallback="nano-banana-2",
        offers=(
            # Announced to shut down on Gemini on 2 October 2026.
            _gemini(
                "nano-banana-1",
                "gemini-2.5-flash-image",
                max_references=3,
                aspect_ratios=GEMINI_RATIOS,
                prices=(("1K", 0.039),),
            ),
            _wireflow(
                "nano-banana-1", "generate:nano_banana", max_references=3, prices=(("1K", 0.04),)
            ),
        ),
    ),
)

# What an offer the operator adds on a road gets unless the file says otherwise; its
# max_references is the most that road's API takes (Flow: reference_1 … reference_10).
NEW_OFFER: dict[str, dict[str, Any]] = {
    "flow": {
        "max_references": 10,
        "aspect_ratios": FLOW_RATIOS,
        "images_per_call": 4,
        "seed": True,
        "characters": True,
    },
    "gemini": {"max_references": 14, "aspect_ratios": GEMINI_RATIOS, "sizes": SIZES, "seed": True},
    "nbpro": {"max_references": 14, "aspect_ratios": NBPRO_RATIOS, "sizes": SIZES},
    "wireflow": {"max_references": 14, "aspect_ratios": GEMINI_RATIOS, "sizes": SIZES},
}


class ModelTableError(ValueError):
    """The model table (or the operator's override file) is inconsistent."""


@dataclass(frozen=True)
class ModelTable:
    """Lookup by id or alias, case-insensitive; ``default_id`` is used when none is set."""

    models: tuple[ModelSpec, ...]
    default_id: str
    _index: Mapping[str, ModelSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, ModelSpec] = {}
        for spec in self.models:
            for name in (spec.id, *spec.aliases):
                key = name.lower()
                if key in index and index[key].id != spec.id:
                    raise ModelTableError(
                        f"model name {name!r} is used by both {index[key].id} and {spec.id}"
                    )
                index[key] = spec
        if self.default_id not in {m.id for m in self.models}:
            raise ModelTableError(f"default model {self.default_id!r} is not in the table")
        for spec in self.models:
            if spec.moderation_fallback and spec.moderation_fallback.lower() not in index:
                raise ModelTableError(
                    f"{spec.id}: moderation_fallback {spec.moderation_fallback!r} is unknown"
                )
        object.__setattr__(self, "_index", index)

    @property
    def default(self) -> ModelSpec:
        return self._index[self.default_id]

    def resolve(self, name: str) -> ModelSpec | None:
        return self._index.get(name.strip().lower())

    def for_characters(self) -> ModelSpec | None:
        """The model a prompt with characters gets when its user chose none."""
        if self.default.characters:
            return self.default
        return next((m for m in self.models if m.characters and m.max_references), None)

    def ids(self) -> list[str]:
        return [m.id for m in self.models]

    def fallback(self, model: str) -> ModelSpec | None:
        """The model to try when ``model`` was moderated twice, if the table names one (the
        caller checks that it takes the request)."""
        spec = self.resolve(model)
        return self.resolve(spec.moderation_fallback) if spec and spec.moderation_fallback else None

    def all_ratios(self) -> list[str]:
        seen: dict[str, None] = {}
        for spec in self.models:
            seen.update(dict.fromkeys(spec.aspect_ratios))
            if spec.auto_aspect:
                seen[AUTO] = None
        return list(seen)

    def offers(self, provider: str) -> tuple[ModelOffer, ...]:
        """Every model ``provider`` serves, as it serves it."""
        return tuple(o for m in self.models if (o := m.offer(provider)) is not None)

    def serving(self, providers: Sequence[str]) -> ModelTable:
        """The table as these providers, in this order, serve it: other roads' offers gone,
        models no road serves gone (a fallback to one of them with them), the default the first
        model served if its own isn't."""
        rank = {name: i for i, name in enumerate(providers)}
        kept = []
        for spec in self.models:
            chosen = sorted(
                (o for o in spec.offers if o.provider in rank), key=lambda o: rank[o.provider]
            )
            if chosen:
                kept.append(replace(spec, offers=tuple(chosen)))
        if not kept:
            raise ModelTableError(f"no model in the table is served by {', '.join(providers)}")
        ids = {spec.id for spec in kept}
        kept = [
            spec if spec.moderation_fallback in ids else replace(spec, moderation_fallback=None)
            for spec in kept
        ]
        return ModelTable(tuple(kept), self.default_id if self.default_id in ids else kept[0].id)

    @classmethod
    def builtin(cls) -> ModelTable:
        return cls(DEFAULT_MODELS, DEFAULT_MODELS[0].id)
