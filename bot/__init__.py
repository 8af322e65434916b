"""Nano Banana image bot for Discord and Telegram, on the Google Flow API and the other roads."""

__version__ = "0.1.0"
