"""Attacks through who a message claims to be from.

Telegram shows a group's anonymous admins and channels posting in groups as placeholder users
(1087968824 "GroupAnonymousBot", 136817688 "Channel_Bot") with the real sender in
``sender_chat``. Keyed by the placeholder, every anonymous admin and channel on Telegram would
share one queue, one daily quota and one /queue listing: one could fill the queue for all, and
read and cancel the others' jobs.
"""

from __future__ import annotations

from bot.core.policy import Limits
from tests.attacks.conftest import to_chat, until
from tests.e2e.telegram.harness import GROUP, BotUnderTest, text_of
from tests.fakes.telegram_server import ANONYMOUS_ADMIN, CHANNEL_BOT

OTHER_GROUP = -1009876543210
CHANNEL = -1001111111111


async def test_anonymous_admins_and_channels_are_each_their_own_user(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start(limits=Limits(queued_per_user=1))
    bot.service.scheduler.accounts["alice@example.com"].limit = 0.0  # every job keeps waiting
    for chat, placeholder, sender, prompt in (
        (GROUP, ANONYMOUS_ADMIN, GROUP, "one"),
        (OTHER_GROUP, ANONYMOUS_ADMIN, OTHER_GROUP, "two"),
        (OTHER_GROUP, CHANNEL_BOT, CHANNEL, "three"),
    ):
        await tg.post_message(
            chat, placeholder, f"/imagine {prompt} --count 1", chat_type="supergroup",
            sender_chat=sender,
        )  # fmt: skip
    await until(lambda: bot.service.scheduler.position(3) > 0)  # nobody's queue was full
    owners = [(await bot.job(i)).owner.user_id for i in (1, 2, 3)]
    assert owners == [str(GROUP), str(OTHER_GROUP), str(CHANNEL)]

    # The group's anonymous admins see the group's jobs only.
    await tg.post_message(
        GROUP, ANONYMOUS_ADMIN, "/queue", chat_type="supergroup", sender_chat=GROUP
    )
    [listing] = await tg.wait_for(
        "sendMessage", predicate=lambda c: to_chat(GROUP)(c) and "Your jobs" in text_of(c)
    )
    one = (await bot.job(1)).public_id
    assert text_of(listing).splitlines()[1:] == [f"#{one} “one” — ⏳ Queued — you're next."]
