"""The model table: every fact about the upstream's image models, as data.

The upstream renames and retires models under us (Imagen left Flow in July 2026), so nothing else
in the code names a model: it asks this table. An operator can override or extend it with a TOML
file (``BOT_MODELS_FILE``) without a code change::

    default = "nano-banana-2"           # optional: the default model id

    [models.nano-banana-pro]            # override some fields of a known model
    max_references = 8

    [models.nano-banana-3]              # or add a new one
    label = "Nano Banana 3"
    aliases = ["3", "nb3"]
    max_references = 10
    aspect_ratios = ["16:9", "4:3", "1:1", "3:4", "9:16"]
    auto_aspect = true
    upscale = ["2k", "4k"]
    moderation_fallback = "nano-banana-2"
    characters = true                   # takes Flow characters (character_1…)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

BASE_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16")
AUTO = "auto"
# What one request may ask of any model: images per prompt, seeds, upscale sizes.
MIN_COUNT, MAX_COUNT = 1, 4
MAX_SEED = 2**31 - 1
UPSCALE_SIZES = ("2k", "4k")


@dataclass(frozen=True)
class ModelSpec:
    """One upstream model and what it can do."""

    id: str
    label: str
    aliases: tuple[str, ...] = ()
    max_references: int = 10
    aspect_ratios: tuple[str, ...] = BASE_RATIOS
    auto_aspect: bool = False
    upscale: tuple[str, ...] = ()
    moderation_fallback: str | None = None
    characters: bool = True  # takes character_1…: Imagen (now the lite model's alias) doesn't

    @property
    def can_upscale(self) -> bool:
        return bool(self.upscale)

    def accepts_ratio(self, ratio: str, *, with_references: bool) -> bool:
        if ratio == AUTO:
            return self.auto_aspect and with_references
        return ratio in self.aspect_ratios


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="nano-banana-2-lite",
        label="Nano Banana 2 Lite",
        # imagen-4 is the deprecated alias the upstream kept when Imagen left Flow (July 2026).
        aliases=("lite", "2-lite", "flash-lite", "imagen-4", "imagen"),
        moderation_fallback="nano-banana-2",
        characters=False,
    ),
    ModelSpec(
        id="nano-banana-2",
        label="Nano Banana 2",
        aliases=("2", "nb2", "nano-banana", "banana", "flash"),
        auto_aspect=True,
        upscale=UPSCALE_SIZES,
        moderation_fallback="nano-banana-2-lite",
    ),
    ModelSpec(
        id="nano-banana-pro",
        label="Nano Banana Pro",
        aliases=("pro", "nbp", "banana-pro"),
        auto_aspect=True,
        upscale=UPSCALE_SIZES,
        moderation_fallback="nano-banana-2",
    ),
)


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

    def all_ratios(self) -> list[str]:
        seen: dict[str, None] = {}
        for spec in self.models:
            seen.update(dict.fromkeys(spec.aspect_ratios))
            if spec.auto_aspect:
                seen[AUTO] = None
        return list(seen)

    @classmethod
    def builtin(cls) -> ModelTable:
        return cls(DEFAULT_MODELS, DEFAULT_MODELS[0].id)

    @classmethod
    def load(cls, path: Path | None) -> ModelTable:
        """The built-in table, with the operator's TOML file (if any) applied on top."""
        if path is None:
            return cls.builtin()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ModelTableError(f"cannot read {path}: {exc}") from exc
        return cls.builtin().merged(data)

    def merged(self, data: Mapping[str, Any]) -> ModelTable:
        by_id = {m.id: m for m in self.models}
        entries = data.get("models", {})
        if not isinstance(entries, Mapping):
            raise ModelTableError("[models] must be a table of model ids")
        for model_id, values in entries.items():
            if not isinstance(values, Mapping):
                raise ModelTableError(f"[models.{model_id}] must be a table")
            changes = _spec_fields(model_id, values)
            if model_id in by_id:
                by_id[model_id] = replace(by_id[model_id], **changes)
            else:
                by_id[model_id] = ModelSpec(id=model_id, **{"label": model_id, **changes})
        default = data.get("default", self.default_id)
        if not isinstance(default, str):
            raise ModelTableError("default must be a model id")
        return ModelTable(tuple(by_id.values()), default)


_TUPLE_FIELDS = {"aliases", "aspect_ratios", "upscale"}
_FIELD_TYPES = {f.name: f.type for f in fields(ModelSpec)}


def _spec_fields(model_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "id" or key not in _FIELD_TYPES:
            raise ModelTableError(f"[models.{model_id}] has an unknown field {key!r}")
        if key in _TUPLE_FIELDS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ModelTableError(f"[models.{model_id}] {key} must be a list of strings")
            if key == "aspect_ratios" and not value:
                raise ModelTableError(f"[models.{model_id}] aspect_ratios must not be empty")
            value = tuple(value)
        elif key == "max_references":
            if not isinstance(value, int) or not 0 <= value <= 10:
                raise ModelTableError(f"[models.{model_id}] max_references must be 0–10")
        elif key in ("auto_aspect", "characters"):
            if not isinstance(value, bool):
                raise ModelTableError(f"[models.{model_id}] {key} must be true or false")
        elif not isinstance(value, str):
            raise ModelTableError(f"[models.{model_id}] {key} must be a string")
        out[key] = value
    return out
