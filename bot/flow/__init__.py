"""The useapi.net Google Flow API client: the only code that knows the wire format."""

from bot.flow.client import DEFAULT_BASE_URL, FlowClient

__all__ = ["DEFAULT_BASE_URL", "FlowClient"]
