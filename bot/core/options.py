"""From what a user typed to a checked ``GenerationRequest``.

Options arrive as inline flags in the prompt (``--ar 16:9 --model pro``) or as structured values
from a slash command; explicit values win over the user's settings, which win over the bot's
defaults. Only what the user said explicitly can be refused: a saved default that doesn't fit
this request (``auto`` without a reference) quietly gives way to the bot's default.

What fits is what some road can serve (``bot.core.routing``): the roads that serve the model and
can take the references, narrowed by each option in turn; a refusal names what those roads do.
"""

from __future__ import annotations

import difflib
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.core import option_texts, routing, texts
from bot.core.domain import UserSettings
from bot.core.errors import InvalidInput
from bot.core.models_table import (
    AUTO,
    MAX_COUNT,
    MAX_SEED,
    MIN_COUNT,
    SIZES,
    ModelOffer,
    ModelSpec,
    ModelTable,
)
from bot.core.policy import Defaults, Limits
from bot.core.routing import Refs

# Phones turn "--" into an em or en dash; accept those too, and a single dash before a name
# only an option has ("-ar 16:9"; "-n" could be prose).
_FLAG = re.compile(r"(?<!\S)(--|—|–|-)([A-Za-z][A-Za-z-]*)(?:=(\S*))?")
_FLAG_FIELDS = {
    "ar": "aspect_ratio",
    "aspect": "aspect_ratio",
    "aspect-ratio": "aspect_ratio",
    "ratio": "aspect_ratio",
    "model": "model",
    "m": "model",
    "count": "count",
    "n": "count",
    "seed": "seed",
    "size": "size",
    "res": "size",
    "resolution": "size",
}
_SINGLE_DASH = frozenset(name for name in _FLAG_FIELDS if len(name) > 1)
_RATIO_WORDS = {"landscape": "16:9", "portrait": "9:16", "square": "1:1", "wide": "16:9"}
# What people type between a ratio's sides: 16x9, 16×9, 16/9, 16;9, 16-9.
_RATIO_SIDES = re.compile(r"\s*[:x×/;\-]\s*")


@dataclass(frozen=True)
class Options:
    """What the user asked for, not yet checked (text as typed, or a slash command's values)."""

    model: str | None = None
    aspect_ratio: str | None = None
    count: str | int | None = None
    seed: str | int | None = None
    size: str | None = None

    def overridden_by(self, other: Options) -> Options:
        return replace(self, **{k: v for k, v in vars(other).items() if v is not None})


@dataclass(frozen=True)
class Resolved:
    prompt: str
    model: ModelSpec
    aspect_ratio: str
    count: int
    seed: int
    size: str = "1K"
    fixed_seed: bool = False


def split_flags(text: str) -> tuple[str, Options]:
    """``"a fox --ar 16:9 --model=pro"`` → ``("a fox", Options(model="pro", ...))``."""
    values: dict[str, str] = {}
    kept: list[str] = []
    pos = 0
    while (match := _FLAG.search(text, pos)) is not None:
        name = match[2].lower()
        if match[1] == "-" and name not in _SINGLE_DASH:
            kept.append(text[pos : match.end()])  # a word with a dash, not an option
            pos = match.end()
            continue
        kept.append(text[pos : match.start()])
        shown = f"--{match[2]}"
        field = _FLAG_FIELDS.get(name)
        if field is None:
            raise InvalidInput(option_texts.unknown_option(shown, _closest_flag(name)))
        value = match[3]
        end = match.end()
        if value is None:
            following = re.match(r"\s+(?!--|—|–)(\S+)", text[end:])
            if following is None:
                raise InvalidInput(option_texts.option_needs_value(shown))
            value = following[1]
            end += following.end()
        if not value:
            raise InvalidInput(option_texts.option_needs_value(shown))
        values[field] = value
        pos = end
    kept.append(text[pos:])
    prompt = " ".join("".join(kept).split())
    return prompt, Options(**values)


def _closest_flag(name: str) -> str | None:
    """``--model`` for ``--modle``: the known option a typo is most likely to mean."""
    found = difflib.get_close_matches(name, _SINGLE_DASH, n=1, cutoff=0.75)
    return f"--{found[0]}" if found else None


