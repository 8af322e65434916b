"""The Telegram front end (python-telegram-bot): ``TelegramFrontEnd(service, settings).run()``."""

from bot.telegram_bot.front_end import TelegramFrontEnd

__all__ = ["TelegramFrontEnd"]
