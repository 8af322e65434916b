"""The image helper: a user's reference judged by its content and re-encoded to its pixels, and
a picture's type, file name and size to fit a platform's limit.

Nothing is decoded before the image has shown it is cheap to decode. Its structure is counted
first (``_parts``): a JPEG's scans are each a full pass over the image, and Pillow walks segments,
chunks, blocks, TIFF strips and tiles one Python object at a time (a Netpbm header one byte at a
time), so a 300 KB file can cost a minute of CPU and a 20 MB one gigabytes. Then Pillow opens
only formats whose ``open()`` decodes nothing (not ICO/CUR: they decode the embedded image
first) and the size is checked before the pixels are decoded, so a tiny file that claims
40,000 × 40,000 pixels is refused without allocating anything.

What goes upstream is always re-encoded from the pixels of the first frame, turned upright by its
EXIF orientation: no EXIF (so no GPS), XMP, comment, text chunk, appended file or extra frame of a
user's photo reaches the upstream, the store or anyone's history.

A picture over a byte limit (the upstream's for references, a platform's for results) becomes a
JPEG that fits: a lower quality first, then fewer pixels (``_jpeg_within``).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.core import option_texts, texts
from bot.core.domain import Job, ResultImage
from bot.core.errors import InvalidInput

# Pillow formats we read (JPEG includes MPO, the stereo/multi-picture kind phones write).
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "TGA", "PPM")
UPSTREAM_MAX_BYTES = 20 * 1024 * 1024
JPEG_QUALITY = 90
# JPEG's limit, so every accepted image can be re-encoded; it also bounds Pillow's cost per row
# (a 1 × 49,000,000 PNG, under the pixel limit, costs 423 MB in row pointers).
MAX_SIDE = 65_535
# libtiff refuses JPEG data with more scans than this; encoders write about 10.
MAX_JPEG_SCANS = 100
# Segments, chunks, blocks and stray bytes Pillow would step through one by one. An ordinary
# file has dozens (a 25 MB PNG in libpng's 8 KB chunks about 3,200).
MAX_PARTS = 10_000
# A colour profile is kept when it is an RGB one of ordinary size (real ones are a few KB).
MAX_ICC_BYTES = 64 * 1024
# A transparent picture goes up as PNG, which at worst is its raw RGBA pixels (plus the profile).
PNG_MAX_PIXELS = (UPSTREAM_MAX_BYTES - MAX_ICC_BYTES) * 9 // 10 // 4
# The pictures the upstream sends (``sniff_mime``) and their file name extensions.
EXTENSIONS = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg"}
# Shrinking to a byte limit: the JPEG qualities tried in turn, then at most this many rounds of
# scaling down, never below this side.
SHRINK_QUALITIES = (85, 70)
SHRINK_ROUNDS = 12
MIN_SIDE = 16


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


def extension(mime: str) -> str:
    return EXTENSIONS.get(mime, "jpg")


def file_name(job: Job, image: ResultImage, data: bytes) -> str:
    """A result's file name, by its job's public id and what its bytes are:
    ``k3x9q2m_image2.png``, ``p7rw2ze_upscaled1.jpg``."""
    kind = "upscaled" if job.is_upscale else "image"
    return f"{job.public_id}_{kind}{image.index}.{extension(sniff_mime(data))}"


def thumbnail(data: bytes, side: int = 320) -> bytes:
    """A small JPEG of a checked picture, at most ``side`` pixels a side. CPU-bound: call it in
    a worker thread."""
    with Image.open(io.BytesIO(data), formats=list(FORMATS)) as img:
        frame = img.convert("RGB")
    frame.thumbnail((side, side))
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=SHRINK_QUALITIES[0])
    return out.getvalue()


def shrink(data: bytes, limit: int) -> bytes:
    """``data`` if it fits in ``limit`` bytes, else a JPEG of it that does (or the smallest one
    tried: no limit is met below ``MIN_SIDE``). CPU-bound: call it in a worker thread."""
    if len(data) <= limit:
        return data
    with Image.open(io.BytesIO(data), formats=list(FORMATS)) as img:
        frame = img.convert("RGB")
    out, _ = _jpeg_within(frame, limit, SHRINK_QUALITIES, optimize=True)
    return out


def prepare_reference(data: bytes, *, max_bytes: int, max_pixels: int) -> PreparedImage:
    """Check one user image and return bytes the upstream accepts, or raise ``InvalidInput``.

    CPU-bound (it decodes the image): call it in a worker thread.
    """
    if not data:
        raise InvalidInput(texts.IMAGE_EMPTY)
    if len(data) > max_bytes:
        raise InvalidInput(option_texts.image_too_large(len(data), max_bytes))
    parts, scans = _parts(data)
    if parts > MAX_PARTS or scans > MAX_JPEG_SCANS:
        raise InvalidInput(texts.IMAGE_TOO_INTRICATE)
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            width, height = img.size
            if max(width, height) > MAX_SIDE:
                raise InvalidInput(option_texts.image_too_long(width, height, MAX_SIDE))
            if width * height > max_pixels:
                raise InvalidInput(option_texts.image_too_many_pixels(width, height, max_pixels))
            return _reencode(img)
    except InvalidInput:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidInput(option_texts.image_too_many_pixels(0, 0, max_pixels)) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # Pillow raises OSError for truncated files and SyntaxError for some corrupt headers.
        raise InvalidInput(texts.IMAGE_UNREADABLE) from exc


def _reencode(img: Image.Image) -> PreparedImage:
    """The first frame, upright, as PNG when it has transparency, else JPEG; at most 20 MB."""
    img.seek(0)
    icc = img.info.get("icc_profile")
    ImageOps.exif_transpose(img, in_place=True)  # in place: a 50-megapixel copy is 200 MB
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    frame = img if img.mode == "RGBA" or not has_alpha else img.convert("RGBA")
    # Many photos carry an alpha channel that hides nothing: they are JPEG material.
    has_alpha = has_alpha and frame.getchannel("A").getextrema()[0] != 255
    mode = "RGBA" if has_alpha else "RGB"
    frame = frame if frame.mode == mode else frame.convert(mode)
    # Only what is passed to save() is written: PNG and JPEG would copy the ICC profile and the
    # comment from ``info``, and the converted frame still carries all of it.
    frame.info = {}
    # A profile says how to read the colours; one for CMYK or grey would be wrong after convert().
    keep_icc = isinstance(icc, bytes) and len(icc) <= MAX_ICC_BYTES and icc[16:20] == b"RGB "
    icc_profile = icc if keep_icc else None
    if has_alpha:
        # A PNG can't be squeezed by trying again, and trying is slow (a noisy 49-megapixel one
        # took 27 s to encode): at worst it holds the raw pixels, 4 bytes each, so those are
        # brought under the limit first and one encoding fits.
        frame = _at_most(frame, PNG_MAX_PIXELS)
        return _encoded(frame, "PNG", icc_profile=icc_profile)
    data, frame = _jpeg_within(frame, UPSTREAM_MAX_BYTES, (JPEG_QUALITY,), icc_profile=icc_profile)
    return PreparedImage(data, "image/jpeg", frame.width, frame.height)


def _jpeg_within(
    frame: Image.Image, limit: int, qualities: tuple[int, ...], **options: Any
) -> tuple[bytes, Image.Image]:
    """The smallest JPEG of ``frame`` tried (and the frame it shows) until one fits ``limit``.

    Each of ``qualities`` in turn; then smaller by the square root of the size ratio (bytes grow
    with the pixel count), with a margin, so that a round or two suffice.
    """
    best: tuple[bytes, Image.Image] | None = None
    for round_ in range(SHRINK_ROUNDS):
        buf = io.BytesIO()
        frame.save(buf, "JPEG", quality=qualities[min(round_, len(qualities) - 1)], **options)
        out = buf.getvalue()
        if best is None or len(out) < len(best[0]):
            best = out, frame
        if len(out) <= limit or min(frame.size) <= MIN_SIDE:
            break
        if round_ + 1 < len(qualities):
            continue
        factor = min(0.9, max(0.25, 0.9 * (limit / len(out)) ** 0.5))
        size = (max(MIN_SIDE, int(frame.width * factor)), max(MIN_SIDE, int(frame.height * factor)))
        frame = frame.resize(size, Image.Resampling.LANCZOS)
    assert best is not None  # SHRINK_ROUNDS > 0
    return best


def _encoded(frame: Image.Image, fmt: str, **options: Any) -> PreparedImage:
    buf = io.BytesIO()
    frame.save(buf, fmt, **options)
    return PreparedImage(buf.getvalue(), f"image/{fmt.lower()}", frame.width, frame.height)


def _at_most(frame: Image.Image, pixels: int) -> Image.Image:
    """``frame``, scaled down (same shape) to at most ``pixels`` pixels if it has more."""
    if frame.width * frame.height <= pixels:
        return frame
    scale = math.sqrt(pixels / (frame.width * frame.height))
    return frame.resize((max(1, int(frame.width * scale)), max(1, int(frame.height * scale))))


def _parts(data: bytes) -> tuple[int, int]:
    """How many parts Pillow would step through to open ``data``, and how many JPEG scans.

    Counting stops soon after ``MAX_PARTS``, so this costs little whatever the file holds.
    """
    if data.startswith(b"\xff\xd8"):
        return _jpeg_parts(data)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png_parts(data), 0
    if data.startswith((b"GIF87a", b"GIF89a")):
        return _gif_parts(data), 0
    if data.startswith((b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")):
        return _tiff_parts(data), 0
    if data[:1] == b"P":
        return _pnm_parts(data), 0
    return 0, 0


# In entropy-coded data 0xFF is followed by 0x00 (a stuffed byte) or a restart marker; anything
# else after it (fill 0xFFs aside) is the next marker.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI: markers without a length


def _jpeg_parts(data: bytes) -> tuple[int, int]:
    """Segments, stray and fill bytes, and scans of the first image (up to its EOI)."""
    parts = scans = 0
    at = 2
    while at + 1 < len(data) and parts <= MAX_PARTS and scans <= MAX_JPEG_SCANS:
        if data[at] != 0xFF or data[at + 1] == 0xFF:
            # libjpeg skips stray and fill bytes before a marker; Pillow reads them one by one.
            parts += 1
            at += 1
            continue
        marker = data[at + 1]
        parts += 1
        if marker == 0xD9:  # EOI: what follows (MPO frames, appended files) is never decoded
            break
        if marker in _STANDALONE:
            at += 2
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4])
        if marker == 0xDA:  # SOS: the scan's entropy-coded data runs up to the next marker
            scans += 1
            found = _NEXT_MARKER.search(data, at)
            at = found.start() if found else len(data)
    return parts, scans


def _png_parts(data: bytes) -> int:
    """Chunks up to IEND."""
    parts, at = 0, 8
    while at + 8 <= len(data) and parts <= MAX_PARTS:
        length, kind = struct.unpack_from(">I4s", data, at)
        parts += 1
        if kind == b"IEND":
            break
        at += 12 + length
    return parts


def _gif_parts(data: bytes) -> int:
    """Extension sub-blocks and stray bytes before the first image (only it is decoded)."""
    flags = data[10] if len(data) > 10 else 0
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the global colour table
    parts = 0
    while at < len(data) and data[at] not in b",;" and parts <= MAX_PARTS:
        parts += 1
        if data[at] != 0x21:  # Pillow skips a stray byte at a time
            at += 1
            continue
        at += 2  # introducer and label, then sub-blocks up to an empty one
        while at < len(data) and data[at] and parts <= MAX_PARTS:
            parts += 1
            at += 1 + data[at]
        at += 1
    return parts


def _tiff_parts(data: bytes) -> int:
    """Tags, strips and tiles of the first image: Pillow reads an uncompressed one a strip or
    tile at a time (a 22 MB file of 1-pixel tiles took 16 s and 900 MB)."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\0", b"\0+")  # BigTIFF: 8-byte counts and offsets
    entry = order + ("HHQ" if big else "HHI")
    try:
        if big:
            (ifd,) = struct.unpack_from(order + "Q", data, 8)
            (count,) = struct.unpack_from(order + "Q", data, ifd)
            first, size = ifd + 8, 20
        else:
            (ifd,) = struct.unpack_from(order + "I", data, 4)
            (count,) = struct.unpack_from(order + "H", data, ifd)
            first, size = ifd + 2, 12
        parts = int(count)
        for n in range(min(count, MAX_PARTS + 1)):
            tag, _kind, values = struct.unpack_from(entry, data, first + n * size)
            if tag in (273, 324):  # StripOffsets, TileOffsets
                parts += int(values)
    except struct.error:  # cut short: Pillow refuses it without reading more
        return 0
    return parts


# A Netpbm header as Pillow reads it: a magic of up to 6 bytes, then up to three numbers of at
# most 11 bytes, each after any whitespace and comments (to the end of their line).
_PNM_HEADER = re.compile(
    rb"P[^ \t\n\r\x0b\x0c]{0,5}"
    rb"(?:(?:[ \t\n\r\x0b\x0c]|#[^\r\n]*)*[^ \t\n\r\x0b\x0c#]{0,11}){3}"
)


def _pnm_parts(data: bytes) -> int:
    """Bytes of the header: Pillow reads it a byte at a time, comments too (a 23 MB comment
    took 9 s)."""
    header = _PNM_HEADER.match(data)
    return header.end() if header else 0
