"""Discord's commands in every shipped language (issue 16): what the translator gives Discord
fits Discord's caps (a name 32 characters, a description 100), since one that doesn't makes
Discord refuse the whole sync; and the names people type are never translated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.core import i18n
from bot.core.models_table import ModelTable
from bot.frontends.discord import commands
from bot.frontends.discord.translator import CommandTranslator


def _walk(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield payload
    for option in payload.get("options", []):
        yield from _walk(option)


@pytest.fixture
async def payloads(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(
        discord.Client(intents=discord.Intents.none())
    )
    for command in commands.build(ModelTable.builtin()):
        tree.add_command(command)
    translator = CommandTranslator()
    made = [await c.get_translated_payload(tree, translator) for c in tree.get_commands()]
    # The translator leaves out what is over Discord's caps (and says so): none may be.
    assert [r.getMessage() for r in caplog.records if r.name.endswith("translator")] == []
    return made


@pytest.mark.parametrize("code", [code for code in i18n.LANGUAGES if code != i18n.DEFAULT])
async def test_every_description_fits_discords_caps_in_every_language(
    payloads: list[dict[str, Any]], code: str
) -> None:
    locales = [lc.value for lc in discord.Locale if i18n.pick(lc.value) == code]
    assert locales, f"Discord has no locale for {code}"
    for command in payloads:
        for part in _walk(command):
            described = part.get("description_localizations") or {}
            if part.get("description"):  # a context menu has none
                english = i18n.Text(part["description"])
                assert all(lc in described for lc in locales) or (
                    i18n.language(code).render(english) == str(english)
                ), f"{code}: {part['name']} is not described in it"
            assert all(len(words) <= 100 for words in described.values())
            named = part.get("name_localizations") or {}
            assert all(len(words) <= 32 for words in named.values())
            if command.get("type") == 1:  # a slash command and its options: typed as they are
                assert named == {}, part["name"]
