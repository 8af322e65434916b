"""A double tap counts once: the same press while one is admitted, or just after, is refused."""

from __future__ import annotations

import pytest

from bot.core import texts
from bot.core.errors import InvalidInput
from bot.core.service.fairness import Once


def test_a_press_counts_once_within_its_window() -> None:
    now = [100.0]
    once = Once(5.0, lambda: now[0])
    with once.hold("d:1:0"):
        with pytest.raises(InvalidInput) as busy, once.hold("d:1:0"):
            pass
        assert busy.value.message == texts.ON_ITS_WAY
        with once.hold("d:2:0"):  # another job's button is another press
            pass
    now[0] += 4.9
    with pytest.raises(InvalidInput), once.hold("d:1:0"):
        pass
    now[0] += 0.2
    with once.hold("d:1:0"):  # a deliberate second press, later, counts
        pass


def test_a_press_the_store_will_know_is_refused_only_while_admitted() -> None:
    once = Once(5.0, lambda: 0.0)
    with (
        once.hold("u:1:1:2k", linger=False),
        pytest.raises(InvalidInput),
        once.hold("u:1:1:2k", linger=False),
    ):
        pass
    with once.hold("u:1:1:2k", linger=False):  # queued by now: the store refuses it from here
        pass


def test_a_refused_press_leaves_the_key_free() -> None:
    once = Once(5.0, lambda: 0.0)
    with pytest.raises(RuntimeError), once.hold("u:1:1:2k"):
        raise RuntimeError("the queue was full")
    with once.hold("u:1:1:2k"):
        pass
