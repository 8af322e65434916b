"""Sentences in the reader's language (gettext, standard library only).

A sentence is marked where it is written: ``_("⏳ Queued — {ahead} ahead of you.", ahead=2)``,
or ``_n(singular, plural, n, **params)`` where a count decides the words. Either makes a
:class:`Text`: the message (its English words are gettext's msgid) and its parameters, rendered
in a language only when someone reads it, by ``language.render(text)``. A Text also *is* its
English rendering (a ``str``), so code that only passes sentences along needs no change; what
reaches a reader should go through the reader's :class:`Language` (a ``str`` that is not a Text,
such as a model name or a prompt, renders as itself).

The store keeps :func:`to_data` (message and parameters), never the words, so a failure stored
today is told tomorrow in the language of whoever reads it. The catalogues are the ``.po`` files
under ``bot/locales``, read at startup by ``bot.catalogues`` (Babel) and handed over by
:func:`install`; see ``bot/locales/TRANSLATING.md``.

Who reads is known where they wrote or where their answer is delivered; there the front end says
so with :func:`reading` (as Django's ``translation.override``), and whatever it sends meanwhile is
rendered by :func:`reader`, the language of the reader at hand.
"""

from __future__ import annotations

import gettext
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# The languages the bot ships, the default first. One place: the catalogue check, the tooling
# and the language picker read this. A language joins when its catalogue is complete.
LANGUAGES = ("en", "es", "pt_BR", "fr", "ja", "zh_Hans", "de", "ru")
DEFAULT = LANGUAGES[0]

# Each language by its own name, for the choice in /settings (one entry ahead of LANGUAGES).
NAMES = {
    "en": "English",
    "es": "Español",
    "pt_BR": "Português (Brasil)",
    "ru": "Русский",
    "de": "Deutsch",
    "fr": "Français",
    "ja": "日本語",
    "zh_Hans": "简体中文",
}
# Platform tags that name a shipped language other than by its own code (Discord sends
# ``zh-CN``, Telegram may send ``zh-hans``); Traditional Chinese is not Simplified.
_ALIASES = {"zh_cn": "zh_Hans", "zh_sg": "zh_Hans", "zh_hans": "zh_Hans", "pt": "pt_BR"}


class Text(str):
    """A sentence not yet rendered: its message, parameters, and (as a ``str``) its English."""

    msgid: str
    plural: str | None
    n: int | None
    params: Mapping[str, object]

    def __new__(
        cls,
        msgid: str,
        plural: str | None = None,
        n: int | None = None,
        params: Mapping[str, object] | None = None,
    ) -> Text:
        values = dict(params or {})
        self = super().__new__(cls, _render(gettext.NullTranslations(), msgid, plural, n, values))
        self.msgid, self.plural, self.n, self.params = msgid, plural, n, values
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Text, (self.msgid, self.plural, self.n, dict(self.params)))


class Joined(Text):
    """Sentences (or verbatim strings) joined by ``sep``: a layout, not a message, so it is not
    in the catalogue; each part renders in the reader's language. ``sep`` ", " is a list's
    separator: the reader's language's own (Japanese "、")."""

    sep: str
    parts: tuple[str, ...]

    def __new__(cls, sep: str, parts: Iterable[str]) -> Joined:
        items = tuple(parts)
        self = str.__new__(cls, sep.join(items))
        self.msgid, self.plural, self.n, self.params = "", None, None, {}
        self.sep, self.parts = sep, items
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Joined, (self.sep, self.parts))


def _(msgid: str, /, **params: object) -> Text:
    """Mark a sentence (Babel extracts the first argument) and keep its named parameters."""
    return Text(msgid, params=params)


def _n(singular: str, plural: str, n: int, /, **params: object) -> Text:
    """Mark a sentence whose words depend on the count ``n`` (each language's plural rule)."""
    return Text(singular, plural, n, params)


def join(sep: str, parts: Iterable[str]) -> Text:
    return Joined(sep, parts)


class _Params(dict[str, object]):
    # A placeholder the catalogue has and the code doesn't give shows as itself, not a crash
    # at delivery (the catalogue check fails in CI on it first).
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _render(
    catalogue: gettext.NullTranslations,
    msgid: str,
    plural: str | None,
    n: int | None,
    params: Mapping[str, object],
    comma: str = ", ",
) -> str:
    if plural is None:
        words = catalogue.gettext(msgid)
    else:
        words = catalogue.ngettext(msgid, plural, n or 0)
    if not params:
        return words
    values = _Params({k: _in(catalogue, v, comma) for k, v in params.items()})
    return words.format_map(values)


def _in(catalogue: gettext.NullTranslations, value: object, comma: str = ", ") -> object:
    if isinstance(value, Joined):
        sep = comma if value.sep == ", " else value.sep
        return sep.join(str(_in(catalogue, part, comma)) for part in value.parts)
    if isinstance(value, Text):
        return _render(catalogue, value.msgid, value.plural, value.n, value.params, comma)
    return value


def _english_day(seconds: float) -> str:
    return time.strftime("%d %b", time.gmtime(seconds))


