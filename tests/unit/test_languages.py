"""Sentences in the reader's language (issue 16): a sentence is its message and parameters until
someone reads it; then it is rendered in their language, English when theirs isn't shipped."""

from __future__ import annotations

import copy
import gettext

import pytest

from bot.core import option_texts, texts
from bot.core.i18n import (
    ENGLISH,
    Catalogue,
    Language,
    Text,
    _,
    _n,
    from_data,
    join,
    language,
    pick,
    to_data,
)
from bot.core.people import DISCORD
from bot.core.presenters import QueueRow
from bot.store.codec import decode_text, encode_text

SPANISH = language("es")


def test_a_refusal_is_told_in_spanish_when_asked_for_es() -> None:
    refusal = option_texts.bad_count("muchas")
    assert SPANISH.render(refusal) == (
        "La cantidad debe ser un número entero de 1 a 4, no «muchas»."
    )
    assert refusal == "The count must be a whole number from 1 to 4, not “muchas”."


def test_a_queue_status_is_told_in_spanish_when_asked_for_es() -> None:
    assert SPANISH.render(texts.queued(3)) == "⏳ En cola — 2 por delante de ti."
    assert SPANISH.render(texts.queued(1)) == "⏳ En cola — vas a continuación."
    row = QueueRow("k3x9q2m", "“un zorro”", running=False, upscale=False, position=0)
    assert SPANISH.render(row.status) == "⏳ En cola."


def test_counts_take_the_languages_plural_forms() -> None:
    assert SPANISH.render(option_texts.queue_full(1)) == (
        "Ya tienes 1 trabajo en espera. Espera a que termine, por favor."
    )
    assert SPANISH.render(option_texts.queue_full(10)) == (
        "Ya tienes 10 trabajos en espera. Espera a que terminen algunos, por favor."
    )
    assert option_texts.queue_full(1) == (
        "You already have 1 job waiting. Please wait for it to finish."
    )


def test_a_sentence_inside_a_sentence_is_rendered_in_the_same_language() -> None:
    # Discord names the option in words (translated); the flag itself never is.
    slash = SPANISH.render(texts.moderated(texts.naming(DISCORD)))
    assert slash.endswith("a usar otro modelo con la opción model.")
    typed = SPANISH.render(texts.moderated(texts.FLAGS_NAMING))
    assert typed.endswith("a usar otro modelo con --model.")
    assert SPANISH.render(texts.failed(texts.BUSY)).startswith(
        "❌ El servicio de imágenes está muy ocupado"
    )


def test_formats_and_layouts_survive_translation() -> None:
    assert SPANISH.render(option_texts.image_too_large(3 * 2**20 // 2, 20 * 2**20)) == (
        "Esa imagen ocupa 1.5 MB; el límite es 20 MB. Envía una más pequeña, por favor."
    )
    lines = join("\n", [texts.CANCELLED, "k3x9q2m", texts.queued(0)])
    assert SPANISH.render(lines) == "Cancelado.\nk3x9q2m\n⏳ En cola."
    assert lines == "Cancelled.\nk3x9q2m\n⏳ Queued."


def test_what_is_not_a_sentence_renders_as_itself() -> None:
    assert SPANISH.render("nano-banana-pro") == "nano-banana-pro"
    assert SPANISH.render(_("a sentence nobody translated yet")) == (
        "a sentence nobody translated yet"
    )


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("es", "es"),
        ("es-ES", "es"),
        ("es-419", "es"),
        ("ES", "es"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("tlh", None),
        ("", None),
        (None, None),
    ],
)
def test_a_platforms_tag_picks_a_shipped_language(tag: str | None, code: str | None) -> None:
    assert pick(tag) == code


def test_an_unknown_language_falls_back_to_english() -> None:
    assert language("tlh") is ENGLISH or language("tlh").code == "en"
    assert language("tlh").render(texts.queued(3)) == "⏳ Queued — 2 ahead of you."


@pytest.mark.parametrize(
    "text",
    [
        texts.BUSY,
        option_texts.bad_count("x"),
        option_texts.queue_full(3),
        texts.failed(texts.moderated(texts.naming(DISCORD))),
        join(" · ", [texts.CANCELLED, "plain", _n("{n} image", "{n} images", 2, n=2)]),
    ],
)
def test_the_store_keeps_message_and_parameters_not_words(text: Text) -> None:
    data = to_data(text)
    again = from_data(data)
    assert again == text
    assert SPANISH.render(again) == SPANISH.render(text)
    assert "Spanish" not in repr(data)
    # dataclasses.asdict and replace copy what a Job holds: a copy stays a sentence.
    assert SPANISH.render(copy.deepcopy(text)) == SPANISH.render(text)
    assert SPANISH.render(copy.copy(text)) == SPANISH.render(text)


def test_a_sentence_stored_before_sentences_were_marked_is_still_translated() -> None:
    # Schema step 9 keeps an old row's words as its message: a fixed sentence is its msgid.
    old = from_data({"msgid": str(texts.BUSY)})
    assert SPANISH.render(old) == SPANISH.render(texts.BUSY)
    custom = from_data({"msgid": "The image service rejected these options: {x}."})
    assert SPANISH.render(custom) == "The image service rejected these options: {x}."


def test_words_an_older_process_still_stores_are_read_as_their_own_message() -> None:
    # Processes sharing a store are upgraded one at a time: one from before step 9 writes words.
    assert SPANISH.render(decode_text(str(texts.BUSY))) == SPANISH.render(texts.BUSY)
    assert decode_text("Something {odd} happened") == "Something {odd} happened"
    assert decode_text(encode_text(texts.BUSY)) == texts.BUSY


def test_a_day_and_a_list_are_written_as_the_readers_language_writes_them() -> None:
    day = 1763856000.0  # 2025-11-23, UTC
    assert ENGLISH.day(day) == "23 Nov"
    assert SPANISH.day(day) == "23 nov"
    japanese_like = Language("xx", Catalogue(gettext.NullTranslations(), comma="、"))
    listed = join(", ", [_("a sentence nobody translated yet"), "pro"])
    assert japanese_like.render(listed) == "a sentence nobody translated yet、pro"
    assert SPANISH.render(join(" · ", ["a", "b"])) == "a · b"  # a layout, not a list
