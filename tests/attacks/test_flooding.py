"""Attacks that flood a group through the bot: many requests from one member.

Telegram lets a bot send about 20 messages a minute to a group, and the rate limiter makes the
rest wait. Each job costs the group two (its status, which becomes the answer), so one member
with ten jobs could take a minute of the group's budget and hold everyone else's answers. One
member's answers get at most half of a group's rate. And a member who linked a Discord and a
Telegram account is one person with one queue, however many processes share the store.
"""

from __future__ import annotations

import re

import pytest

from bot.core.domain import JobState, Owner, UserKey
from bot.core.errors import InvalidInput
from bot.core.policy import Limits
from bot.core.service import Service
from bot.frontends.telegram import outbound
from tests.attacks.conftest import to_chat, until
from tests.conftest import Sharing
from tests.e2e.telegram_harness import GROUP, OTHER, USER, BotUnderTest


async def _all_done(bot: BotUnderTest, count: int) -> bool:
    jobs = [await bot.store.get_job(n) for n in range(1, count + 1)]
    return all(job is not None and job.state is JobState.DONE for job in jobs)


async def test_one_members_ten_jobs_do_not_hold_back_anothers_answer(
    telegram: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 per 3 s, and a chat's own limit out of the way: the test drains in seconds.
    monkeypatch.setattr(outbound, "GROUP_PERIOD", 3.0)
    monkeypatch.setattr(outbound, "CHAT_RATE", 20.0)
    bot, tg = telegram, telegram.tg
    await bot.start()
    for n in range(10):
        await tg.post_message(GROUP, USER, f"/imagine fox {n} --count 1", chat_type="supergroup")
    # All ten are made; their answers are what the group's rate now holds back.
    await until(lambda: _all_done(bot, 10), timeout=15)
    seen = len(tg.calls)

    asked = await tg.post_message(GROUP, OTHER, "/imagine mine --count 1", chat_type="supergroup")
    asked_id = asked["message"]["message_id"]
    [status] = await tg.wait_for(
        "sendMessage",
        predicate=lambda c: (
            tg.calls.index(c) >= seen
            and c.params.get("reply_parameters", {}).get("message_id") == asked_id
        ),
    )
    # The other member's answer took the next turn, not a place behind the first one's backlog.
    before = [c for c in tg.calls[seen : tg.calls.index(status)] if to_chat(GROUP)(c)]
    assert len(before) <= 2
    await bot.delivered(11, timeout=30)


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
