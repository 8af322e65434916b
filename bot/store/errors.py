"""What opening a store can fail with: messages safe to print (no password, no secret)."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The store can't be opened or used as configured; the message says what to do."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer bot than this one."""

    def __init__(self, where: str, version: int, known: int):
        super().__init__(
            f"{where} has schema version {version}, newer than this bot knows ({known}): "
            "upgrade the bot"
        )