@dataclass(frozen=True)
class Catalogue:
    """What a language needs besides its sentences: a UTC day as its readers write it short
    (``23 nov``, ``23 нояб.``, ``11月23日``), and how it separates the items of a list."""

    translations: gettext.NullTranslations
    day: Callable[[float], str] = _english_day
    comma: str = ", "


class Language:
    """A reader's language: renders a :class:`Text` in it (anything else as it is)."""

    def __init__(self, code: str, catalogue: Catalogue) -> None:
        self.code = code
        self._catalogue = catalogue.translations
        self._day = catalogue.day
        self.comma = catalogue.comma

    def render(self, text: str) -> str:
        return str(_in(self._catalogue, text, self.comma))

    def day(self, seconds: float) -> str:
        """The UTC day of the epoch time ``seconds``, short: "23 Nov"."""
        return self._day(seconds)

    def __repr__(self) -> str:
        return f"Language({self.code!r})"


_catalogues: dict[str, Catalogue] = {}
_languages: dict[str, Language] = {}


def install(catalogues: Mapping[str, Catalogue]) -> None:
    """The translations of the shipped languages, by code (``bot.catalogues`` reads them)."""
    _catalogues.clear()
    _catalogues.update(catalogues)
    _languages.clear()


def language(code: str) -> Language:
    """The shipped language ``code`` (see :func:`pick` for a platform's tag); English for any
    other, and for one whose catalogue was not installed (said once in the log)."""
    found = _languages.get(code)
    if found is not None:
        return found
    if code != DEFAULT and code in LANGUAGES:
        catalogue = _catalogues.get(code)
        if catalogue is None:
            log.warning("no catalogue installed for %s: told in English", code)
            found = ENGLISH
        else:
            found = Language(code, catalogue)
    else:
        found = ENGLISH
    _languages[code] = found
    return found


ENGLISH = Language(DEFAULT, Catalogue(gettext.NullTranslations()))
_reader: ContextVar[Language | None] = ContextVar("reader", default=None)
_fallback = [ENGLISH]


def set_default(code: str) -> None:
    """The operator's language (``BOT_DEFAULT_LANGUAGE``): for a reader nobody knows."""
    _fallback[0] = language(code)


def default() -> Language:
    return _fallback[0]


def reader() -> Language:
    """The language of whoever is being answered now (the operator's default if unknown)."""
    return _reader.get() or _fallback[0]


def answer_in(lang: Language) -> None:
    """Answer in ``lang`` for the rest of this task (a front end's handler of one update)."""
    _reader.set(lang)


@contextmanager
def reading(lang: Language) -> Iterator[Language]:
    """Answer in ``lang`` inside the block (the task's context: a handler, a delivery)."""
    token = _reader.set(lang)
    try:
        yield lang
    finally:
        _reader.reset(token)


# A language tag as apps send them (BCP 47: ``pt-BR``, ``zh-Hans``, ``es-419``; Telegram's
# ``zh-hans``): a language, then short subtags of letters or digits, 35 characters at most.
_TAG = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,5}")
TAG_CHARS = 35


def tag_of(sent: str | None) -> str | None:
    """The language tag an app ``sent``, if it has the shape of one; else None, as if it had
    said nothing (the sender may have forged it: a tag is stored and shown nowhere else)."""
    tag = (sent or "").strip()
    return tag if len(tag) <= TAG_CHARS and _TAG.fullmatch(tag) else None


def pick(tag: str | None) -> str | None:
    """The shipped language a platform's tag names (Discord's ``pt-BR``, Telegram's ``es``,
    ``es-419``), or None when none is shipped for it: the caller falls back to its default."""
    if not tag:
        return None
    key = tag.replace("-", "_").lower()
    by_key = {code.lower(): code for code in LANGUAGES}
    for candidate in (key, _ALIASES.get(key), key.split("_")[0], _ALIASES.get(key.split("_")[0])):
        if candidate and candidate.lower() in by_key:
            return by_key[candidate.lower()]
    return None


def to_data(text: str) -> dict[str, object]:
    """``text`` as the store keeps it (JSON-able): message and parameters, never the words."""
    if isinstance(text, Joined):
        return {"sep": text.sep, "parts": [_param(part) for part in text.parts]}
    if isinstance(text, Text):
        data: dict[str, object] = {"msgid": text.msgid}
        if text.plural is not None:
            data["plural"], data["n"] = text.plural, text.n
        if text.params:
            data["params"] = {k: _param(v) for k, v in text.params.items()}
        return data
    # A sentence made before it was marked: its words are all there is (rendered as themselves).
    return {"msgid": text}


def _param(value: object) -> object:
    return to_data(value) if isinstance(value, Text) else value


def from_data(data: Mapping[str, Any]) -> Text:
    """The Text :func:`to_data` kept."""
    if "parts" in data:
        return Joined(data["sep"], [_value(part) for part in data["parts"]])
    params = {k: _value(v) for k, v in data.get("params", {}).items()}
    return Text(data["msgid"], data.get("plural"), data.get("n"), params)


def _value(value: object) -> Any:
    return from_data(value) if isinstance(value, Mapping) else value
