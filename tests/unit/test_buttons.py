"""Button data is all a button carries, and clients may forge it; job ids are public ids."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from bot.core.buttons import Action, Button
from bot.core.presenters import label
from bot.core.public_ids import PUBLIC_ID, PUBLIC_ID_ALPHABET, new_public_id, parse_public_id

# Discord's cap on a button's label.
DISCORD_LABEL = 80


def test_round_trip_fits_telegram_and_discord() -> None:
    for job in ("k3x9q2m", "123456789012345678"):  # a public id; an old button's number
        button = Button(Action.UPSCALE, job, 4)
        assert Button.parse(button.data) == button
        assert len(button.data.encode()) <= 64


def test_labels_say_what_the_buttons_do() -> None:
    assert label(Button(Action.UPSCALE, "k3x9q2m", 4)) == "⬆️ Upscale 4"
    assert label(Button(Action.UPSCALE, "k3x9q2m", 4), done=True) == "✅ Upscale 4"
    assert label(Button(Action.REUSE, "k3x9q2m", 2)) == "✏️ Edit 2"
    assert label(Button(Action.REROLL, "k3x9q2m")) == "🎲 Draw again"
    assert label(Button(Action.CANCEL, "k3x9q2m")) == "✖ Cancel #k3x9q2m"
    assert label(Button(Action.SHOW, "k3x9q2m")) == "🔎 Show #k3x9q2m"
    largest = str(10**18 - 1)
    assert all(len(label(Button(action, largest, 4))) <= DISCORD_LABEL for action in Action)


def test_public_ids_are_random_letters_first_and_never_a_number() -> None:
    ids = [new_public_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(PUBLIC_ID, i) and not i.isdigit() for i in ids)
    assert all(i[0].isalpha() for i in ids)
    # Every symbol turns up, none much more often than its share (7 × 2000 draws).
    seen = Counter("".join(i[1:] for i in ids))
    assert set(seen) == set(PUBLIC_ID_ALPHABET)
    assert max(seen.values()) < 2 * 6 * 2000 / len(PUBLIC_ID_ALPHABET)


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("k3x9q2m", "k3x9q2m"),
        ("#K3X9Q2M", "k3x9q2m"),
        ("  #k3x9q2m ", "k3x9q2m"),
        ("k3x9qlm", "k3x9q1m"),  # an l for a 1, an o for a 0: Crockford's look-alikes
        ("kox9q2m", "k0x9q2m"),
        ("1234567", None),  # a number is never a public id
        ("k3x9q2", None),
        ("k3x9q2mm", None),
        ("k3x9q2u", None),
        ("", None),
    ],
)
def test_typed_ids_are_read_as_meant(typed: str, read: str | None) -> None:
    assert parse_public_id(typed) == read


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
        "u:K3X9Q2M:1",
        "u:k3x9q2:1",
        "u:k3x9q2mm:1",
        "u:3kx9q2m:1",
        "u:k3x9q2u:1",
        "s:k3x9q2m:1 ",
    ],
)
def test_forged_data_is_rejected(data: str) -> None:
    assert Button.parse(data) is None
