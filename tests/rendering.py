"""A provider's whole render in one call, as the core runs it in two (``generate`` while the
capacity slot is held, ``fetch`` after it is given back)."""

from __future__ import annotations

from bot.core.providers import ImageProvider, ImageRequest, Rendering


async def rendered(provider: ImageProvider, request: ImageRequest) -> Rendering:
    """What ``provider`` made for ``request``, its pictures fetched."""
    return await provider.fetch(await provider.generate(request))
