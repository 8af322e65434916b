"""Durable state: jobs, results, settings, the asset cache and usage."""

from bot.store.sqlite import SqliteStore

__all__ = ["SqliteStore"]
