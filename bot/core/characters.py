"""Characters in prompts, as pure rules: what a name may be, which ``@words`` of a prompt name
characters or point at references, the prompt the upstream is sent, and the reference budget.

The upstream grounds a character or a reference by a marker in the prompt (``@character_n``,
``@reference_n``; each marker needs its body parameter, google-flow-api.md): a user writes
``@carol`` and ``@1``, and the request is stored with those words, so its captions, R and 🎲
show what the user wrote; the markers are made from it each time it is sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from bot.core import character_texts
from bot.core.character_records import CharacterRef, name_key
from bot.core.errors import InvalidInput
from bot.core.models_table import ModelSpec
from bot.core.routing import takes_characters

NAME_CHARS = 32
# A name is a word: a letter, then letters, digits, "_" or "-".
_NAME = re.compile(rf"[^\W\d_][\w-]{{0,{NAME_CHARS - 1}}}")
# The upstream's own marker words; as names they would be read as markers.
_MARKER_NAME = re.compile(r"(?:reference|character)_\d+", re.IGNORECASE)
# ``@word`` not inside a word or an address ("jo@example.com" names no one).
_MENTION = re.compile(r"(?<![\w@])@([^\W\d_][\w-]*)")
_NUMBERED = re.compile(r"(?<![\w@])@(reference_)?(\d+)(?![\w-])", re.IGNORECASE)
# ``character_1`` … ``character_7`` (google-flow-api.md).
MAX_CHARACTERS = 7
# Characters one user may keep.
MAX_OWNED = 25
MAX_IMAGES = 2


def check_name(name: str) -> str:
    """The name as it will be kept, or ``InvalidInput`` saying what a name may be."""
    name = unicodedata.normalize("NFC", name.strip().removeprefix("@"))
    if not _NAME.fullmatch(name) or _MARKER_NAME.fullmatch(name):
        raise InvalidInput(character_texts.bad_character_name(name, NAME_CHARS))
    if len(_scripts(name)) > 1:  # "Сarol" with a Cyrillic С, shared beside a real Carol
        raise InvalidInput(character_texts.mixed_scripts(name))
    return name


def _scripts(name: str) -> set[str]:
    """The writing systems of a name's letters, by their Unicode names ("LATIN", "CYRILLIC")."""
    return {unicodedata.name(c, "?").split()[0] for c in name if c.isalpha()}


def mentions(prompt: str) -> list[str]:
    """The ``@words`` that may name characters, by ``name_key``, in order of first use."""
    words = _MENTION.findall(unicodedata.normalize("NFC", prompt))
    found = [name_key(m) for m in words if not _MARKER_NAME.fullmatch(m)]
    return list(dict.fromkeys(found))


def forged_markers(prompt: str) -> list[str]:
    """``@character_n`` typed in a prompt: only the bot writes those."""
    return [
        f"@{m}"
        for m in _MENTION.findall(prompt)
        if m.lower().startswith("character_") and _MARKER_NAME.fullmatch(m)
    ]


def check_prompt(prompt: str, references: int) -> None:
    """Refuse markers that point at nothing: the upstream refuses a marker without its image
    (a plain ``@5`` past the references is only text, and stays so)."""
    if forged := forged_markers(prompt):
        raise InvalidInput(character_texts.forged_marker(forged[0]))
    for marker, number in _NUMBERED.findall(prompt):
        if marker and not 1 <= int(number) <= references:
            raise InvalidInput(character_texts.no_such_reference(int(number), references))


def unknown(prompt: str, characters: Sequence[CharacterRef]) -> list[str]:
    """The ``@words`` that name none of the characters used: they stay text."""
    known = {name_key(c.name) for c in characters}
    return [f"@{m}" for m in mentions(prompt) if m not in known]


def upstream_prompt(prompt: str, characters: Sequence[CharacterRef], references: int) -> str:
    """The prompt with ``@name`` as ``@character_n`` (n: the character's place in the request)
    and ``@n`` as ``@reference_n`` (of the ``references`` sent)."""
    place = {name_key(c.name): n for n, c in enumerate(characters, 1)}

    def character(match: re.Match[str]) -> str:
        n = place.get(name_key(match[1]))
        return match[0] if n is None else f"@character_{n}"

    def reference(match: re.Match[str]) -> str:
        n = int(match[2])
        return f"@reference_{n}" if 1 <= n <= references else match[0]

    marked = _MENTION.sub(character, unicodedata.normalize("NFC", prompt))
    return _NUMBERED.sub(reference, marked)


def worded_prompt(prompt: str, characters: Sequence[CharacterRef], references: int) -> str:
    """The prompt for a road without markers, whose images come in order after it (the
    ``references`` sent, then each character's pictures): ``@name`` as "Carol (shown in
    images 3 and 4)" and ``@n`` as "image n", the way Google's guides name the images of a
    prompt ("the woman from the second image")."""
    shown: dict[str, str] = {}
    first = references + 1
    for c in characters:
        numbers = [str(n) for n in range(first, first + c.images)]
        which = f"image {numbers[0]}" if len(numbers) == 1 else f"images {' and '.join(numbers)}"
        shown[name_key(c.name)] = f"{c.name} (shown in {which})"
        first += c.images

    def character(match: re.Match[str]) -> str:
        return shown.get(name_key(match[1]), match[0])

    def reference(match: re.Match[str]) -> str:
        n = int(match[2])
        return f"image {n}" if 1 <= n <= references else match[0]

    marked = _MENTION.sub(character, unicodedata.normalize("NFC", prompt))
    return _NUMBERED.sub(reference, marked)


def check_budget(
    model: ModelSpec,
    pictures: Sequence[int],
    references: int,
    as_pictures: frozenset[str],
    unlinked: frozenset[str] = frozenset(),
) -> None:
    """Characters (``pictures``: how many each holds) and references share the model's
    reference budget, on the roads that take characters (``routing.takes_characters``).
    ``unlinked``: roads that would take them as links, had the bot a public address."""
    if not pictures:
        return
    takers = (o for o in model.offers if takes_characters(o, as_pictures))
    budget = max((o.max_references for o in takers), default=0)
    if not budget:
        if any(o.provider in unlinked for o in model.offers):
            raise InvalidInput(character_texts.CHARACTERS_NEED_ADDRESS)
        raise InvalidInput(character_texts.no_characters_on(model.label))
    if len(pictures) > MAX_CHARACTERS:
        raise InvalidInput(character_texts.too_many_characters(len(pictures), MAX_CHARACTERS))
    if sum(pictures) + references > budget:
        raise InvalidInput(
            character_texts.over_budget(sum(pictures), references, model.label, budget)
        )
