"""The prompt each road is sent for a request with characters and references: Flow's markers,
and elsewhere words naming the images in the order they are sent (pure)."""

from __future__ import annotations

from bot.core.character_records import CharacterRef
from bot.core.characters import upstream_prompt, worded_prompt

CAROL = CharacterRef(1, "Carol", "char-1", "alice@example.com", images=2)
TOM = CharacterRef(2, "Tom", "char-2", "alice@example.com", images=1)


def test_flow_gets_its_markers() -> None:
    prompt = "@carol hands @Tom @1 and @reference_2, not @5, mail jo@example.com"
    assert upstream_prompt(prompt, [CAROL, TOM], references=2) == (
        "@character_1 hands @character_2 @reference_1 and @reference_2, not @5, mail jo@example.com"
    )


def test_a_road_without_markers_gets_the_images_named_in_the_order_they_go() -> None:
    prompt = "@carol hands @Tom @1 and @reference_2, not @5, mail jo@example.com"
    assert worded_prompt(prompt, [CAROL, TOM], references=2) == (
        "Carol (shown in images 3 and 4) hands Tom (shown in image 5) image 1 and image 2, "
        "not @5, mail jo@example.com"
    )


def test_an_unknown_name_and_a_prompt_without_characters_stay_as_written() -> None:
    assert worded_prompt("@nobody waves at @1", [], references=1) == "@nobody waves at image 1"
    assert worded_prompt("@CAROL, @carol!", [CAROL], references=0) == (
        "Carol (shown in images 1 and 2), Carol (shown in images 1 and 2)!"
    )
