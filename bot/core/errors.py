"""Refusals the core gives before any upstream call."""


class InvalidInput(Exception):
    """A user mistake or a limit reached; ``message`` is the one sentence to show them."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
