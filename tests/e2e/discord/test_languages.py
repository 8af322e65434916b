"""The reader's language on Discord (issue 16): a user is answered in the locale their app sends
with every interaction unless they chose a language in /settings; the commands' descriptions
and the context menus are translated when the tree syncs, and synced again only when a
translation changes. ``tests.languages.DISCORD`` is the language these tests speak (Brazilian
Portuguese)."""

from __future__ import annotations

import gettext
import json
from collections.abc import Iterator
from typing import Any

import discord
import pytest

from bot import catalogues
from bot.core import i18n, option_texts, texts
from bot.core.captions import ResultView
from bot.core.i18n import ENGLISH, language
from bot.core.people import DISCORD, UserKey
from bot.core.presenters import label
from bot.core.service import progress
from bot.core.service.delivery import result_of
from bot.frontends.discord import views
from tests.conftest import AnyStore, wait_delivered
from tests.e2e.discord.harness import (
    USER,
    Bot,
    edits,
    ephemeral_reply,
    job_of,
    on_original,
    public_id_of,
    start_bot,
)
from tests.fakes.discord_server import FakeDiscordServer, InjectedInteraction
from tests.fakes.flow_server import FakeFlowServer
from tests.languages import DISCORD as SPOKEN
from tests.languages import english_left

LOCALE, CODE = SPOKEN
READER = language(CODE)


@pytest.fixture
def reinstalled() -> Iterator[None]:
    yield
    catalogues.install()


async def result_of_(dc: FakeDiscordServer, inter: InjectedInteraction) -> dict[str, Any]:
    await dc.wait_for(on_original(inter, files=True))
    message = dc.original_message(inter.id)
    assert message is not None
    return message


def labels(message: dict[str, Any]) -> list[list[str]]:
    rows = message["components"]
    assert isinstance(rows, list)
    return [[c["label"] for c in row["components"]] for row in rows]


async def refusal(dc: FakeDiscordServer, prompt: str, locale: str) -> str:
    inter = await dc.slash_command("imagine", {"prompt": prompt}, user_id=USER, locale=locale)
    return str((await ephemeral_reply(dc, inter))["content"])


async def test_a_user_is_answered_in_their_apps_locale(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "SETTLE", 0.1)  # "generating" once a run lasted 0.1 s
    flow.latency = 0.5  # "generating" is shown while the upstream works
    bot = await start_bot(dc, flow, store)
    options = {"model": "nano-banana-2", "count": 2, "seed": 9}
    inter = await dc.slash_command(
        "imagine", {"prompt": "a red fox", **options}, user_id=USER, locale=LOCALE
    )
    message = await result_of_(dc, inter)
    job_id = await job_of(store, message)
    await wait_delivered(store, job_id)
    job = await store.get_job(job_id)
    assert job is not None
    result = result_of(job, await store.results(job_id), bot.service.models)
    shown = ResultView.of(result, bot.service.models, limit=views.MAX_CONTENT, language=READER)
    english = ResultView.of(result, bot.service.models, limit=views.MAX_CONTENT, language=ENGLISH)
    assert shown.caption != english.caption
    # The queue status (the first response), its edit and the caption; the buttons under it.
    first = dc.interaction_responses(inter.id)[0].json
    assert first["data"]["content"] == READER.render(texts.queued(1))
    assert edits(dc, inter) == [READER.render(texts.STARTED), shown.caption]
    assert labels(message) == [[READER.render(label(b)) for b in row] for row in result.buttons]
    # A refusal.
    refused = await refusal(dc, "a fox --count 5", LOCALE)
    assert refused == READER.render(texts.failed(option_texts.bad_count("5")))
    assert await store.language(UserKey(DISCORD, str(USER))) == LOCALE
    await bot.stop()
    assert public_id_of(message) == job.public_id


async def test_a_choice_in_settings_wins_over_the_apps_locale(
    dc: FakeDiscordServer, store: AnyStore, bot: Bot
) -> None:
    opened = await dc.slash_command("settings", {}, user_id=USER, locale="en-US")
    await dc.wait_for(f"/interactions/{opened.id}/")
    panel = dc.original_message(opened.id)
    assert panel is not None
    assert READER.render(i18n._("Language")) not in str(panel["content"])
    chosen = await dc.select(int(panel["id"]), "set:language", [CODE], user_id=USER)
    await dc.wait_for(f"/interactions/{chosen.id}/")
    panel = dc.message(int(panel["id"]))
    # Redrawn in the language chosen, at once, and everything after it.
    assert f"{READER.render(i18n._('Language'))}: {i18n.NAMES[CODE]}" in panel["content"]
    refused = await refusal(dc, "a fox --count 5", "en-US")
    assert refused == READER.render(texts.failed(option_texts.bad_count("5")))
    # Back to the app's language: the bot's default choice.
    again = await dc.select(int(panel["id"]), "set:language", [views.RESET], user_id=USER)
    await dc.wait_for(f"/interactions/{again.id}/")
    refused = await refusal(dc, "a fox --count 6", "en-US")
    assert refused == ENGLISH.render(texts.failed(option_texts.bad_count("6")))


