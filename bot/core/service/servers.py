"""Server controls: what a server's admins (Discord: Manage Server; a Telegram group's
administrators) choose for the bot there — on or off, the channels it answers in, the members'
default model, their daily images, and whether others may press a member's buttons.

Only the front end can tell who administers a server (it asks the platform): it vouches for
that before it calls ``update``. The settings apply in admission (``rules``) and to presses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.core import option_texts, rules_texts
from bot.core.errors import InvalidInput
from bot.core.models_table import ModelTable
from bot.core.people import Owner
from bot.core.ports import Store
from bot.core.presenters import ServerPanel

# Discord's cap on the values of one select menu, and so on the channels one panel can pick.
MAX_CHANNELS = 25
MAX_DAILY_IMAGES = 100_000


class Servers:
    def __init__(self, store: Store, models: ModelTable) -> None:
        self._store = store
        self._models = models

    async def panel(self, owner: Owner) -> ServerPanel:
        """The settings of the server ``owner`` asks in."""
        server = _server_of(owner)
        current = await self._store.server_settings(owner.platform, server)
        return ServerPanel.of(current, self._models)

    async def update(self, owner: Owner, **changes: Any) -> ServerPanel:
        """Change some of the settings of the server ``owner`` asks in; ``owner`` administers
        it (the front end has checked). Recorded with who and when, as admins' actions are."""
        server = _server_of(owner)
        current = await self._store.server_settings(owner.platform, server)
        updated = replace(current, **self._cleaned(changes))
        await self._store.save_server_settings(owner.platform, server, updated)
        what = " ".join(f"{name}={value}" for name, value in sorted(changes.items()))
        await self._store.audit(owner.user, "server", f"{owner.platform}:{server} {what}")
        return ServerPanel.of(updated, self._models)

    def _cleaned(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("enabled", "shared_buttons"):
                clean[name] = bool(value)
            elif name == "channels":
                channels = tuple(dict.fromkeys(str(c) for c in value))
                if len(channels) > MAX_CHANNELS or not all(0 < len(c) <= 32 for c in channels):
                    raise ValueError(f"not up to {MAX_CHANNELS} channel ids: {channels!r}")
                clean[name] = channels
            elif name == "model":
                spec = None if value is None else self._models.resolve(str(value))
                if value is not None and spec is None:
                    raise InvalidInput(option_texts.unknown_model(str(value), self._models))
                clean[name] = spec.id if spec else None
            elif name == "daily_images":
                if not 0 <= int(value) <= MAX_DAILY_IMAGES:
                    raise ValueError(f"a daily limit out of range: {value!r}")
                clean[name] = int(value)
            else:
                raise ValueError(f"unknown server setting {name!r}")
        return clean


def _server_of(owner: Owner) -> str:
    if owner.server is None:
        raise InvalidInput(rules_texts.SERVER_ONLY)
    return owner.server
