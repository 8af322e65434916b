"""Attacks that flood a group through the bot: many requests from one member.

Telegram lets a bot send about 20 messages a minute to a group, and the rate limiter makes the
rest wait. Each job costs the group two (its status, which becomes the answer), so one member
with ten jobs could take a minute of the group's budget and hold everyone else's answers. One
member's answers get at most half of a group's rate.
"""

from __future__ import annotations

import pytest

from bot.core.domain import JobState
from bot.frontends.telegram import outbound
from tests.attacks.conftest import to_chat, until
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
