"""From what a user typed to a checked ``GenerationRequest``.

Options arrive as inline flags in the prompt (``--ar 16:9 --model pro``) or as structured values
from a slash command; explicit values win over the user's settings, which win over the bot's
defaults. Only what the user said explicitly can be refused: a saved default that doesn't fit
this request (``auto`` without a reference) quietly gives way to the bot's default.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.core import texts
from bot.core.domain import UserSettings
from bot.core.errors import InvalidInput
from bot.core.models_table import AUTO, MAX_COUNT, MAX_SEED, MIN_COUNT, ModelSpec, ModelTable
from bot.core.policy import Defaults, Limits

# Phones turn "--" into an em or en dash; accept those too.
_FLAG = re.compile(r"(?<!\S)(?:--|—|–)([A-Za-z][A-Za-z-]*)(?:=(\S*))?")
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
_RATIO_WORDS = {"landscape": "16:9", "portrait": "9:16", "square": "1:1", "wide": "16:9"}


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
        kept.append(text[pos : match.start()])
        name = match[1].lower()
        shown = f"--{match[1]}"
        field = _FLAG_FIELDS.get(name)
        if field is None:
            raise InvalidInput(texts.unknown_option(shown))
        value = match[2]
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
) -> Resolved:
    """Check what the user asked; raise ``InvalidInput`` with one sentence at the first fault."""
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
            raise InvalidInput(texts.auto_needs_reference())
        if ratio == AUTO and not model.auto_aspect:
            raise InvalidInput(texts.auto_not_supported(model.id, table))
        if not model.accepts_ratio(ratio, with_references=with_refs):
            raise InvalidInput(texts.bad_ratio(options.aspect_ratio, model.aspect_ratios))
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
    value = raw.strip().lower().replace("x", ":").replace("/", ":")
    return _RATIO_WORDS.get(value, value)


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
