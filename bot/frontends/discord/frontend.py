"""The Discord front end: builds the client and its notifier, runs the client until cancelled,
and attaches to the service once the gateway is ready (from then on answers go out).

A process that doesn't hear Discord users (``BOT_PLATFORMS``) still delivers their answers: it
logs in to the REST API only, which needs no gateway, and attaches at once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from bot.config import ConfigError, Settings
from bot.core.people import DISCORD
from bot.core.ports import Parking
from bot.core.service.api import BotApi
from bot.frontends.discord.client import BananaClient, ShardedBananaClient
from bot.frontends.discord.notifier import DiscordNotifier
from bot.frontends.discord.status import LiveInteractions

log = logging.getLogger(__name__)


class DiscordFrontEnd:
    """``await DiscordFrontEnd(service, settings, parking).run()`` inside ``async with service``;
    ``parking`` is where it notes the posts it points to again and the messages of an answer
    that went (the store)."""

    PLATFORM = DISCORD

    def __init__(
        self,
        service: BotApi,
        settings: Settings,
        parking: Parking,
        *,
        guild_ready_timeout: float = 2.0,
        receive: bool = True,
    ) -> None:
        if settings.discord_token is None:
            raise ValueError("DISCORD_TOKEN is not set")
        self._token = settings.discord_token
        self._service = service
        self._receive = receive
        live = LiveInteractions()
        client = BananaClient
        sharding: dict[str, Any] = {}
        if settings.discord_shard_count is not None:
            client = ShardedBananaClient
            sharding = {"shard_count": settings.discord_shard_count}
            if settings.discord_shards is not None:
                sharding["shard_ids"] = list(settings.discord_shards)
        self.client = client(
            service,
            live,
            parking,
            on_ready=self._ready,
            dev_guild=settings.discord_dev_guild,
            guild_ready_timeout=guild_ready_timeout,
            **sharding,
        )
        self.notifier = DiscordNotifier(self.client, live, service, parking)

    async def run(self) -> None:
        """Log in and connect, serve until cancelled, then close the client cleanly. A token
        Discord refuses is the operator's to fix: one line, without the token (exit 2)."""
        try:
            async with self.client:
                if self._receive:
                    await self.client.start(self._token.reveal())
                    return
                await self.client.login(self._token.reveal())
                self._ready()
                await asyncio.Event().wait()
        except discord.LoginFailure:
            raise ConfigError(
                "DISCORD_TOKEN was refused by Discord: reset it in the Developer Portal (your "
                "application → Bot → Reset Token) and set the new one"
            ) from None
        finally:
            self._service.detach(self.PLATFORM)

    def _ready(self) -> None:
        heard = "" if self._receive else " (delivering answers only)"
        log.info("Discord is ready as %s%s", self.client.user, heard)
        self._service.attach(self.PLATFORM, self.notifier)