def resolve(
    prompt: str,
    options: Options,
    settings: UserSettings,
    *,
    refs: Refs,
    table: ModelTable,
    pictures: frozenset[str],
    defaults: Defaults,
    limits: Limits,
    rng: random.Random | None = None,
    naming: texts.Naming = texts.FLAGS_NAMING,
) -> Resolved:
    """Check what the user asked; raise ``InvalidInput`` with one sentence at the first fault
    (naming options as the user's platform does). ``pictures``: the roads that take pictures a
    user sends."""
    prompt = prompt.strip()
    if not prompt:
        raise InvalidInput(texts.PROMPT_EMPTY)
    if len(prompt) > limits.max_prompt_chars:
        raise InvalidInput(option_texts.prompt_too_long(len(prompt), limits.max_prompt_chars))

    model = _model(options.model, settings.model, table)
    offers = routing.by_kind(model, refs, pictures)
    if not offers:
        raise InvalidInput(_unusable(model, refs, table, pictures, naming))
    if not (fitting := routing.by_count(offers, refs)):
        limit = max(o.max_references for o in offers)
        raise InvalidInput(option_texts.too_many_references(refs.total, model.id, limit))
    offers = fitting

    if options.aspect_ratio is not None:
        ratio = normalise_ratio(options.aspect_ratio)
        if ratio == AUTO and not refs.total:
            raise InvalidInput(option_texts.auto_needs_reference(naming))
        if not routing.by_ratio(offers, ratio, refs):
            if ratio == AUTO:
                raise InvalidInput(option_texts.auto_not_supported(model.id, table, naming))
            ratios = list(dict.fromkeys(r for o in offers for r in o.aspect_ratios))
            closest = closest_ratio(ratio, ratios)
            raise InvalidInput(option_texts.bad_ratio(options.aspect_ratio, ratios, closest))
    else:
        ratio = next(
            r
            for r in (settings.aspect_ratio, defaults.aspect_ratio, offers[0].aspect_ratios[0])
            if r is not None and routing.by_ratio(offers, r, refs)
        )
    offers = routing.by_ratio(offers, ratio, refs)

    size = _size(options.size, offers, model)
    offers = routing.by_size(offers, size)
    count = parse_count(options.count) if options.count is not None else None
    count = count or settings.count or defaults.count
    if not routing.by_count_of_images(offers, count):
        raise InvalidInput(option_texts.too_many_images(model.id, max(o.max_count for o in offers)))

    if options.seed is not None:
        seed = _integer(options.seed, 0, MAX_SEED, option_texts.bad_seed)
        if not routing.by_seed(routing.by_count_of_images(offers, count), fixed=True):
            raise InvalidInput(option_texts.seed_not_supported(model.id, naming))
    else:
        seed = new_seed(rng)
    return Resolved(prompt, model, ratio, count, seed, size, fixed_seed=options.seed is not None)


def parse_count(raw: str | int) -> int:
    """Images per prompt, as typed or chosen; ``InvalidInput`` outside the range."""
    return _integer(raw, MIN_COUNT, MAX_COUNT, option_texts.bad_count)


def new_seed(rng: random.Random | None = None) -> int:
    return (rng or random).randint(0, MAX_SEED)


def normalise_ratio(raw: str) -> str:
    value = raw.strip().lower()
    return _RATIO_WORDS.get(value) or _RATIO_SIDES.sub(":", value)


def closest_ratio(ratio: str, allowed: Sequence[str]) -> str | None:
    """The allowed ratio nearest in shape to ``ratio`` ("16:10" → "16:9"), if it reads as one."""
    shape = _shape(ratio)
    shapes = {r: s for r in allowed if (s := _shape(r)) is not None}
    if shape is None or not shapes:
        return None
    return min(shapes, key=lambda r: abs(math.log(shapes[r] / shape)))


def _shape(ratio: str) -> float | None:
    match = re.fullmatch(r"(\d{1,4}(?:\.\d{1,3})?):(\d{1,4}(?:\.\d{1,3})?)", ratio)
    if match is None or not float(match[1]) or not float(match[2]):
        return None
    return float(match[1]) / float(match[2])


def _model(explicit: str | None, saved: str | None, table: ModelTable) -> ModelSpec:
    if explicit is not None:
        spec = table.resolve(explicit)
        if spec is None:
            raise InvalidInput(option_texts.unknown_model(explicit, table))
        return spec
    return (table.resolve(saved) if saved else None) or table.default


def _size(raw: str | None, offers: list[ModelOffer], model: ModelSpec) -> str:
    """The size asked for (1K unless told), if a road serving the rest renders at it."""
    if raw is None:
        return SIZES[0] if routing.by_size(offers, SIZES[0]) else offers[0].sizes[0]
    size = raw.strip().upper()
    if size not in SIZES:
        raise InvalidInput(option_texts.bad_size(raw))
    if not routing.by_size(offers, size):
        sizes = [s for s in SIZES if routing.by_size(offers, s)]
        raise InvalidInput(option_texts.size_not_offered(model.id, sizes))
    return size


def _unusable(
    model: ModelSpec,
    refs: Refs,
    table: ModelTable,
    pictures: frozenset[str],
    naming: texts.Naming,
) -> str:
    """Why no road serving ``model`` can take these references."""
    held_by = refs.held_by
    if held_by is not None:
        if refs.uploads and held_by not in pictures:
            return texts.CANNOT_MIX_REFERENCES
        there = [m.id for m in table.models if m.offer(held_by) is not None]
        return (
            option_texts.reference_needs_model(there, naming)
            if there
            else texts.REFERENCE_NOT_USABLE
        )
    able = [m.id for m in table.models if any(o.provider in pictures for o in m.offers)]
    return (
        option_texts.pictures_need_model(model.id, able, naming)
        if able
        else texts.PICTURES_NOT_TAKEN
    )


def _integer(raw: str | int, low: int, high: int, message: Callable[[object], str]) -> int:
    try:
        value = raw if isinstance(raw, int) else int(str(raw).strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvalidInput(message(raw))
    return value
