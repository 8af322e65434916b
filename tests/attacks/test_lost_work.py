"""Attacks on "every accepted request gets one answer": restarts, flaky platforms, full disks.

Nothing accepted may be lost or left on "⏳", and a generation that was paid for is not paid
for again when the store has a bad moment.
"""

from __future__ import annotations

from bot.telegram_bot import render
from tests.e2e.telegram_harness import USER, BotUnderTest, png, text_of, uploads

# Telegram.


async def test_a_restart_in_the_middle_of_an_album_loses_nothing(telegram: BotUnderTest) -> None:
    bot, tg = telegram, telegram.tg
    bot.album_wait = 0.1
    await bot.start()
    tg.download_delay = 5.0  # the first process stops while it fetches the album
    photos = [png(color=(0, 90, c)) for c in (1, 2)]
    await tg.post_album(USER, USER, photos, "/imagine keep them --count 1")
    await tg.wait_for("getFile")
    await bot.restart()  # a clean stop, as systemd would do it
    tg.download_delay = 0.0
    await bot.delivered(1)

    assert [u.body for u in uploads(bot.flow)] == photos
    # One status message for the album, picked up again after the restart, gone once answered.
    assert [text_of(c) for c in tg.calls_of("sendMessage")].count(render.RECEIVED) == 1
    assert render.RECEIVED not in [m.get("text") for m in tg.sent_messages(USER)]
    assert await bot.store.pending_keys("album", older_than=0) == []


async def test_a_status_message_failing_once_does_not_drop_the_request(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    tg.fail_next("sendMessage", error_code=500)
    await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1)
    failed, status = tg.calls_of("sendMessage")
    assert failed.error is not None
    assert status.error is None
    assert text_of(status) == render.RECEIVED
    assert len(tg.calls_of("sendPhoto")) == 1


async def test_a_status_message_that_never_goes_through_still_gets_the_answer(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    tg.fail_next("sendMessage", error_code=502, count=100)
    asked = await tg.post_message(USER, USER, "/imagine a fox --count 1")
    await bot.delivered(1, timeout=15)
    [photo] = tg.calls_of("sendPhoto")
    assert photo.error is None
    assert photo.params["reply_parameters"]["message_id"] == asked["message"]["message_id"]
