"""The message catalogue as the tests see it: each language's ``.po``, and the template's messages
as Babel extracts them from the code now."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.catalogues import DOMAIN, LOCALES

ROOT = LOCALES.parent.parent
TEMPLATE = LOCALES / f"{DOMAIN}.pot"
# The markers of bot.core.i18n, as .ci/catalogue passes them to pybabel.
KEYWORDS = {"_": None, "_n": (1, 2)}


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def extracted() -> set[str | tuple[str, str]]:
    """The msgids the code marks now."""
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=[("bot/**.py", "python")], keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found
