"""Attacks through editing a message the bot read: Telegram sends the whole message again, and
the job it asked for is replaced while it waits (the edit cancels it and asks again)."""

from __future__ import annotations

from bot.core.domain import GenerationRequest, JobState
from tests.attacks.conftest import until
from tests.e2e.telegram.harness import USER, BotUnderTest


async def test_a_message_edited_while_it_is_being_read_asks_for_one_job(
    telegram: BotUnderTest,
) -> None:
    """An edit that comes while the message's own job is still in its checks (or its status
    message waits for the chat's budget) found no job to replace, and asked for a second:
    two pictures paid for one message."""
    bot, tg = telegram, telegram.tg
    # The new version's status is said on the old one's message: the same words, unchanged.
    bot.refusals.append("editMessageText: Bad Request: message is not modified")
    await bot.start()
    bot.service.scheduler.accounts["alice@example.com"].limit = 0.0  # everything waits
    asked = await tg.post_message(USER, USER, "a lighthouse --count 1")
    message_id = asked["message"]["message_id"]
    await tg.edit_message(USER, message_id, "a lighthouse at night --count 1")
    await until(lambda: bot.service.scheduler.position(2) > 0)
    first, second, third = [await bot.store.get_job(n) for n in (1, 2, 3)]
    assert third is None
    assert first is not None
    assert first.state is JobState.CANCELLED
    assert second is not None
    assert isinstance(second.request, GenerationRequest)
    assert second.request.prompt == "a lighthouse at night"
