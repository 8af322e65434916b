"""What the store remembers about each upstream account (``bot.store``'s ``*_accounts``): the
ids the references uploaded to it got (the asset cache), and the concurrency it was found to
take, so that a restart starts from it instead of ramping up from the floor again. A part of
``ports.Store``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class AccountMemory(Protocol):
    async def cached_asset(self, sha256: str, account: str, *, max_age: float) -> str | None:
        """The id an upload of this content got on ``account``, if younger than ``max_age`` s."""
        ...

    async def cache_asset(self, sha256: str, account: str, media_id: str) -> None: ...

    async def forget_assets(self, account: str, sha256s: Sequence[str]) -> None: ...

    async def account_limits(self) -> dict[str, float]:
        """The concurrency each upstream account was last found to take, by e-mail."""
        ...

    async def save_account_limits(self, limits: Mapping[str, float]) -> None:
        """Remember these accounts' concurrency (others keep what they had)."""
        ...
