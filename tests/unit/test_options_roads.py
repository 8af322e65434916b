"""What a request may ask depends on the roads configured: each refusal is one sentence, said
before anything is uploaded (``tests/unit/test_options.py`` has Flow alone)."""

from __future__ import annotations

import random

import pytest

from bot.core import option_texts, texts
from bot.core.domain import UserSettings
from bot.core.errors import InvalidInput
from bot.core.models_table import ModelTable
from bot.core.options import Resolved, resolve, split_flags
from bot.core.policy import Defaults, Limits
from bot.core.routing import Refs

PICTURES = frozenset({"flow", "gemini", "nbpro"})


def check(text: str, *roads: str, uploads: int = 0) -> Resolved:
    prompt, inline = split_flags(text)
    return resolve(
        prompt,
        inline,
        UserSettings(),
        refs=Refs(uploads=uploads, total=uploads),
        table=ModelTable.builtin().serving(roads),
        pictures=PICTURES & frozenset(roads),
        defaults=Defaults(),
        limits=Limits(),
        rng=random.Random(1),
    )


def refused(text: str, *roads: str, uploads: int = 0) -> str:
    with pytest.raises(InvalidInput) as caught:
        check(text, *roads, uploads=uploads)
    return caught.value.message


def test_a_size_only_another_road_renders() -> None:
    assert refused("a fox --model 2 --size 4K", "flow") == option_texts.size_not_offered(
        "nano-banana-2", ["1K"]
    )
    resolved = check("a fox --model 2 --size 4K", "flow", "gemini")
    assert resolved.size == "4K"


def test_a_seed_on_roads_that_take_none() -> None:
    assert refused("a fox --seed 5", "nbpro", "wireflow") == option_texts.seed_not_supported(
        "nano-banana-2"
    )
    assert check("a fox --seed 5", "nbpro", "gemini").seed == 5


def test_a_users_picture_where_only_wireflow_is_configured() -> None:
    assert refused("a fox", "wireflow", uploads=1) == texts.PICTURES_NOT_TAKEN


def test_a_users_picture_on_a_model_only_wireflow_serves_names_the_models_that_can() -> None:
    message = refused("a fox --model 1", "flow", "wireflow", uploads=1)
    assert message == option_texts.pictures_need_model(
        "nano-banana-1", ["nano-banana-2-lite", "nano-banana-2", "nano-banana-pro"]
    )


def test_more_references_than_the_roads_take() -> None:
    assert refused("a fox --model 1", "gemini", uploads=4) == option_texts.too_many_references(
        4, "nano-banana-1", 3
    )


def test_a_model_the_roads_do_not_serve_is_unknown_here() -> None:
    message = refused("a fox --model lite", "gemini")
    assert message == option_texts.unknown_model("lite", ModelTable.builtin().serving(["gemini"]))


def test_a_ratio_only_gemini_renders() -> None:
    assert check("a fox --model 2 --ar 4:1", "flow", "gemini").aspect_ratio == "4:1"
    message = refused("a fox --model pro --ar 4:1", "flow", "gemini")
    assert message.startswith("“4:1” isn't an aspect ratio this model makes. The closest is 21:9.")


def test_discord_users_hear_of_the_commands_options_not_flags() -> None:
    prompt, inline = split_flags("a fox --seed 5")
    with pytest.raises(InvalidInput) as caught:
        resolve(
            prompt,
            inline,
            UserSettings(),
            refs=Refs(),
            table=ModelTable.builtin().serving(["nbpro"]),
            pictures=frozenset({"nbpro"}),
            defaults=Defaults(),
            limits=Limits(),
            naming=texts.naming("discord"),
        )
    assert caught.value.message == (
        "nano-banana-2 can't take a seed here. Leave out the seed option, or choose another model."
    )
