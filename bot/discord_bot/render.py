"""Fit result images into Discord messages: a per-file upload limit, 25 MiB per request, 10 files.

Pure functions on bytes (CPU-bound when an image must be recompressed: call them in a thread).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import discord
from PIL import Image

from bot.core.domain import ResultImage

# Discord refuses a request body over 25 MiB, however small each file is.
REQUEST_LIMIT = 25 * 2**20
# Without boosts (and for DMs) a file may be 10 MiB; an interaction reports the real limit.
DEFAULT_FILE_LIMIT = 10 * 2**20
# discord.py refuses more than 10 files in one message.
MAX_FILES = 10
# Room in each request for payload_json and the multipart boundaries next to the files.
OVERHEAD = 64 * 1024
# Discord refuses message content over 2000 characters.
MAX_CONTENT = 2000

_EXTENSIONS = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg"}
_FORMATS = ["PNG", "JPEG", "WEBP"]
_SHRINK_ROUNDS = 12
_LOW_QUALITY = 70
_MIN_SIDE = 16


@dataclass(frozen=True)
class Part:
    """One file of a message."""

    filename: str
    data: bytes

    def file(self) -> discord.File:
        return discord.File(io.BytesIO(self.data), self.filename)


def clip(text: str) -> str:
    """``text`` cut to what one message may say (refusals can echo what the user typed)."""
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"


def fit(
    images: Sequence[ResultImage],
    *,
    stem: str,
    file_limit: int,
    request_limit: int = REQUEST_LIMIT,
) -> list[list[Part]]:
    """The images as messages (lists of files), in order, each within the limits.

    An image over ``file_limit`` is recompressed as JPEG, and scaled down if that is not enough;
    messages split where the files would pass ``request_limit`` or ``MAX_FILES``.
    """
    budget = request_limit - OVERHEAD
    limit = min(file_limit, budget)
    messages: list[list[Part]] = []
    size = 0
    for image in images:
        part = _part(image, stem, limit)
        if not messages or len(messages[-1]) >= MAX_FILES or size + len(part.data) > budget:
            messages.append([])
            size = 0
        messages[-1].append(part)
        size += len(part.data)
    return messages


def _part(image: ResultImage, stem: str, limit: int) -> Part:
    data = image.data or b""
    name = f"{stem}-{image.index}"
    if len(data) <= limit:
        return Part(f"{name}.{_EXTENSIONS.get(image.mime, 'jpg')}", data)
    return Part(f"{name}.jpg", shrink(data, limit))


def shrink(data: bytes, limit: int) -> bytes:
    """A JPEG of the image within ``limit`` bytes, or the smallest one tried.

    A lower quality first; then scale down by the square root of the size ratio (file size grows
    roughly with the pixel count), with a margin so that a few rounds suffice.
    """
    with Image.open(io.BytesIO(data), formats=_FORMATS) as img:
        frame = img.convert("RGB")
    best = data
    quality = 85
    for _ in range(_SHRINK_ROUNDS):
        buf = io.BytesIO()
        frame.save(buf, "JPEG", quality=quality, optimize=True)
        out = buf.getvalue()
        best = min(best, out, key=len)
        if len(out) <= limit or min(frame.size) <= _MIN_SIDE:
            break
        if quality > _LOW_QUALITY:
            quality = _LOW_QUALITY
            continue
        factor = min(0.9, max(0.25, 0.9 * (limit / len(out)) ** 0.5))
        frame = frame.resize(
            (max(_MIN_SIDE, int(frame.width * factor)), max(_MIN_SIDE, int(frame.height * factor))),
            Image.Resampling.LANCZOS,
        )
    return best
