"""The Telegram front end (python-telegram-bot), on the shared core."""
