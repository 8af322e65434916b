"""The reader's language in the tests (issue 16): which languages the language tests speak, and a
detector of English left in what the bot sent a reader of another language.

The issue's own: a Discord interaction with locale ``pt-BR``, a Telegram user whose app is in
Russian. Any shipped language will do (Spanish was used until these two shipped).
"""

from __future__ import annotations

import re
from functools import cache

from bot.catalogues import po_path
from bot.core.i18n import LANGUAGES
from tests.catalogue import read

# (what the platform sends, the shipped language it names)
DISCORD = ("pt-BR", "pt_BR")
TELEGRAM = ("ru", "ru")
assert DISCORD[1] in LANGUAGES
assert TELEGRAM[1] in LANGUAGES

_PLACEHOLDER = re.compile(r"\{[^{}]*\}|\n")


@cache
def _english(code: str) -> frozenset[str]:
    """The fixed parts of every message (between its placeholders and line breaks) that are
    long enough to be words, and that ``code``'s translation doesn't keep as they are."""
    found = set()
    for message in read(po_path(code), code):
        if not message.id:
            continue
        ids = (message.id,) if isinstance(message.id, str) else tuple(message.id)
        strings = (message.string,) if isinstance(message.string, str) else message.string or ()
        translated = "\n".join(str(s) for s in strings)
        for msgid in ids:
            for part in _PLACEHOLDER.split(msgid):
                part = part.strip(" .,:;—·()“”")
                if len(part) >= 10 and " " in part and part not in translated:
                    found.add(part)
    return frozenset(found)


def english_left(text: str, code: str) -> list[str]:
    """The English sentences (or parts) in ``text`` that a reader of ``code`` should have been
    told in their language: an f-string or a ``+`` around a sentence makes its English words."""
    return sorted(part for part in _english(code) if part in text)
