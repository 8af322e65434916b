"""Button data is all a button carries, and clients may forge it."""

from __future__ import annotations

import pytest

from bot.core.domain import Action, Button
from bot.core.presenters import label

# Discord's cap on a button's label.
DISCORD_LABEL = 80


def test_round_trip_fits_telegram_and_discord() -> None:
    button = Button(Action.UPSCALE, 123456789012345678, 4)
    assert Button.parse(button.data) == button
    assert len(button.data.encode()) <= 64


def test_labels_say_what_the_buttons_do() -> None:
    assert label(Button(Action.UPSCALE, 5, 4)) == "⬆️ Upscale 4"
    assert label(Button(Action.UPSCALE, 5, 4), done=True) == "✅ Upscale 4"
    assert label(Button(Action.REUSE, 5, 2)) == "✏️ Edit 2"
    assert label(Button(Action.REROLL, 5)) == "🎲 Draw again"
    largest = 10**18 - 1
    assert label(Button(Action.CANCEL, largest)) == f"✖ Cancel #{largest}"
    assert all(len(label(Button(action, largest, 4))) <= DISCORD_LABEL for action in Action)


@pytest.mark.parametrize(
    "data",
    [
        "",
        "u:1",
        "x:1:1",
        "u:0:1",
        "u:-1:1",
        "u:1:10",
        "u:1:1:1",
        "u:1:a",
        "u:01:1",
        "u:1:1\n",
        "u:" + "9" * 40 + ":1",
        "r:1:1" + " " * 100,
    ],
)
def test_forged_data_is_rejected(data: str) -> None:
    assert Button.parse(data) is None
