"""Attacks on /show, /history and /link: guessing ids and codes, reading other chats' jobs.

A public id is 7 random characters (≈2.4·10¹⁰ of them), and even a right guess shows nothing:
/show answers a job from another chat exactly as it answers an id that names no job. A link code
is tried a handful of times per account, then refused even when right; only its hash is kept.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from bot.core import history_texts, texts
from bot.core.buttons import Action, Button
from bot.core.errors import InvalidInput
from bot.core.people import Owner, UserKey
from bot.core.service.identities import MAX_TRIES
from tests.attacks.conftest import to_chat
from tests.e2e.discord import harness as discord_harness
from tests.e2e.telegram.harness import GROUP, OTHER, USER, BotUnderTest, text_of
from tests.fakes.discord_server import FLAG_EPHEMERAL, FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer


def stranger(n: int = 0) -> Owner:
    return Owner("console", f"stranger{n}", chat_id="elsewhere")


async def refusal(coroutine: Any) -> str:
    with pytest.raises(InvalidInput) as refused:
        await coroutine
    return refused.value.message


async def test_guessing_another_chats_public_id_gets_the_unknown_id_answer(
    make_service: Any,
) -> None:
    service, told = await make_service()
    made = await service.submit(Owner("console", "1", chat_id="chat"), "a private fox --count 1")
    await told.wait_answered(made.job_id)
    real, invented = made.public_id, "zzzzzzz" if made.public_id != "zzzzzzz" else "yyyyyyy"
    assert await refusal(service.show(stranger(1), real)) == history_texts.no_such_job(real)
    assert await refusal(service.show(stranger(2), invented)) == history_texts.no_such_job(invented)
    # The job's number (what buttons carried before) is no public id: no enumeration by it.
    assert await refusal(service.show(stranger(3), str(made.job_id))) == history_texts.no_such_job(
        str(made.job_id)
    )
    # Refused, it was not shown there: its buttons still don't work there.
    assert (
        await refusal(service.press(stranger(4), Button(Action.REROLL, real)))
        == texts.JOB_NOT_FOUND
    )
    assert not await service.store.shown_in(made.job_id, stranger().chat)


async def test_a_forged_show_button_from_another_chat_gets_nothing(make_service: Any) -> None:
    service, told = await make_service()
    made = await service.submit(Owner("console", "1", chat_id="chat"), "a private fox --count 1")
    await told.wait_answered(made.job_id)
    forged = Button(Action.SHOW, made.public_id)
    assert await refusal(service.press_show(stranger(), forged)) == history_texts.no_such_job(
        made.public_id
    )
    forged_old = Button(Action.SHOW, str(made.job_id))  # an internal number in a forged button
    assert await refusal(service.press_show(stranger(5), forged_old)) == history_texts.no_such_job(
        str(made.job_id)
    )


async def test_guessing_link_codes_is_stopped_after_a_few_tries(make_service: Any) -> None:
    service, _ = await make_service()
    victim = UserKey("telegram", "42")
    code = re.search(r"code: (\S+)", (await service.link(victim)).text)
    assert code is not None
    attacker = UserKey("discord", "666")
    for n in range(MAX_TRIES):
        assert await refusal(service.link(attacker, f"{n:08d}")) == history_texts.LINK_BAD_CODE
    assert await refusal(service.link(attacker, code[1])) == history_texts.LINK_TOO_MANY
    assert not (await service.store.identity(victim)).linked
    # The victim's code still works for the victim's own other account.
    assert (await service.link(UserKey("discord", "555"), code[1])).linked


async def test_a_link_code_is_kept_as_a_hash_and_never_logged(
    make_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service, _ = await make_service()
    code = re.search(r"code: (\S+)", (await service.link(UserKey("telegram", "42"))).text)
    assert code is not None
    plain = code[1].replace("-", "")
    assert plain not in caplog.text
    assert code[1] not in caplog.text
    store = service.store
    if hasattr(store, "reader"):
        async with store.reader.execute("SELECT code_hash FROM link_codes") as cur:
            kept = [str(row[0]) async for row in cur]
    else:
        kept = [
            str(row["code_hash"]) for row in await store._query("SELECT code_hash FROM link_codes")
        ]
    assert len(kept) == 1
    assert plain not in kept[0]


async def test_show_of_a_job_from_another_chat_is_refused_on_telegram(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    await tg.post_message(USER, USER, "/imagine a private fox --count 1")
    made = (await bot.delivered(1)).public_id
    await tg.post_message(GROUP, OTHER, f"/show {made}", chat_type="supergroup")
    [answer] = await tg.wait_for("sendMessage", predicate=to_chat(GROUP))
    assert text_of(answer) == history_texts.no_such_job(made)
    assert [c for c in tg.calls if to_chat(GROUP)(c) and c.method != "sendMessage"] == []
    assert not await bot.store.shown_in(1, f"telegram:{GROUP}")


async def test_show_of_a_job_from_another_chat_is_refused_on_discord(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: Any
) -> None:
    bot = await discord_harness.start_bot(dc, flow, store)
    try:
        inter = await dc.slash_command(
            "imagine", {"prompt": "a private fox", "count": 1}, user_id=discord_harness.USER
        )
        await dc.wait_for(discord_harness.on_original(inter, files=True))
        result = dc.original_message(inter.id)
        assert result is not None
        made = discord_harness.public_id_of(result)
        # Another user, in their DM with the bot.
        show = await dc.slash_command(
            "show", {"job": made}, user_id=discord_harness.OTHER, guild=False
        )
        (reply,) = await dc.wait_for(f"/interactions/{show.id}/")
        assert reply.json["type"] == 4  # answered at once, privately: nothing was deferred
        assert reply.json["data"]["flags"] & FLAG_EPHEMERAL
        assert reply.json["data"]["content"] == texts.failed(history_texts.no_such_job(made))
        assert not reply.json["data"].get("attachments")
    finally:
        await bot.stop()


async def test_odd_numbers_for_a_job_are_an_unknown_job(make_service: Any) -> None:
    service, _ = await make_service()
    for typed in ("9" * 30, "²", "0", "-1", "1.5"):
        assert await service.find_job(typed) is None
        assert await refusal(service.show(stranger(), typed)) == history_texts.no_such_job(typed)
