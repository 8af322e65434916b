"""The message catalogues, read from the ``.po`` files shipped beside the code (package data),
at startup, into the core's :mod:`bot.core.i18n`.

Nothing is compiled ahead: Babel reads each shipped language's ``.po`` and writes its ``.mo``
into memory for the standard library's gettext, so a clone run with ``python -m bot`` and a
``pip install .`` speak every shipped language alike (about 25 ms a language).
"""

from __future__ import annotations

import gettext
import io
from datetime import UTC, datetime
from pathlib import Path

from babel import Locale
from babel.dates import format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.core import i18n

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"


def po_path(code: str) -> Path:
    return LOCALES / code / "LC_MESSAGES" / f"{DOMAIN}.po"


# The separator of a list's items where it isn't a comma and a space (CLDR's list patterns).
_COMMAS = {"ja": "、", "zh_Hans": "、"}


def read(code: str) -> i18n.Catalogue:
    """One language: its translations, from its ``.po``, and its CLDR date format."""
    with po_path(code).open("rb") as file:
        catalog = read_po(file, locale=code)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    locale = Locale.parse(code)

    def day(seconds: float) -> str:
        return format_skeleton("MMMd", datetime.fromtimestamp(seconds, UTC), locale=locale)

    return i18n.Catalogue(gettext.GNUTranslations(compiled), day, _COMMAS.get(code, ", "))


def install(default: str = i18n.DEFAULT) -> None:
    """Every shipped language into the core, and the operator's ``default``."""
    i18n.install({code: read(code) for code in i18n.LANGUAGES if code != i18n.DEFAULT})
    i18n.set_default(default)
