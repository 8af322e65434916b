"""Nano Banana image bot for Discord and Telegram, on the useapi.net Google Flow API."""

__version__ = "0.1.0"
