"""The Discord front end: slash commands, buttons and the channel fallback, on the shared core."""
