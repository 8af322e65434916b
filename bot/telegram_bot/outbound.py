"""Every request the bot sends to Telegram passes here (python-telegram-bot's rate limiter is
the one hook all of them go through): held to Telegram's flood limits, and its texts cut to
Telegram's lengths, so that no answer is lost to "message is too long" whatever it quotes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

# Bot API: message text 1-4096 characters, captions 0-1024, callback query answers 0-200.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ALERT = 200

Json = dict[str, Any]


def clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, counted as Telegram counts them (UTF-16 units)."""
    units = text.encode("utf-16-le")
    if len(units) <= 2 * limit:
        return text
    # "ignore" drops half of a surrogate pair cut in two.
    return units[: 2 * (limit - 1)].decode("utf-16-le", errors="ignore") + "…"


class Outbound(AIORateLimiter):
    """``AIORateLimiter`` (throttling, retrying flood waits) that also clips texts."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | Json | list[Json]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | Json | list[Json]:
        # ``data`` is the request's own parameters (ExtBot passes it in ``args`` as well).
        text_limit = MAX_ALERT if endpoint == "answerCallbackQuery" else MAX_TEXT
        for field, limit in (("text", text_limit), ("caption", MAX_CAPTION)):
            value = data.get(field)
            if isinstance(value, str):
                data[field] = clip(value, limit)
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )
