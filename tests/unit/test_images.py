"""Reference intake judges images by content and refuses what would hurt."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from bot.core.errors import InvalidInput
from bot.core.images import UPSTREAM_MAX_BYTES, PreparedImage, prepare_reference, sniff_mime
from tests.conftest import image_bytes

CAP = 25 * 2**20
PIXELS = 50_000_000


def prepare(data: bytes) -> PreparedImage:
    return prepare_reference(data, max_bytes=CAP, max_pixels=PIXELS)


@pytest.mark.parametrize(
    ("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
def test_native_formats_pass_untouched(fmt: str, mime: str) -> None:
    data = image_bytes(fmt)
    prepared = prepare(data)
    assert (prepared.data, prepared.mime, prepared.width, prepared.height) == (data, mime, 32, 24)
    assert sniff_mime(data) == mime


def test_gif_becomes_its_first_frame() -> None:
    buf = io.BytesIO()
    frames = [Image.new("RGB", (20, 10), c) for c in ("blue", "green")]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    prepared = prepare(buf.getvalue())
    assert prepared.mime in ("image/jpeg", "image/png")
    with Image.open(io.BytesIO(prepared.data)) as img:
        assert img.size == (20, 10)
        red, _, blue = img.convert("RGB").getpixel((5, 5))  # type: ignore[misc]
        assert red < 40  # blue: the first frame, not the green second one
        assert blue > 200


def test_a_pdf_called_png_is_refused() -> None:
    with pytest.raises(InvalidInput, match="isn't an image I can read"):
        prepare(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n")


def test_truncated_image_is_refused() -> None:
    with pytest.raises(InvalidInput, match="isn't an image I can read"):
        prepare(image_bytes("PNG", (200, 200))[:200])


def test_empty_file() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        prepare(b"")


def test_too_many_bytes_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidInput, match=r"30\.0 MB; the limit is 25 MB"):
        prepare(b"\x89PNG" + b"\0" * (30 * 2**20))


def test_pixel_bomb_is_refused_without_decoding() -> None:
    # A 20000 × 20000 PNG compresses to a few hundred kilobytes and would take 1.2 GB to decode.
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")
    assert len(buf.getvalue()) < 2**20
    with pytest.raises(InvalidInput, match="too large; the limit is 50 megapixels"):
        prepare(buf.getvalue())


def test_over_our_pixel_limit_names_the_size() -> None:
    buf = io.BytesIO()
    Image.new("1", (8000, 7000)).save(buf, "PNG")
    with pytest.raises(InvalidInput, match=r"too large \(8000×7000\)"):
        prepare(buf.getvalue())


def test_over_upstream_size_is_reencoded_not_refused() -> None:
    noise = Image.frombytes("RGB", (3000, 2600), os.urandom(3000 * 2600 * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG", compress_level=0)
    assert UPSTREAM_MAX_BYTES < len(buf.getvalue()) < CAP
    prepared = prepare(buf.getvalue())
    assert len(prepared.data) <= UPSTREAM_MAX_BYTES
    assert prepared.mime == "image/jpeg"