async def test_an_unknown_locale_falls_back_to_english(dc: FakeDiscordServer, bot: Bot) -> None:
    refused = await refusal(dc, "a fox --count 5", "ko")  # Korean: not shipped
    assert refused == ENGLISH.render(texts.failed(option_texts.bad_count("5")))


async def test_descriptions_and_context_menus_are_translated_names_typed_are_not(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: AnyStore, reinstalled: None
) -> None:
    first = await start_bot(dc, flow, store)
    await first.stop()
    assert dc.sync_count == 1
    commands = {c["name"]: c for c in dc.commands()}
    imagine = commands["imagine"]
    assert imagine["description_localizations"][LOCALE] == READER.render(
        i18n.Text(imagine["description"])
    )
    assert not imagine.get("name_localizations")  # everyone types /imagine
    for option in imagine["options"]:
        assert not option.get("name_localizations")  # model, count…: the flags' names
    prompt = next(o for o in imagine["options"] if o["name"] == "prompt")
    described = prompt["description_localizations"][LOCALE]  # its flags stay as they are
    assert described != prompt["description"]
    assert described.endswith(str(texts.FLAGS_HELP))
    menu = commands[str(views.CONTEXT_MENU)]
    assert menu["name_localizations"][LOCALE] == READER.render(views.CONTEXT_MENU)
    # Every shipped language's, and none of the others'.
    shipped = {lc.value for lc in discord.Locale if i18n.pick(lc.value) not in (None, "en")}
    assert set(imagine["description_localizations"]) == shipped

    second = await start_bot(dc, flow, store)  # the same translations: nothing to sync
    await second.stop()
    assert dc.sync_count == 1

    # A translator changed a description: synced again.
    class Changed(gettext.NullTranslations):
        def gettext(self, message: str) -> str:
            return "Crea imágenes nuevas" if message == imagine["description"] else message

    i18n.install({CODE: i18n.Catalogue(Changed())})
    third = await start_bot(dc, flow, store)
    await third.stop()
    assert dc.sync_count == 2
    imagine = next(c for c in dc.commands() if c["name"] == "imagine")
    assert imagine["description_localizations"][LOCALE] == "Crea imágenes nuevas"


async def test_nothing_reaches_a_reader_in_english_anywhere(
    dc: FakeDiscordServer, store: AnyStore, bot: Bot
) -> None:
    """Every delivery point, driven by a user whose app is in another language: no sentence of
    the catalogue reaches them in its English words (an f-string or ``+`` would make them)."""
    since = len(dc.calls)

    async def command(name: str, options: dict[str, object] | None = None) -> InjectedInteraction:
        inter = await dc.slash_command(name, options or {}, user_id=USER, locale=LOCALE)
        await dc.wait_for(f"/interactions/{inter.id}/")
        return inter

    for name in ("help", "settings", "queue", "info", "link"):
        await command(name)
    inter = await dc.slash_command(
        "imagine", {"prompt": "a red fox", "model": "nano-banana-2"}, user_id=USER, locale=LOCALE
    )
    message = await result_of_(dc, inter)
    job_id = await job_of(store, message)
    await wait_delivered(store, job_id)
    job = await store.get_job(job_id)
    assert job is not None
    pressed = await dc.press_button(
        int(message["id"]), f"u:{job.public_id}:1", user_id=USER, locale=LOCALE
    )
    await dc.wait_for(on_original(pressed, files=True))
    await wait_delivered(store, job_id + 1)
    await command("history")
    await command("show", {"job": job.public_id})
    await command("show", {"job": "zzzzzzz"})
    await refusal(dc, "a fox --count 5", LOCALE)
    sent = [c for c in dc.calls[since:] if c.method in ("POST", "PATCH") and c.json]
    left = [
        (c.path, english_left(json.dumps(c.json, ensure_ascii=False, default=str), CODE))
        for c in sent
    ]
    assert [(path, found) for path, found in left if found] == []
    assert len(sent) > 10
