"""What a prompt's options and images, and a user's limits, are refused with, before anything
is uploaded: each sentence says the limit and what to do (``Naming`` words an option as the
platform writes it). The other shared sentences are in ``texts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.core.i18n import Text, _, _n, join
from bot.core.models_table import (
    AUTO,
    MAX_COUNT,
    MAX_SEED,
    MIN_COUNT,
    SIZES,
    ModelSpec,
    ModelTable,
)
from bot.core.texts import FLAGS_HELP, FLAGS_NAMING, Naming, model_names, quote


def prompt_too_long(length: int, limit: int) -> Text:
    return _(
        "Your prompt is {length} characters long; the limit is {limit}. Please shorten it.",
        length=length,
        limit=limit,
    )


def unknown_model(name: str, table: ModelTable) -> Text:
    return _(
        "There is no model called “{name}”. Choose one of: {models}.",
        name=quote(name),
        models=model_names(table),
    )


def bad_count(raw: object) -> Text:
    return _(
        "The count must be a whole number from {low} to {high}, not “{value}”.",
        low=MIN_COUNT,
        high=MAX_COUNT,
        value=quote(raw),
    )


def bad_seed(raw: object) -> Text:
    return _(
        "The seed must be a whole number from 0 to {high}, not “{value}”.",
        high=MAX_SEED,
        value=quote(raw),
    )


def bad_ratio(raw: str, allowed: Sequence[str], closest: str | None = None) -> Text:
    if closest:
        return _(
            "“{value}” isn't an aspect ratio this model makes. The closest is {closest}. "
            "Use one of: {ratios}.",
            value=quote(raw),
            closest=closest,
            ratios=join(", ", allowed),
        )
    return _(
        "“{value}” isn't an aspect ratio this model makes. Use one of: {ratios}.",
        value=quote(raw),
        ratios=join(", ", allowed),
    )


def auto_needs_reference(how: Naming = FLAGS_NAMING) -> Text:
    return _(
        "{choice} takes its shape from a reference image: attach an image or pick a ratio.",
        choice=how.choice("aspect_ratio", AUTO),
    )


def _either(models: Sequence[str]) -> str:
    """Model names as alternatives ("pro or lite"); the names themselves stay as they are."""
    if not models:
        return _("another model")
    if len(models) == 1:
        return models[0]
    return _("{first} or {second}", first=join(", ", models[:-1]), second=models[-1])


def auto_not_supported(model: str, table: ModelTable, how: Naming = FLAGS_NAMING) -> Text:
    able = [m.id for m in table.models if m.auto_aspect]
    return _(
        "{model} can't use {choice}. Pick a ratio, or use {others}.",
        model=model,
        choice=how.choice("aspect_ratio", AUTO),
        others=_either(able),
    )


def too_many_references(count: int, model: str, limit: int) -> Text:
    if limit == 0:
        return _(
            "{model} doesn't take reference images. Remove them or pick another model.",
            model=model,
        )
    return _n(
        "You sent {count} reference image; {model} takes at most {limit}. Please send fewer.",
        "You sent {count} reference images; {model} takes at most {limit}. Please send fewer.",
        count,
        count=count,
        model=model,
        limit=limit,
    )


def pictures_need_model(model: str, able: Sequence[str], how: Naming = FLAGS_NAMING) -> Text:
    return _(
        "{model} can't use pictures you send here. Use {models} ({option}), or leave the "
        "pictures out.",
        model=model,
        models=_either(able),
        option=how.option("model"),
    )


def reference_needs_model(able: Sequence[str], how: Naming = FLAGS_NAMING) -> Text:
    return _(
        "That image can only be used with {models}: choose one with {option}.",
        models=_either(able),
        option=how.option("model"),
    )


def bad_size(raw: object) -> Text:
    return _(
        "“{value}” isn't an image size. Use one of: {sizes}.",
        value=quote(raw),
        sizes=join(", ", SIZES),
    )


def size_not_offered(model: str, sizes: Sequence[str]) -> Text:
    return _(
        "{model} renders at {sizes} here. Choose one of those with --size.",
        model=model,
        sizes=join(", ", sizes),
    )


def seed_not_supported(model: str, how: Naming = FLAGS_NAMING) -> Text:
    return _(
        "{model} can't take a seed here. Leave out {option}, or choose another model.",
        model=model,
        option=how.option("seed"),
    )


def too_many_images(model: str, limit: int) -> Text:
    return _n(
        "{model} makes at most {limit} image at a time here. Use --count {limit}.",
        "{model} makes at most {limit} images at a time here. Use --count {limit} or fewer.",
        limit,
        model=model,
        limit=limit,
    )


def unknown_option(flag: str, suggestion: str | None = None) -> Text:
    if suggestion:
        return _(
            "I don't know the option {flag}. Did you mean {suggestion}?",
            flag=quote(flag),
            suggestion=suggestion,
        )
    return _(
        "I don't know the option {flag}. The options are {options}.",
        flag=quote(flag),
        options=FLAGS_HELP,
    )


def option_needs_value(flag: str) -> Text:
    return _(
        "The option {flag} needs a value, e.g. {options}.", flag=quote(flag), options=FLAGS_HELP
    )


def image_too_large(size: int, limit: int) -> Text:
    return _(
        "That image is {size:.1f} MB; the limit is {limit:.0f} MB. Please send a smaller one.",
        size=size / 2**20,
        limit=limit / 2**20,
    )


def image_too_many_pixels(width: int, height: int, limit: int) -> Text:
    if width and height:
        return _(
            "That image is too large ({width}×{height}); the limit is {limit:.0f} megapixels. "
            "Please send a smaller one.",
            width=width,
            height=height,
            limit=limit / 1e6,
        )
    return _(
        "That image is too large; the limit is {limit:.0f} megapixels. Please send a smaller one.",
        limit=limit / 1e6,
    )


def image_too_long(width: int, height: int, limit: int) -> Text:
    return _(
        "That image is {width}×{height} pixels; no side may be longer than {limit} pixels. "
        "Please crop or resize it.",
        width=width,
        height=height,
        limit=limit,
    )


def queue_full(limit: int) -> Text:
    return _n(
        "You already have {limit} job waiting. Please wait for it to finish.",
        "You already have {limit} jobs waiting. Please wait for some to finish.",
        limit,
        limit=limit,
    )


def daily_quota(limit: int) -> Text:
    return _n(
        "You've reached today's limit of {limit} image. It resets at midnight UTC.",
        "You've reached today's limit of {limit} images. It resets at midnight UTC.",
        limit,
        limit=limit,
    )


def cannot_upscale(model: str, table: ModelTable) -> Text:
    able = [m.id for m in table.models if m.can_upscale]
    return _(
        "Images from {model} can't be upscaled. Use {models}.", model=model, models=_either(able)
    )


def how_to_upscale(model: str, able: ModelSpec, how: Naming) -> Text:
    """Under a result without upscale buttons: how to get them."""
    return _(
        "{model} can't upscale; for ⬆️ Upscale buttons, use {choice}.",
        model=model,
        choice=how.model(able),
    )


def bad_resolution(resolution: str, allowed: Iterable[str]) -> Text:
    return _(
        "Upscaling to {resolution} isn't available. Choose one of: {resolutions}.",
        resolution=quote(resolution),
        resolutions=join(", ", allowed),
    )


def bad_language(value: str, allowed: Iterable[str]) -> Text:
    return _(
        "I don't speak {language} yet. Choose one of: {languages}.",
        language=quote(value),
        languages=join(", ", allowed),
    )
