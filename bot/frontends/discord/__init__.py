"""The Discord front end: slash commands, buttons and the channel fallback, on the shared core."""

from bot.frontends.discord.frontend import DiscordFrontEnd

__all__ = ["DiscordFrontEnd"]
