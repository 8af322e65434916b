"""Fit result images into Discord messages: a per-file upload limit, 25 MiB per request, 10 files.

Pure functions on bytes (CPU-bound when an image must be recompressed: call them in a thread).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from bot.core import images
from bot.core.domain import ResultImage

# Discord refuses a request body over 25 MiB, however small each file is.
REQUEST_LIMIT = 25 * 2**20
# Without boosts (and for DMs) a file may be 10 MiB; an interaction reports the real limit.
DEFAULT_FILE_LIMIT = 10 * 2**20
# discord.py refuses more than 10 files in one message.
MAX_FILES = 10
# Room in each request for payload_json and the multipart boundaries next to the files.
OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class Part:
    """One file of a message, with its alt text (what a screen reader says for it)."""

    filename: str
    data: bytes
    description: str | None = None

    def file(self) -> discord.File:
        return discord.File(io.BytesIO(self.data), self.filename, description=self.description)


def fit(
    images: Sequence[ResultImage],
    *,
    stem: str,
    file_limit: int,
    request_limit: int = REQUEST_LIMIT,
    alt: Sequence[str | None] = (),
) -> list[list[Part]]:
    """The images as messages (lists of files), in order, each within the limits; ``alt``
    holds each image's alt text, in the same order.

    An image over ``file_limit`` is shrunk (``bot.core.images.shrink``); messages split where
    the files would pass ``request_limit`` or ``MAX_FILES``.
    """
    budget = request_limit - OVERHEAD
    limit = min(file_limit, budget)
    messages: list[list[Part]] = []
    size = 0
    described = [*alt, *[None] * (len(images) - len(alt))]
    for image, description in zip(images, described, strict=True):
        part = _part(image, stem, limit, description)
        if not messages or len(messages[-1]) >= MAX_FILES or size + len(part.data) > budget:
            messages.append([])
            size = 0
        messages[-1].append(part)
        size += len(part.data)
    return messages


def _part(image: ResultImage, stem: str, limit: int, description: str | None) -> Part:
    data = images.shrink(image.data or b"", limit)
    mime = image.mime if data is image.data else "image/jpeg"  # shrunk: a JPEG
    return Part(f"{stem}-{image.index}.{images.extension(mime)}", data, description)
