"""The rules behind the operator's controls, without I/O: an operator problem's kind of
incident, how blocked words match, BOT_BLOCKED_WORDS, and what a user reads of their day."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.core import admin_texts, rules_texts, texts
from bot.core.service.incidents import incident_kind
from bot.core.service.rules import blocked_pattern, phrase_of
from bot.core.upstream import (
    AccountNotFound,
    AuthError,
    InsufficientCredits,
    ModelUnavailable,
    OperatorError,
    PaymentError,
    QuotaExhausted,
    SessionExpired,
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AuthError("Unauthorized", status=401), "auth"),
        (PaymentError("no subscription", status=402), "payment"),
        (InsufficientCredits("need 4, have 1", status=402, required=4, available=1), "payment"),
        (AccountNotFound("not found", status=404), "account_missing"),
        (SessionExpired("Failed to refresh session.", status=596), "session"),
        (QuotaExhausted("daily quota used up"), "quota"),
        (ModelUnavailable("model retired"), "model"),
        (OperatorError("something new"), "account_missing"),
    ],
)
def test_an_operator_problem_is_an_incident_of_its_kind(error: OperatorError, kind: str) -> None:
    # By the documented tree, not the exact class: a subclass is its base's kind.
    assert incident_kind(error) == kind
    assert kind in admin_texts.ADMIN_REASONS


def test_blocked_phrases_match_whole_words_in_any_case() -> None:
    pattern = blocked_pattern(("red fox", "c++", "ugly"))
    assert pattern.search("A Red   Fox jumps")
    assert pattern.search("so UGLY.")
    assert pattern.search("write c++ code")
    for allowed in ("a redfox", "uglyduckling", "red, fox", "the ugly_duckling"):
        assert not pattern.search(allowed), allowed


def test_a_phrase_is_kept_as_it_is_matched() -> None:
    assert phrase_of("  Grey\t WOLF ") == "grey wolf"
    assert phrase_of("x" * 101) is None
    assert phrase_of("!!!") is None
    assert phrase_of("") is None


def load(**extra: str) -> Settings:
    return Settings.from_env({"USEAPI_TOKEN": "useapi-token", **extra}, env_file=None)


def test_blocked_words_come_as_a_list_or_a_file(tmp_path: Path) -> None:
    assert load(BOT_BLOCKED_WORDS="Ugly, red  fox,,ugly").blocked_words == ("ugly", "red fox")
    words = tmp_path / "words.txt"
    words.write_text("# one a line\nUgly\n\nred, fox\n", encoding="utf-8")
    assert load(BOT_BLOCKED_WORDS=f"@{words}").blocked_words == ("ugly", "red, fox")
    with pytest.raises(ConfigError, match=r"BOT_BLOCKED_WORDS: .*missing.txt can't be read"):
        load(BOT_BLOCKED_WORDS=f"@{tmp_path}/missing.txt")
    with pytest.raises(ConfigError, match="BOT_BLOCKED_WORDS: '!!!' is not a word or phrase"):
        load(BOT_BLOCKED_WORDS="fine, !!!")


def test_a_users_day_in_one_sentence() -> None:
    assert rules_texts.usage(3, 20) == (
        "Today you've asked for 3 of your 20 images; 17 left. "
        "Days end at midnight UTC; failed jobs, and those cancelled while they wait, "
        "don't count."
    )
    assert rules_texts.usage(1, 0).startswith(
        "Today you've asked for 1 image; you have no daily limit."
    )
    assert "In this server: 5 of 5 per member; 0 left." in rules_texts.usage(7, 0, (5, 5))
    assert texts.queued(1, paused=True).startswith("⏸ Queued — the operator has paused")
