"""The user settings, as one spec: each setting's name, title, choices and check.

Everything that shows or changes a user's defaults reads this: ``Service.update_settings``
checks and normalises with it, the /settings panels (Discord's menus, Telegram's keyboard, with
its short callback keys) list its choices, and the console's ``set NAME VALUE`` takes its names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core import i18n, option_texts
from bot.core.errors import InvalidInput
from bot.core.i18n import _, _n
from bot.core.models_table import MAX_COUNT, MIN_COUNT, UPSCALE_SIZES, ModelTable
from bot.core.options import normalise_ratio, parse_count
from bot.core.policy import Defaults


@dataclass(frozen=True)
class Choice:
    """One value a setting may take: ``label`` in a menu, ``short`` on a button."""

    value: str
    label: str
    short: str


@dataclass(frozen=True)
class Setting:
    name: str  # the ``UserSettings`` field, and the console's ``set NAME``
    key: str  # in Telegram's callback data, which holds at most 64 bytes
    title: str  # at the start of a line: "{setting}: {value}" ("Model: pro")
    choose: str  # the whole sentence that offers its choices ("Choose a model:")
    choices: Callable[[ModelTable], list[Choice]]
    default: Callable[[ModelTable, Defaults], str]  # the bot's own default
    clean: Callable[[str | int, ModelTable], str | int]  # or ``InvalidInput``
    by_label: bool = False  # a row shows its choice's label, not its value


def _models(table: ModelTable) -> list[Choice]:
    return [Choice(m.id, m.label, m.aliases[0] if m.aliases else m.id) for m in table.models]


def _model(value: str | int, table: ModelTable) -> str:
    spec = table.resolve(str(value))
    if spec is None:
        raise InvalidInput(option_texts.unknown_model(str(value), table))
    return spec.id


def _ratios(table: ModelTable) -> list[Choice]:
    return [Choice(r, r, r) for r in table.all_ratios()]


def _ratio(value: str | int, table: ModelTable) -> str:
    ratio = normalise_ratio(str(value))
    if ratio not in table.all_ratios():
        raise InvalidInput(option_texts.bad_ratio(str(value), table.all_ratios()))
    return ratio


def _counts(table: ModelTable) -> list[Choice]:
    return [
        Choice(str(n), _n("{count} image", "{count} images", n, count=n), str(n))
        for n in range(MIN_COUNT, MAX_COUNT + 1)
    ]


def _upscales(table: ModelTable) -> list[Choice]:
    return [Choice(size, _("upscale to {size}", size=size), size) for size in UPSCALE_SIZES]


def _upscale(value: str | int, table: ModelTable) -> str:
    size = str(value).lower()
    if size not in UPSCALE_SIZES:
        raise InvalidInput(option_texts.bad_resolution(str(value), UPSCALE_SIZES))
    return size


# The language setting's default: the one the user's app says (else BOT_DEFAULT_LANGUAGE).
AUTO = "auto"


def _languages(table: ModelTable) -> list[Choice]:
    automatic = Choice(AUTO, _("your app's language"), AUTO)
    return [automatic] + [Choice(code, i18n.NAMES[code], code) for code in i18n.LANGUAGES]


def _language(value: str | int, table: ModelTable) -> str:
    code = AUTO if str(value).lower() == AUTO else i18n.pick(str(value))
    if code is None:
        raise InvalidInput(option_texts.bad_language(str(value), (AUTO, *i18n.LANGUAGES)))
    return code


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "model",
        "m",
        _("Model"),
        _("Choose a model:"),
        _models,
        lambda table, _: table.default.id,
        _model,
    ),
    Setting(
        "aspect_ratio",
        "ar",
        _("Aspect ratio"),
        _("Choose an aspect ratio:"),
        _ratios,
        lambda _, defaults: defaults.aspect_ratio,
        _ratio,
    ),
    Setting(
        "count",
        "n",
        _("Images per prompt"),
        _("Choose how many images each prompt makes:"),
        _counts,
        lambda _, defaults: str(defaults.count),
        lambda value, _: parse_count(value),
    ),
    Setting(
        "upscale_resolution",
        "up",
        _("Upscale to"),
        _("Choose the size an upscale makes:"),
        _upscales,
        lambda _, defaults: defaults.upscale_resolution,
        _upscale,
    ),
    Setting(
        "language",
        "lang",
        _("Language"),
        _("Choose a language:"),
        _languages,
        lambda _, __: AUTO,
        _language,
        by_label=True,
    ),
)
NAMES = tuple(s.name for s in SETTINGS)
_BY_NAME = {s.name: s for s in SETTINGS}
_BY_KEY = {s.key: s for s in SETTINGS}


def named(name: str) -> Setting | None:
    return _BY_NAME.get(name)


def keyed(key: str) -> Setting | None:
    """The setting a Telegram callback key stands for."""
    return _BY_KEY.get(key)


def cleaned(changes: Mapping[str, str | int | None], table: ModelTable) -> dict[str, Any]:
    """``changes`` checked and normalised (``None`` resets a setting to the bot's default);
    ``InvalidInput`` at the first bad value."""
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        setting = named(name)
        if setting is None:
            raise ValueError(f"unknown setting {name!r}")
        clean[name] = None if value is None else setting.clean(value, table)
    return clean
