"""Parsing and checking prompts: one test per user mistake, each with its own sentence."""

from __future__ import annotations

import random

import pytest

from bot.core import texts
from bot.core.domain import UserSettings
from bot.core.errors import InvalidInput
from bot.core.models_table import ModelTable
from bot.core.options import Options, Resolved, resolve, split_flags
from bot.core.policy import Defaults, Limits
from bot.core.routing import Refs

# Flow alone, as before there were other roads (tests/unit/test_routing.py has the others).
TABLE = ModelTable.builtin().serving(["flow"])


def check(
    text: str,
    *,
    refs: int = 0,
    settings: UserSettings | None = None,
    options: Options | None = None,
) -> Resolved:
    prompt, inline = split_flags(text)
    asked = inline.overridden_by(options) if options else inline
    return resolve(
        prompt,
        asked,
        settings or UserSettings(),
        refs=Refs(uploads=refs, total=refs),
        table=TABLE,
        pictures=frozenset({"flow"}),
        defaults=Defaults(),
        limits=Limits(max_prompt_chars=100),
        rng=random.Random(1),
    )


def refused(text: str, **kwargs: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        check(text, **kwargs)  # type: ignore[arg-type]
    return caught.value.message


@pytest.mark.parametrize(
    ("text", "prompt", "options"),
    [
        ("a fox --ar 16:9", "a fox", Options(aspect_ratio="16:9")),
        ("a fox --ar=4:3 --model pro", "a fox", Options(aspect_ratio="4:3", model="pro")),
        ("--count 2 a  fox --seed 5", "a fox", Options(count="2", seed="5")),
        ("a fox —ar 9:16", "a fox", Options(aspect_ratio="9:16")),
        ("a fox –m lite", "a fox", Options(model="lite")),
        ("don't stop--me now", "don't stop--me now", Options()),
        # A single dash, as people type it, before a name only an option has.
        ("a fox -ar 16:9 -model pro", "a fox", Options(aspect_ratio="16:9", model="pro")),
        ("a fox -seed 3", "a fox", Options(seed="3")),
        ("rock -n roll, a t-shirt -ish", "rock -n roll, a t-shirt -ish", Options()),
    ],
)
def test_inline_flags_are_split_from_the_prompt(text: str, prompt: str, options: Options) -> None:
    assert split_flags(text) == (prompt, options)


def test_defaults_fill_what_was_not_said_and_are_explicit() -> None:
    resolved = check("a fox")
    assert resolved.model.id == "nano-banana-2-lite"
    assert (resolved.aspect_ratio, resolved.count) == ("1:1", 4)
    assert 0 <= resolved.seed <= 2**31 - 1


def test_user_settings_come_before_bot_defaults_and_flags_before_both() -> None:
    settings = UserSettings(model="nano-banana-pro", aspect_ratio="3:4", count=2)
    assert check("a fox", settings=settings).model.id == "nano-banana-pro"
    assert check("a fox", settings=settings).aspect_ratio == "3:4"
    resolved = check("a fox --model 2 --count 1", settings=settings)
    assert (resolved.model.id, resolved.count) == ("nano-banana-2", 1)


def test_structured_options_win_over_inline_flags() -> None:
    assert check("a fox --count 2", options=Options(count=3)).count == 3


def test_short_model_names_resolve_through_the_table() -> None:
    assert check("x --model pro").model.id == "nano-banana-pro"
    assert check("x --model 2").model.id == "nano-banana-2"
    assert check("x --model imagen-4").model.id == "nano-banana-2-lite"
    assert check("x --model NANO-BANANA").model.id == "nano-banana-2"


def test_old_ratio_words_are_understood() -> None:
    assert check("x --ar landscape").aspect_ratio == "16:9"
    assert check("x --ar 9x16").aspect_ratio == "9:16"


def test_a_saved_auto_ratio_gives_way_without_references() -> None:
    settings = UserSettings(model="nano-banana-2", aspect_ratio="auto")
    assert check("x", settings=settings).aspect_ratio == "1:1"
    assert check("x", settings=settings, refs=1).aspect_ratio == "auto"


def test_empty_prompt() -> None:
    assert "describe the image" in refused("   ")
    assert "describe the image" in refused("--ar 16:9")


def test_over_long_prompt() -> None:
    assert refused("x" * 101) == (
        "Your prompt is 101 characters long; the limit is 100. Please shorten it."
    )


def test_unknown_model_lists_the_valid_ones() -> None:
    message = refused("x --model dalle")
    assert "dalle" in message
    assert all(m in message for m in ("nano-banana-2-lite", "nano-banana-2", "nano-banana-pro"))


@pytest.mark.parametrize("count", ["0", "5", "two", "-1", "1.5"])
def test_count_out_of_range(count: str) -> None:
    assert "from 1 to 4" in refused(f"x --count {count}")


@pytest.mark.parametrize("seed", ["-3", "abc", str(2**31)])
def test_bad_seed(seed: str) -> None:
    assert "seed must be a whole number" in refused(f"x --seed {seed}")


def test_auto_without_references() -> None:
    assert "reference image" in refused("x --model pro --ar auto")


def test_auto_on_a_model_that_cannot() -> None:
    message = refused("x --model lite --ar auto", refs=1)
    assert "nano-banana-2-lite can't use --ar auto" in message


def test_unknown_ratio() -> None:
    assert "isn't an aspect ratio" in refused("x --ar 21:9")


@pytest.mark.parametrize("typed", ["16;9", "16x9", "16×9", "16/9", "16-9", "16X9", "wide"])
def test_ratios_written_other_ways_are_understood(typed: str) -> None:
    assert check(f"x --ar {typed}").aspect_ratio == "16:9"


def test_a_ratio_the_model_does_not_make_names_the_closest() -> None:
    assert refused("x --ar 16:10") == (
        "“16:10” isn't an aspect ratio this model makes. The closest is 16:9. "
        "Use one of: 16:9, 4:3, 1:1, 3:4, 9:16."
    )
    assert "The closest is 3:4." in refused("x --ar 2:3")
    assert "closest" not in refused("x --ar wide-ish")


def test_refusals_name_the_options_as_the_platform_does() -> None:
    slash = texts.naming("discord")
    prompt, inline = split_flags("x --ar auto --model lite")
    with pytest.raises(InvalidInput) as caught:
        resolve(
            prompt,
            inline,
            UserSettings(),
            refs=Refs(uploads=1, total=1),
            table=TABLE,
            pictures=frozenset({"flow"}),
            defaults=Defaults(),
            limits=Limits(),
            naming=slash,
        )
    assert caught.value.message.startswith("nano-banana-2-lite can't use aspect_ratio: auto.")
    assert texts.moderated(slash).endswith("another model with the model option.")
    assert texts.moderated(texts.naming("telegram")).endswith("another model with --model.")


def test_too_many_references_says_the_limit() -> None:
    assert refused("x --model pro", refs=11) == (
        "You sent 11 reference images; nano-banana-pro takes at most 10. Please send fewer."
    )


def test_unknown_option() -> None:
    assert "I don't know the option --style" in refused("x --style raw")


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("--modle", "--model"), ("--cout", "--count"), ("--sed", "--seed"), ("--aspct", "--aspect")],
)
def test_an_options_typo_gets_did_you_mean(typo: str, meant: str) -> None:
    assert refused(f"x {typo} 2") == f"I don't know the option {typo}. Did you mean {meant}?"


def test_an_unlike_option_gets_the_list_instead() -> None:
    assert refused("x --no cats") == (
        f"I don't know the option --no. The options are {texts.FLAGS_HELP}."
    )


def test_option_without_value() -> None:
    assert "needs a value" in refused("x --ar")
    assert "needs a value" in refused("x --ar --count 2")
