"""Small talk is asked about before it costs images; anything that may be a picture is drawn."""

from __future__ import annotations

import pytest

from bot.core.chatter import is_chatter


@pytest.mark.parametrize(
    "text",
    ["hi", "Hello!", "thanks!", "thank you", "thanks a lot", "ok", "OK 👍", "👍", "?", "lol",
     "спасибо", "привет!", "gracias", "merci", "谢谢", "good night", "test"],
)  # fmt: skip
def test_small_talk(text: str) -> None:
    assert is_chatter(text)


@pytest.mark.parametrize(
    "text",
    ["cat", "a fox", "hi there robot", "42", "a good boy", "thanks for the fish dinner",
     "ok computer", "no cats", "кот", "a very very very nice day"],
)  # fmt: skip
def test_anything_else_is_a_prompt(text: str) -> None:
    assert not is_chatter(text)
