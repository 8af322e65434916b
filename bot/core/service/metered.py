"""Each road as the service uses it: every call timed, and told to the ``Recorder`` with its
status (what the error tree says it was, 200 when it answered, None when nothing did).

The wrapper has exactly the calls its provider has, so that what the core learns of a road by
its Protocols (``Pooled``, ``Uploader``, ``Resumable``…) stays true of the wrapped one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from bot.core.monitoring import Recorder, UpstreamCall
from bot.core.providers import ImageProvider, ProviderProfile
from bot.core.upstream import UpstreamError

OK = 200

# A provider's call → what it is in the metrics, and the unit it went to (its account on Flow,
# else the road's name; None for the account list) from its arguments.
_Unit = Callable[[ImageProvider, tuple[Any, ...], dict[str, Any]], str | None]


def _named(provider: ImageProvider, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return provider.profile.name


def _nobody(provider: ImageProvider, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    return None  # about the road's accounts, not one of them


def _requested(provider: ImageProvider, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return getattr(args[0], "account", None) or provider.profile.name


def _keyword(provider: ImageProvider, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return kwargs.get("account") or provider.profile.name


def _first(provider: ImageProvider, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return str(args[0])


_CALLS: dict[str, tuple[UpstreamCall, _Unit]] = {
    "generate": (UpstreamCall.GENERATE, _requested),
    "submit": (UpstreamCall.GENERATE, _requested),
    "resume": (UpstreamCall.GENERATE, _named),
    "fetch": (UpstreamCall.DOWNLOAD, _requested),
    "upscale_image": (UpstreamCall.UPSCALE, _keyword),
    "upload": (UpstreamCall.UPLOAD, _keyword),
    "list_accounts": (UpstreamCall.ACCOUNTS, _nobody),
    "create_character": (UpstreamCall.CHARACTER, _first),
    "delete_character": (UpstreamCall.CHARACTER, _named),  # its handle names the account
}


class _Metered:
    def __init__(self, provider: ImageProvider, recorder: Recorder, clock: Callable[[], float]):
        self._provider = provider
        self._recorder = recorder
        self._clock = clock

    @property
    def profile(self) -> ProviderProfile:
        return self._provider.profile


def _timed(name: str, call: UpstreamCall, unit: _Unit) -> Callable[..., Any]:
    async def timed(self: _Metered, *args: Any, **kwargs: Any) -> Any:
        account = unit(self._provider, args, kwargs)
        started = self._clock()
        try:
            result = await getattr(self._provider, name)(*args, **kwargs)
        except UpstreamError as exc:
            self._recorder.upstream_answered(call, account, self._clock() - started, exc.status)
            raise
        self._recorder.upstream_answered(call, account, self._clock() - started, OK)
        return result

    timed.__name__ = name
    return timed


def metered(
    provider: ImageProvider, recorder: Recorder, clock: Callable[[], float]
) -> ImageProvider:
    """``provider`` with each of its calls timed."""
    calls = {
        name: _timed(name, call, unit)
        for name, (call, unit) in _CALLS.items()
        if callable(getattr(provider, name, None))
    }
    kind = type(f"Metered{type(provider).__name__}", (_Metered,), calls)
    return cast(ImageProvider, kind(provider, recorder, clock))
