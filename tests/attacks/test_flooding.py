"""Attacks that flood a chat or a group through the bot: many requests from one member.

A burst of jobs in one chat goes out as fast as Telegram's flood limits let it, and no faster
(each refusal would cost that chat a second or more of silence). Telegram lets a bot send about
20 messages a minute to a group, and the rate limiter makes the rest wait. Each job costs the
group two (its status, which becomes the answer), so one member with ten jobs could take a
minute of the group's budget and hold everyone else's answers. One member's answers get at most
half of a group's rate. And a member who linked a Discord and a Telegram account is one person
with one queue, however many processes share the store.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace

import pytest

from bot.core.domain import GenerationRequest, JobState
from bot.core.errors import InvalidInput
from bot.core.people import Owner, UserKey
from bot.core.policy import Limits
from bot.core.service import Service
from bot.frontends.telegram.line import MESSAGES, TELEGRAM_LIMITS
from tests.attacks.conftest import to_chat, until
from tests.conftest import Sharing
from tests.e2e.telegram.harness import GROUP, OTHER, USER, BotUnderTest, png
from tests.fakes.telegram_server import FloodControl


async def _all_done(bot: BotUnderTest, count: int) -> bool:
    jobs = [await bot.store.get_job(n) for n in range(1, count + 1)]
    return all(job is not None and job.state is JobState.DONE for job in jobs)


async def test_one_members_ten_jobs_do_not_hold_back_anothers_answer(
    telegram: BotUnderTest,
) -> None:
    # 20 per 3 s, and a chat's own limit out of the way: the test drains in seconds.
    bot, tg = telegram, telegram.tg
    bot.flood = replace(TELEGRAM_LIMITS, group_period=3.0, chat_rate=20.0)
    await bot.start()
    for n in range(10):
        await tg.post_message(GROUP, USER, f"/imagine fox {n} --count 1", chat_type="supergroup")
    # All ten are made; their answers are what the group's rate now holds back.
    await until(lambda: _all_done(bot, 10), timeout=15)
    seen = len(tg.calls)

    asked = await tg.post_message(GROUP, OTHER, "/imagine mine --count 1", chat_type="supergroup")
    asked_id = asked["message"]["message_id"]
    await bot.delivered(11, timeout=30)
    # Its first message (its status, or its answer if that came before the status had its
    # turn) took the next turn, not a place behind the first member's backlog.
    first = next(
        i
        for i, c in enumerate(tg.calls)
        if i >= seen and c.params.get("reply_parameters", {}).get("message_id") == asked_id
    )
    before = [c for c in tg.calls[seen:first] if to_chat(GROUP)(c)]
    assert len(before) <= 2


async def linked(service: Service, first: UserKey, second: UserKey) -> None:
    """``first`` and ``second`` joined by /link, as one person."""
    offer = await service.link(first)
    code = re.search(r"code: (\S+)", offer.text)
    assert code is not None
    assert (await service.link(second, code[1])).linked


async def test_a_linked_member_gets_one_queue_across_both_platforms_and_processes(
    sharing: Sharing,
) -> None:
    limits = Limits(queued_per_user=2)
    first, _, _ = await sharing(limits=limits)
    second, _, _ = await sharing(limits=limits)
    for service in (first, second):
        service.scheduler.accounts["alice@example.com"].limit = 0.0  # no room: all wait
    tg, dc = UserKey("telegram", "42"), UserKey("discord", "555")
    await linked(first, tg, dc)
    on_telegram = Owner(tg.platform, tg.user_id, chat_id="tg-chat")
    on_discord = Owner(dc.platform, dc.user_id, chat_id="dc-chat")

    await first.submit(on_telegram, "one --count 1")
    await second.submit(on_discord, "two --count 1")
    # The person's queue is full, whichever account, platform or process asks next.
    for service, asker in ((first, on_telegram), (second, on_telegram), (first, on_discord)):
        with pytest.raises(InvalidInput, match="already have 2 jobs waiting"):
            await service.submit(asker, "three --count 1")


async def test_a_burst_of_jobs_meets_no_flood_wait_at_telegrams_own_limits(
    telegram: BotUnderTest,
) -> None:
    """The bot's own figures (Telegram's) against a Telegram that enforces the limits its FAQ
    gives: three jobs at once cost the chat at most six messages (an answer each, and the
    status messages that had their turn before their answers), none refused for flooding."""
    bot, tg = telegram, telegram.tg
    bot.flood = TELEGRAM_LIMITS
    tg.flood = FloodControl()
    await bot.start()
    for n in range(3):
        await tg.post_message(USER, USER, f"/imagine fox {n} --count 1")
    for job_id in range(1, 4):
        await bot.delivered(job_id, timeout=15)
    sent = [c for c in tg.calls if to_chat(USER)(c) and c.method in MESSAGES]
    assert 4 <= len(sent) <= 6  # the first job's status message goes at once, in a rested chat
    assert [c.error for c in sent] == [None] * len(sent)  # no 429: no second of silence
    # A chat's short burst, then about one a second: the fourth waited its turn.
    assert sent[3].at - sent[0].at >= 1.0


async def test_a_members_flood_of_refused_commands_does_not_hold_back_anothers_answer(
    telegram: BotUnderTest,
) -> None:
    """Each refused command is answered in the group, from the group's budget (20 messages a
    minute): a member typing eight of them spends half a minute of it. They take turns
    with the other members' messages, so another's answer is not held behind them."""
    bot, tg = telegram, telegram.tg
    bot.flood = TELEGRAM_LIMITS
    await bot.start(limits=Limits(queued_per_user=1))
    bot.flow.hold()  # nothing is answered yet
    for held, words in enumerate(("a fox", "a cat"), start=1):  # Ann may run two at once
        await tg.post_message(GROUP, USER, f"/imagine {words} --count 1", chat_type="supergroup")
        await until(lambda: len(bot.flow.held) == held)  # noqa: B023 (awaited in this turn)
    await tg.post_message(GROUP, USER, "/imagine an owl --count 1", chat_type="supergroup")
    await until(lambda: bot.service.scheduler.position(3) > 0)  # and her queue is full now
    for n in range(8):
        await tg.post_message(GROUP, USER, f"/imagine more {n} --count 1", chat_type="supergroup")
    asked = await tg.post_message(GROUP, OTHER, "/imagine mine --count 1", chat_type="supergroup")
    await until(lambda: len(bot.flow.held) == 3)  # Ann's two (she may run two), and Bob's
    bot.flow.release()
    mine = await bot.delivered(4, timeout=30)
    assert mine.public_id
    said = [c for c in tg.calls if to_chat(GROUP)(c) and c.method in MESSAGES]
    answered = next(
        n
        for n, c in enumerate(said)
        if c.params.get("reply_parameters", {}).get("message_id") == asked["message"]["message_id"]
    )
    refusals = [c for c in said[:answered] if "already have" in str(c.params.get("text"))]
    assert len(refusals) <= 3, len(refusals)


async def test_one_users_flood_of_commands_does_not_stall_everyone_elses_updates(
    telegram: BotUnderTest,
) -> None:
    """Each command is answered in its chat at about one message a second: a user typing
    faster builds a line of answers in their own chat. Their updates wait among themselves,
    not in the places every other user's are handled in (there were 256 for all: three
    hundred /help held them for minutes)."""
    bot, tg = telegram, telegram.tg
    bot.flood = replace(TELEGRAM_LIMITS, chat_rate=5.0)  # the flood drains in a minute
    await bot.start()
    for _ in range(300):
        await tg.post_message(USER, USER, "/help")
    await until(lambda: any(to_chat(USER)(c) for c in tg.calls_of("sendMessage")))
    await tg.post_message(OTHER, OTHER, "/help")
    await until(lambda: any(to_chat(OTHER)(c) for c in tg.calls_of("sendMessage")), timeout=10)
    await bot.stop()  # once the updates being handled are: the rest of the flood was dropped
    flooded = [c for c in tg.calls_of("sendMessage") if to_chat(USER)(c)]
    assert len(flooded) < 100, len(flooded)


async def test_an_album_sent_after_a_burst_of_commands_is_still_one_request(
    telegram: BotUnderTest,
) -> None:
    """A user's updates wait among themselves while their answers wait for the chat's budget
    (held: an album's items come one after another, each only parked, so they follow each
    other through the first place freed; waiting a second apart, the album's quiet moment
    would come between two of them and split it)."""
    bot, tg = telegram, telegram.tg
    bot.flood = TELEGRAM_LIMITS
    await bot.start()
    for _ in range(8):  # three answers at once, then one a second: the user's places held
        await tg.post_message(USER, USER, "/help")
    await until(lambda: len([c for c in tg.calls_of("sendMessage") if to_chat(USER)(c)]) >= 3)
    for n in range(3):
        caption = "/imagine mix these --count 1" if n == 0 else None
        await tg.post_photo(USER, USER, png(), media_group_id="album-1", caption=caption)
    await bot.stored(1, timeout=10)
    job = await bot.job(1)
    assert isinstance(job.request, GenerationRequest)
    assert len(job.request.references) == 3
    assert await bot.store.get_job(2) is None


async def test_albums_sent_together_are_each_one_request_with_every_photo(
    telegram: BotUnderTest,
) -> None:
    """Three albums forwarded at once are thirty updates from one sender in one batch: each
    item is only parked, so none is dropped as a flood (a request made of the photos that
    were left, paid for, would be a wrong answer said by nobody)."""
    bot, tg = telegram, telegram.tg
    for n in range(3):
        photos = [png(color=(n, i, 9)) for i in range(10)]
        await tg.post_album(USER, USER, photos, f"/imagine album {n} --count 1")
    await bot.start()  # all thirty come in its first getUpdates
    for job_id in (1, 2, 3):
        await bot.stored(job_id, timeout=10)
    for job_id in (1, 2, 3):
        job = await bot.job(job_id)
        assert isinstance(job.request, GenerationRequest)
        assert len(job.request.references) == 10, (job_id, len(job.request.references))


async def test_a_stop_does_not_wait_for_a_busy_groups_replies(
    telegram: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    """Eighty /help in a group wait for its budget (20 messages a minute): four minutes of
    replies. A stop waits for the updates being handled, and each waited for its reply's turn:
    the front end's cancellation took 101 s (the bot's second one cut it, leaving the handlers
    to die at exit). Replies still waiting are not sent; a job's answer caught waiting is
    delivered once the bot is back."""
    caplog.set_level(logging.INFO)
    bot, tg = telegram, telegram.tg
    bot.flood = TELEGRAM_LIMITS
    await bot.start()
    bot.flow.hold()
    await tg.post_message(GROUP, USER, "/imagine a fox --count 1", chat_type="supergroup")
    await until(lambda: len(bot.flow.held) == 1)
    for sender in range(100, 104):
        for _ in range(20):
            await tg.post_message(GROUP, sender, "/help", chat_type="supergroup")
    await until(lambda: sum(1 for c in tg.calls if to_chat(GROUP)(c)) >= 20, timeout=30)
    bot.flow.release()
    await until(lambda: _all_done(bot, 1), timeout=10)
    began = asyncio.get_running_loop().time()
    await bot.stop()
    assert asyncio.get_running_loop().time() - began < 10  # one cancellation: it took 101 s
    assert "messages waiting for their turn are not sent" in caplog.text
    assert "handling a Telegram update failed" not in caplog.text
    assert not tg.calls_of("editMessageMedia")  # its answer waited for the group's budget
    await bot.start()
    job = await bot.delivered(1, timeout=30)
    assert job.state is JobState.DONE


async def test_a_members_press_does_not_wait_behind_their_own_commands_replies(
    telegram: BotUnderTest,
) -> None:
    """A member's commands wait for a busy group's budget (20 messages a minute), four at a
    time and sixteen more behind them. A press is answered beside the chat, where no flood limit
    holds it: it must not wait behind those replies too (a cancel, an upscale, for minutes)."""
    bot, tg = telegram, telegram.tg
    bot.flood = TELEGRAM_LIMITS
    await bot.start()
    await tg.post_message(GROUP, OTHER, "/help", chat_type="supergroup")
    await tg.wait_for("sendMessage", predicate=to_chat(GROUP))
    [shown] = tg.sent_messages(GROUP)
    for _ in range(20):  # the group's budget, spent
        await tg.post_message(GROUP, OTHER, "/help", chat_type="supergroup")
    await until(lambda: sum(1 for c in tg.calls if to_chat(GROUP)(c)) >= 20, timeout=30)
    for _ in range(10):
        await tg.post_message(GROUP, USER, "/help", chat_type="supergroup")
    await asyncio.sleep(0.5)  # their replies wait for the group's budget
    query = await tg.press_button(GROUP, USER, shown["message_id"], "d:999:0")
    await tg.wait_for(  # beside the chat: not a minute behind ten replies
        "answerCallbackQuery", predicate=lambda c: c.params["callback_query_id"] == query
    )
    await bot.stop()
