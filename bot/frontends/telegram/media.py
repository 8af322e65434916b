"""Fitting images to Telegram's upload limits.

A photo must be at most 10 MB, with width + height ≤ 10000 and a side ratio ≤ 20; anything else
goes as a document. Documents may be 50 MB on the public Bot API (a local Bot API server takes
2000 MB); a larger one is shrunk (``bot.core.images.shrink``) rather than lost.
"""

from __future__ import annotations

import io

from PIL import Image

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_SIDES = 10_000
MAX_PHOTO_RATIO = 20
PUBLIC_MAX_DOCUMENT = 50 * 1024 * 1024
LOCAL_MAX_DOCUMENT = 2000 * 1024 * 1024
# getFile serves at most 20 MB on the public Bot API; a local server has no such limit.
PUBLIC_MAX_DOWNLOAD = 20 * 1024 * 1024


def fits_as_photo(data: bytes) -> bool:
    """Whether Telegram takes these bytes as a photo (read from the header, nothing decoded)."""
    if len(data) > MAX_PHOTO_BYTES:
        return False
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return False
    short, long = sorted((width, height))
    return width + height <= MAX_PHOTO_SIDES and long <= MAX_PHOTO_RATIO * max(1, short)
