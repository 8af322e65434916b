"""Fitting images to Telegram's upload limits.

A photo must be at most 10 MB, with width + height ≤ 10000 and a side ratio ≤ 20; anything else
goes as a document. Documents may be 50 MB on the public Bot API (a local Bot API server takes
2000 MB); a larger one is re-encoded smaller rather than lost.
"""

from __future__ import annotations

import io

from PIL import Image

from bot.core.domain import Job, ResultImage
from bot.core.images import sniff_mime

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_SIDES = 10_000
MAX_PHOTO_RATIO = 20
PUBLIC_API = "https://api.telegram.org"
PUBLIC_MAX_DOCUMENT = 50 * 1024 * 1024
LOCAL_MAX_DOCUMENT = 2000 * 1024 * 1024
# getFile serves at most 20 MB on the public Bot API; a local server has no such limit.
PUBLIC_MAX_DOWNLOAD = 20 * 1024 * 1024

_SUFFIX = {"image/png": "png", "image/webp": "webp"}


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


def fit_document(data: bytes, limit: int) -> bytes:
    """``data`` if it fits ``limit``, else a JPEG shrunk until it does. CPU-bound: use a thread."""
    if len(data) <= limit:
        return data
    with Image.open(io.BytesIO(data)) as img:
        frame = img.convert("RGB")
    while True:
        out = io.BytesIO()
        frame.save(out, "JPEG", quality=90)
        if out.tell() <= limit:
            return out.getvalue()
        frame = frame.resize((max(1, frame.width * 3 // 4), max(1, frame.height * 3 // 4)))


def file_name(job: Job, image: ResultImage, data: bytes) -> str:
    suffix = _SUFFIX.get(sniff_mime(data), "jpg")
    kind = "upscaled" if job.is_upscale else "image"
    return f"job{job.id}_{kind}{image.index}.{suffix}"
