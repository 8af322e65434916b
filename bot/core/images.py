"""Reference intake: judge an image by its content, guard against bombs, fit the upstream's limits.

Pillow opens only the formats listed here and never decodes before the pixel count is known, so a
tiny file that claims 40,000 × 40,000 pixels is refused without allocating anything.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.core import texts
from bot.core.errors import InvalidInput

# What the upstream takes as is, by Pillow format name → MIME type.
NATIVE = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# What we convert (first frame for animations) before upload.
CONVERTIBLE = ("GIF", "BMP", "TIFF", "ICO", "TGA", "PPM")
UPSTREAM_MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    mime: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sniff_mime(data: bytes) -> str:
    """The MIME type of an image the upstream sent us, from its magic bytes."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


def prepare_reference(data: bytes, *, max_bytes: int, max_pixels: int) -> PreparedImage:
    """Check one user image and return bytes the upstream accepts, or raise ``InvalidInput``.

    CPU-bound (it decodes the image): call it in a worker thread.
    """
    if not data:
        raise InvalidInput(texts.IMAGE_EMPTY)
    if len(data) > max_bytes:
        raise InvalidInput(texts.image_too_large(len(data), max_bytes))
    try:
        with Image.open(io.BytesIO(data), formats=[*NATIVE, *CONVERTIBLE]) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise InvalidInput(texts.image_too_many_pixels(width, height, max_pixels))
            fmt = img.format or ""
            img.load()
            if fmt in NATIVE and len(data) <= UPSTREAM_MAX_BYTES:
                return PreparedImage(data, NATIVE[fmt], width, height)
            return _reencode(img)
    except InvalidInput:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidInput(texts.image_too_many_pixels(0, 0, max_pixels)) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # Pillow raises OSError for truncated files and SyntaxError for some corrupt headers.
        raise InvalidInput(texts.IMAGE_UNREADABLE) from exc


def _reencode(img: Image.Image) -> PreparedImage:
    """A first frame as PNG when it has transparency, else JPEG; shrink until it fits 20 MB."""
    img.seek(0)
    frame = ImageOps.exif_transpose(img)
    has_alpha = frame.mode in ("RGBA", "LA") or "transparency" in frame.info
    frame = frame.convert("RGBA" if has_alpha else "RGB")
    while True:
        buf = io.BytesIO()
        if has_alpha:
            frame.save(buf, "PNG", optimize=True)
            mime = "image/png"
        else:
            frame.save(buf, "JPEG", quality=90)
            mime = "image/jpeg"
        if buf.tell() <= UPSTREAM_MAX_BYTES:
            return PreparedImage(buf.getvalue(), mime, frame.width, frame.height)
        frame = frame.resize((max(1, frame.width * 3 // 4), max(1, frame.height * 3 // 4)))
