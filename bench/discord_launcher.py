"""``python -m bench.discord_launcher``: ``python -m bot``, with discord.py aimed at a fake Discord.

discord.py has no setting for the addresses of Discord's REST API and gateway, so the end-to-end
benchmark points them at its fake here, in the bot's own process (as the tests'
``FakeDiscordServer.patch_discord`` does in theirs), then runs the bot's entry point unchanged.
``BENCH_DISCORD_API`` is the fake's REST root (``http://host:port/api/v10``),
``BENCH_DISCORD_GATEWAY`` its gateway (``ws://host:port``); everything else is the bot's own
configuration from the environment.
"""

from __future__ import annotations

import os
import sys

import discord.asset
import discord.gateway
import discord.http
import yarl

from bot.__main__ import main


def aim_at(api: str, gateway: str) -> None:
    discord.http.Route.BASE = api  # REST and the interaction webhooks
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)  # dialled directly
    discord.asset.Asset.BASE = api.rsplit("/api/", 1)[0]  # avatars and icons: no internet


if __name__ == "__main__":
    aim_at(os.environ["BENCH_DISCORD_API"], os.environ["BENCH_DISCORD_GATEWAY"])
    sys.exit(main([]))
