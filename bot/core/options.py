"""From what a user typed to a checked ``GenerationRequest``.

Options arrive as inline flags in the prompt (``--ar 16:9 --model pro``) or as structured values
from a slash command; explicit values win over the user's settings, which win over the bot's
defaults. Only what the user said explicitly can be refused: a saved default that doesn't fit
this request (``auto`` without a reference) quietly gives way to the bot's default.
"""

from __future__ import annotations

import difflib
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.core import texts
from bot.core.domain import UserSettings
from bot.core.errors import InvalidInput
from bot.core.models_table import AUTO, MAX_COUNT, MAX_SEED, MIN_COUNT, ModelSpec, ModelTable
from bot.core.policy import Defaults, Limits

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

    def overridden_by(self, other: Options) -> Options:
        return replace(self, **{k: v for k, v in vars(other).items() if v is not None})


@dataclass(frozen=True)
class Resolved:
    prompt: str
    model: ModelSpec
    aspect_ratio: str
    count: int
    seed: int


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
            raise InvalidInput(texts.unknown_option(shown, _closest_flag(name)))
        value = match[3]
        end = match.end()
        if value is None:
            following = re.match(r"\s+(?!--|—|–)(\S+)", text[end:])
            if following is None:
                raise InvalidInput(texts.option_needs_value(shown))
            value = following[1]
            end += following.end()
        if not value:
            raise InvalidInput(texts.option_needs_value(shown))
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
    reference_count: int,
    table: ModelTable,
    defaults: Defaults,
    limits: Limits,
    rng: random.Random | None = None,
    naming: texts.Naming = texts.FLAGS_NAMING,
) -> Resolved:
    """Check what the user asked; raise ``InvalidInput`` with one sentence at the first fault
    (naming options as the user's platform does)."""
    prompt = prompt.strip()
    if not prompt:
        raise InvalidInput(texts.PROMPT_EMPTY)
    if len(prompt) > limits.max_prompt_chars:
        raise InvalidInput(texts.prompt_too_long(len(prompt), limits.max_prompt_chars))

    model = _model(options.model, settings.model, table)
    if reference_count > model.max_references:
        raise InvalidInput(
            texts.too_many_references(reference_count, model.id, model.max_references)
        )

    with_refs = reference_count > 0
    if options.aspect_ratio is not None:
        ratio = normalise_ratio(options.aspect_ratio)
        if ratio == AUTO and not with_refs:
            raise InvalidInput(texts.auto_needs_reference(naming))
        if ratio == AUTO and not model.auto_aspect:
            raise InvalidInput(texts.auto_not_supported(model.id, table, naming))
        if not model.accepts_ratio(ratio, with_references=with_refs):
            closest = closest_ratio(ratio, model.aspect_ratios)
            raise InvalidInput(texts.bad_ratio(options.aspect_ratio, model.aspect_ratios, closest))
    else:
        ratio = next(
            r
            for r in (settings.aspect_ratio, defaults.aspect_ratio, model.aspect_ratios[0])
            if r is not None and model.accepts_ratio(r, with_references=with_refs)
        )

    if options.count is not None:
        count = parse_count(options.count)
    else:
        count = settings.count or defaults.count

    if options.seed is not None:
        seed = _integer(options.seed, 0, MAX_SEED, texts.bad_seed)
    else:
        seed = new_seed(rng)
    return Resolved(prompt, model, ratio, count, seed)


def parse_count(raw: str | int) -> int:
    """Images per prompt, as typed or chosen; ``InvalidInput`` outside the range."""
    return _integer(raw, MIN_COUNT, MAX_COUNT, texts.bad_count)


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
            raise InvalidInput(texts.unknown_model(explicit, table))
        return spec
    return (table.resolve(saved) if saved else None) or table.default


def _integer(raw: str | int, low: int, high: int, message: Callable[[object], str]) -> int:
    try:
        value = raw if isinstance(raw, int) else int(str(raw).strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvalidInput(message(raw))
    return value
