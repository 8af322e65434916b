"""The message catalogue (issue 16): what CI refuses. The template holds every sentence the
code marks; each shipped language translates every one, in every plural form, and keeps each
placeholder as written (name and format), so ``{count}`` can't become ``{cuenta}`` or vanish."""

from __future__ import annotations

import string

import pytest

from bot.catalogues import LOCALES, po_path
from bot.core.i18n import DEFAULT, LANGUAGES
from tests.catalogue import TEMPLATE, extracted, read

TRANSLATED = [code for code in LANGUAGES if code != DEFAULT]


def placeholders(text: str) -> set[str]:
    """``{name}`` and ``{size:.1f}`` as written (the field and its format, not the words)."""
    fields = set()
    for _literal, field, spec, conversion in string.Formatter().parse(text):
        if field is not None:
            fields.add(f"{field}!{conversion or ''}:{spec or ''}")
    return fields


def forms(value: object) -> tuple[str, ...]:
    """A message's id or string as its forms (one, or one per plural form)."""
    if isinstance(value, str):
        return (value,)
    assert isinstance(value, list | tuple)
    return tuple(str(form) for form in value)


def test_the_template_holds_what_the_code_marks() -> None:
    template = {m.id for m in read(TEMPLATE) if m.id}
    marked = extracted()
    assert marked - template == set(), "new sentences: run .ci/catalogue extract"
    assert template - marked == set(), "sentences gone from the code: run .ci/catalogue extract"


def test_every_shipped_language_has_a_catalogue() -> None:
    assert LANGUAGES[0] == DEFAULT == "en"
    for code in TRANSLATED:
        assert po_path(code).is_file(), f"{code} is in LANGUAGES but has no catalogue"
    # English is the msgids themselves. A catalogue in the works (not yet in LANGUAGES) may
    # sit beside the shipped ones: its placeholders are checked, its gaps are not.
    assert not po_path(DEFAULT).exists()


@pytest.mark.parametrize("code", TRANSLATED)
def test_a_shipped_language_translates_every_message(code: str) -> None:
    template = {m.id for m in read(TEMPLATE) if m.id}
    catalog = read(po_path(code), code)
    needed = catalog.num_plurals
    untranslated = []
    for message in catalog:
        if not message.id:
            continue
        strings = forms(message.string)
        if message.fuzzy or not all(strings) or (message.pluralizable and len(strings) < needed):
            untranslated.append(message.id)
    assert untranslated == []
    assert {m.id for m in catalog if m.id} == template, "run .ci/catalogue extract"


@pytest.mark.parametrize("code", [p.parent.parent.name for p in LOCALES.glob("*/*/*.po")])
def test_a_translation_keeps_every_placeholder(code: str) -> None:
    wrong: list[tuple[str, str, object]] = []
    for message in read(po_path(code), code):
        if not message.id:
            continue
        ids = forms(message.id)
        expected = set().union(*(placeholders(i) for i in ids))
        for translated in filter(None, forms(message.string)):
            try:
                found = placeholders(translated)
            except ValueError as exc:  # an unbalanced brace
                wrong.append((ids[0], translated, str(exc)))
                continue
            if found != expected:
                wrong.append((ids[0], translated, sorted(found ^ expected)))
    assert wrong == []


def test_the_check_catches_a_changed_placeholder() -> None:
    assert placeholders("{count} jobs") != placeholders("{cuenta} trabajos")
    assert placeholders("{size:.1f} MB") != placeholders("{size} MB")
    assert placeholders("{a} {b}") == placeholders("{b} y {a}")  # order is the translator's
