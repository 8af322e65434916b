"""Attacks through the language a user's app says it is in: Discord's interaction ``locale``
and Telegram's ``language_code`` are the sender's to forge (a modified client, a forged
gateway). Whatever comes, nothing but the shape of a language tag is kept, and every answer is
rendered in a language the bot ships."""

from __future__ import annotations

import pytest

from bot.core import option_texts, texts
from bot.core.i18n import ENGLISH, language
from bot.core.people import TELEGRAM, UserKey
from bot.core.service.identities import Identities
from bot.core.service.languages import Readers
from tests.attacks.conftest import until
from tests.conftest import AnyStore
from tests.e2e.telegram.harness import USER, BotUnderTest, text_of

FORGED = [
    "x" * 10_240,  # 10 KB
    "de" + "-x" * 5000,  # a tag's shape, 10 KB long
    "de\x00\x1b[2J",  # control characters
    "ru\r\nX-Injected: 1",
    "../../../../etc/passwd",
    "'; DROP TABLE languages; --",
    "pt' OR '1'='1",
    "\u202eer",  # a right-to-left override
    "{language}",
    "%s%s%n",
    "ﾟ",
    " ",
]
TAGS = ["de", "pt-BR", "zh-Hans", "es-419", "en-US", "zh_Hans", "tlh"]


@pytest.mark.parametrize("forged", FORGED)
async def test_a_forged_language_tag_is_never_stored_and_answers_stay_in_a_shipped_language(
    store: AnyStore, forged: str
) -> None:
    user = UserKey(TELEGRAM, "666")
    readers = Readers(store, Identities(store))
    assert (await readers.heard(user, "de")).code == "de"
    assert (await readers.heard(user, forged)).code == "de"  # as if the app said nothing
    assert await store.language(user) == "de"  # the last real tag stays
    fresh = Readers(store, Identities(store))  # another process
    assert (await fresh.of(user)).code == "de"
    stranger = UserKey(TELEGRAM, "667")
    assert (await readers.heard(stranger, forged)).code == "en"
    assert await store.language(stranger) is None


async def test_real_language_tags_are_still_kept_as_they_came(store: AnyStore) -> None:
    readers = Readers(store, Identities(store))
    for n, tag in enumerate(TAGS):
        user = UserKey(TELEGRAM, str(n))
        await readers.heard(user, tag)
        assert await store.language(user) == tag


async def test_a_ten_kilobyte_garbage_language_code_on_telegram_gets_an_english_answer(
    telegram: BotUnderTest,
) -> None:
    bot, tg = telegram, telegram.tg
    tg.set_language(USER, "'; DROP TABLE languages; --\x00" + "x" * 10_240)
    await bot.start()
    await tg.post_message(USER, USER, "/imagine a fox --count 5")
    await until(lambda: any("❌" in str(m.get("text")) for m in tg.sent_messages(USER)))
    [answer] = [text_of(c) for c in tg.calls_of("sendMessage")]
    assert answer == ENGLISH.render(texts.failed(option_texts.bad_count("5")))
    assert await bot.store.language(UserKey(TELEGRAM, str(USER))) is None
    tg.set_language(USER, "de")  # a real one after it is heard
    await tg.post_message(USER, USER, "/imagine a fox --count 5")
    await until(lambda: len(tg.calls_of("sendMessage")) == 2)
    assert text_of(tg.calls_of("sendMessage")[-1]) == language("de").render(
        texts.failed(option_texts.bad_count("5"))
    )
