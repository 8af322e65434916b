"""The Discord adapter: slash commands, buttons and the channel fallback, on the shared core."""

from bot.discord_bot.frontend import DiscordFrontEnd

__all__ = ["DiscordFrontEnd"]
