"""Button data is all a button carries, and clients may forge it."""

from __future__ import annotations

import pytest

from bot.core.domain import Action, Button


def test_round_trip_fits_telegram_and_discord() -> None:
    button = Button(Action.UPSCALE, 123456789012345678, 4)
    assert Button.parse(button.data) == button
    assert len(button.data.encode()) <= 64
    assert button.label == "U4"
    assert Button(Action.REROLL, 5).label == "🎲"
    assert Button(Action.REUSE, 5, 2).label == "R2"


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
