"""Attacks with long input that the bot echoes, and with lists longer than a message.

Every text is clipped to the platform's limit where the platform sends it, and the core quotes
at most a short piece of what the user typed.
"""

from __future__ import annotations

from typing import Any

from bot.core import models_file, option_texts, texts
from bot.core.models_table import ModelTable
from bot.core.policy import Limits
from bot.store.sqlite import SqliteStore
from tests.attacks.conftest import until
from tests.e2e.discord import harness as discord_harness
from tests.e2e.telegram.harness import USER, BotUnderTest, text_of
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import MAX_TEXT


def test_refusals_quote_only_a_short_piece_of_what_was_typed() -> None:
    models = ModelTable.builtin()
    huge = "x" * 4000
    for sentence in (
        option_texts.unknown_model(huge, models),
        option_texts.bad_count(huge),
        option_texts.bad_seed(huge),
        option_texts.bad_ratio(huge, models.all_ratios()),
        option_texts.unknown_option("--" + huge),
        option_texts.option_needs_value("--" + huge),
        texts.rejected(huge),
        option_texts.bad_resolution(huge, ("2k", "4k")),
    ):
        assert len(sentence) < 400, sentence[:80]
        assert "x" * 57 + "…" in sentence


async def test_a_four_thousand_character_model_name_gets_an_answer_on_telegram(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    await bot.start()
    await tg.post_message(USER, USER, "/imagine a fox --model " + "m" * 4000)
    await until(lambda: any("❌" in str(m.get("text")) for m in tg.sent_messages(USER)))
    [answer] = [str(m.get("text")) for m in tg.sent_messages(USER)]  # no "⏳" left behind
    assert answer.startswith("❌ There is no model called “" + "m" * 59 + "…”")
    assert len(answer) <= MAX_TEXT


async def test_every_telegram_text_is_clipped_where_it_is_sent(telegram: BotUnderTest) -> None:
    """The one place the bot sends to Telegram clips texts, captions and alerts."""
    bot, tg = telegram, telegram.tg
    models = models_file.merged(
        ModelTable.builtin(),
        {"models": {f"model-{'a' * 30}-{n}": {"aliases": [f"a{n}"]} for n in range(200)}},
    )
    await bot.start(models=models)
    await tg.post_message(USER, USER, "/help")  # lists every model: far over 4096 characters
    [help_text] = await tg.wait_for("sendMessage")
    assert help_text.error is None
    assert len(text_of(help_text)) == MAX_TEXT
    assert text_of(help_text).endswith("…")
    await tg.post_message(USER, USER, "/settings")
    await tg.wait_for("sendMessage", count=2)
    panel_id = tg.sent_messages(USER)[-1]["message_id"]
    query = await tg.press_button(USER, USER, panel_id, "set:m:unknown")  # lists every model too
    [answered] = await tg.wait_for("answerCallbackQuery")
    assert answered.error is None
    assert len(str(answered.params["text"])) <= 200
    assert query in tg.answered_callbacks


async def test_a_queue_longer_than_a_discord_message_is_still_listed(
    dc: FakeDiscordServer, flow: FakeFlowServer, store: SqliteStore
) -> None:
    bot = await discord_harness.start_bot(dc, flow, store, limits=Limits(queued_per_user=40))
    try:
        bot.service.scheduler.accounts["alice@example.com"].limit = 0.0  # everything waits
        for n in range(30):
            prompt = "*_`|~" * 12 + str(n)  # markdown to escape: each line doubles
            await dc.slash_command(
                "imagine", {"prompt": prompt, "count": 1}, user_id=discord_harness.USER
            )
            job_id = n + 1
            await until(lambda: bot.service.scheduler.position(job_id) > 0)  # noqa: B023 - awaited here
        listing = await dc.slash_command("queue", {}, user_id=discord_harness.USER)
        (reply,) = await dc.wait_for(f"/interactions/{listing.id}/")
        assert reply.status in (200, 204)
        content: Any = reply.json["data"]["content"]
        first = await bot.store.get_job(1)
        assert first is not None
        assert content.startswith(f"**#{first.public_id}**")
        assert len(content) <= 2000
        assert texts.failed(texts.INTERNAL) not in content
    finally:
        await bot.stop()
