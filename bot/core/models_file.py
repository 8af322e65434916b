"""The operator's model file (``BOT_MODELS_FILE``): TOML applied on top of the built-in table
(``bot.core.models_table``), checked field by field, each fault one sentence naming its place::

    default = "nano-banana-2"           # optional: the default model id

    [models.nano-banana-pro]            # override some fields of a known model
    max_references = 8                  # an offer's field here applies to each of its roads

    [models.nano-banana-pro.gemini]     # or to one road's offer
    provider_model = "gemini-3-pro-image"
    prices = { "1K" = 0.134, "4K" = 0.24 }

    [models.nano-banana-1.wireflow]
    offered = false                     # this road no longer serves it

    [models.nano-banana-3]              # or add a model: without a road's table it is a Flow
    label = "Nano Banana 3"             # model, as every model was before there were others
    aliases = ["3", "nb3"]
    max_references = 10
    aspect_ratios = ["16:9", "4:3", "1:1", "3:4", "9:16"]
    auto_aspect = true
    upscale = ["2k", "4k"]
    moderation_fallback = "nano-banana-2"

    characters = false                  # Flow's characters (character_1…) not taken

    [models.nano-banana-3.gemini]       # and the roads that serve it
    provider_model = "gemini-4-flash-image"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from bot.core.models_table import (
    MAX_COUNT,
    MIN_COUNT,
    NEW_OFFER,
    PROVIDERS,
    SIZES,
    UPSCALE_SIZES,
    ModelOffer,
    ModelSpec,
    ModelTable,
    ModelTableError,
)

_SPEC_FIELDS = {"label", "aliases", "moderation_fallback"}
_OFFER_FIELDS = {f.name for f in fields(ModelOffer)} - {"model", "provider"} | {"offered"}


def load(path: Path | None) -> ModelTable:
    """The built-in table, with the operator's TOML file (if any) applied on top."""
    if path is None:
        return ModelTable.builtin()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelTableError(f"cannot read {path}: {exc}") from exc
    return merged(ModelTable.builtin(), data)


def merged(table: ModelTable, data: Mapping[str, Any]) -> ModelTable:
    """``table`` with the file's ``data`` applied."""
    by_id = {m.id: m for m in table.models}
    entries = data.get("models", {})
    if not isinstance(entries, Mapping):
        raise ModelTableError("[models] must be a table of model ids")
    for model_id, values in entries.items():
        if not isinstance(values, Mapping):
            raise ModelTableError(f"[models.{model_id}] must be a table")
        by_id[model_id] = _spec(model_id, by_id.get(model_id), values)
    default = data.get("default", table.default_id)
    if not isinstance(default, str):
        raise ModelTableError("default must be a model id")
    return ModelTable(tuple(by_id.values()), default)


def _spec(model_id: str, spec: ModelSpec | None, values: Mapping[str, Any]) -> ModelSpec:
    where = f"[models.{model_id}]"
    own = {k: v for k, v in values.items() if k not in PROVIDERS}
    for key in own.keys() - _SPEC_FIELDS - _OFFER_FIELDS:
        raise ModelTableError(f"{where} has an unknown field {key!r}")
    named: dict[str, Any] = {}
    for key in own.keys() & _SPEC_FIELDS:
        if key == "aliases":
            named[key] = _strings(where, key, own[key])
        elif not isinstance(own[key], str):
            raise ModelTableError(f"{where} {key} must be a string")
        else:
            named[key] = own[key]
    everywhere = {k: v for k, v in own.items() if k not in _SPEC_FIELDS}
    spec = spec or ModelSpec(id=model_id, label=model_id)
    existing = {o.provider: o for o in spec.offers}
    roads: dict[str, Mapping[str, Any]] = {}
    for provider in (p for p in PROVIDERS if p in values):
        if not isinstance(values[provider], Mapping):
            raise ModelTableError(f"{where} {provider} must be a table")
        roads[provider] = values[provider]
    if not existing and not roads:
        roads["flow"] = {}  # a model added as it was before there were other roads
    offers = []
    for provider in PROVIDERS:
        if provider in roads:
            changes, place = {**everywhere, **roads[provider]}, f"[models.{model_id}.{provider}]"
        elif provider in existing:
            changes, place = everywhere, where
        else:
            continue
        offer = _offer(model_id, provider, existing.get(provider), changes, place)
        if offer is not None:
            offers.append(offer)
    return replace(spec, **named, offers=tuple(offers))


def _offer(
    model_id: str, provider: str, offer: ModelOffer | None, values: Mapping[str, Any], where: str
) -> ModelOffer | None:
    """``offer`` with ``values`` applied (a new offer from the road's defaults); None if the
    values say the road no longer serves the model."""
    for key in values.keys() - _OFFER_FIELDS:
        raise ModelTableError(f"{where} has an unknown field {key!r}")
    offered = values.get("offered", True)
    if not isinstance(offered, bool):
        raise ModelTableError(f"{where} offered must be true or false")
    if not offered:
        return None
    changes = {k: _value(where, k, v, provider) for k, v in values.items() if k != "offered"}
    if offer is None:
        base = {"model": model_id, "provider_model": model_id, "provider": provider}
        return ModelOffer(**{**base, **NEW_OFFER[provider], **changes})
    return replace(offer, **changes)


def _value(where: str, key: str, value: Any, provider: str) -> Any:
    if key in ("aspect_ratios", "sizes", "upscale"):
        items = _strings(where, key, value)
        if key in ("aspect_ratios", "sizes") and not items:
            raise ModelTableError(f"{where} {key} must not be empty")
        allowed = {"sizes": SIZES, "upscale": UPSCALE_SIZES}.get(key)
        if allowed is not None and not set(items) <= set(allowed):
            raise ModelTableError(f"{where} {key} must be among {', '.join(allowed)}")
        return items
    if key in ("seed", "auto_aspect", "characters"):
        if not isinstance(value, bool):
            raise ModelTableError(f"{where} {key} must be true or false")
        if key == "characters" and value and provider != "flow":
            raise ModelTableError(f"{where} characters: only Flow has characters")
        return value
    if key == "provider_model":
        if not isinstance(value, str) or not value:
            raise ModelTableError(f"{where} {key} must be a string")
        return value
    if key == "prices":
        return _prices(where, value)
    bounds = {
        "max_references": (0, NEW_OFFER[provider]["max_references"]),
        "images_per_call": (1, MAX_COUNT),
    }
    low, high = bounds.get(key, (MIN_COUNT, MAX_COUNT))
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ModelTableError(f"{where} {key} must be {low}–{high}")
    return value


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelTableError(f"{where} {key} must be a list of strings")
    return tuple(value)


def _prices(where: str, value: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Mapping):
        raise ModelTableError(f'{where} prices must be a table like {{ "1K" = 0.04 }}')
    out: list[tuple[str, float]] = []
    for size, price in value.items():
        if size not in SIZES or not isinstance(price, int | float) or isinstance(price, bool):
            raise ModelTableError(f"{where} prices: {size!r} must be a size with a number")
        out.append((size, float(price)))
    return tuple(out)
