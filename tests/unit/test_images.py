"""Reference intake judges images by content and refuses what would hurt."""

from __future__ import annotations

import io
import os
import random

import pytest
from PIL import Image, ImageCms

from bot.core.errors import InvalidInput
from bot.core.images import (
    PNG_MAX_PIXELS,
    UPSTREAM_MAX_BYTES,
    PreparedImage,
    prepare_reference,
    shrink,
    sniff_mime,
)
from tests.conftest import image_bytes

CAP = 25 * 2**20
PIXELS = 50_000_000


def prepare(data: bytes) -> PreparedImage:
    return prepare_reference(data, max_bytes=CAP, max_pixels=PIXELS)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "TGA", "PPM"])
def test_an_opaque_picture_goes_up_as_a_jpeg_of_its_size(fmt: str) -> None:
    prepared = prepare(image_bytes(fmt))
    assert (prepared.mime, prepared.width, prepared.height) == ("image/jpeg", 32, 24)
    with Image.open(io.BytesIO(prepared.data)) as img:
        assert img.format == "JPEG"
        red, green, _ = img.convert("RGB").getpixel((5, 5))  # type: ignore[misc]
        assert red > 200
        assert green < 40


def test_a_transparent_picture_goes_up_as_a_png_and_keeps_its_transparency() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 255, 0)).save(buf, "PNG")
    prepared = prepare(buf.getvalue())
    assert prepared.mime == "image/png"
    with Image.open(io.BytesIO(prepared.data)) as img:
        assert img.convert("RGBA").getpixel((3, 3)) == (0, 0, 255, 0)


def test_an_alpha_channel_that_hides_nothing_goes_up_as_a_jpeg() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 255, 255)).save(buf, "WEBP", lossless=True)
    assert prepare(buf.getvalue()).mime == "image/jpeg"


def test_a_large_transparent_picture_is_scaled_to_a_png_that_surely_fits() -> None:
    # Encoding a PNG again and again until it fits took 27 s for a noisy 49-megapixel one.
    buf = io.BytesIO()
    Image.new("RGBA", (4000, 3000), (0, 0, 255, 128)).save(buf, "PNG")
    prepared = prepare(buf.getvalue())
    assert prepared.mime == "image/png"
    assert prepared.width * prepared.height <= PNG_MAX_PIXELS
    assert PNG_MAX_PIXELS * 4 < UPSTREAM_MAX_BYTES
    assert prepared.width / prepared.height == pytest.approx(4 / 3, rel=0.01)


@pytest.mark.parametrize(
    ("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
def test_upstream_images_are_typed_by_their_magic_bytes(fmt: str, mime: str) -> None:
    assert sniff_mime(image_bytes(fmt)) == mime


def test_a_sideways_photo_is_turned_upright() -> None:
    # Stored 40 wide with red on the left; orientation 6 says "turn me 90° clockwise to view".
    stored = Image.new("RGB", (40, 20), "blue")
    stored.paste("red", (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif)
    prepared = prepare(buf.getvalue())
    assert (prepared.width, prepared.height) == (20, 40)
    with Image.open(io.BytesIO(prepared.data)) as img:
        assert not img.getexif()  # no orientation left to apply twice
        top, bottom = (img.convert("RGB").getpixel((10, y)) for y in (5, 35))
        assert top[0] > 200  # type: ignore[index]
        assert bottom[2] > 200  # type: ignore[index]


def test_an_rgb_colour_profile_is_kept() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "green").save(buf, "JPEG", icc_profile=srgb)
    with Image.open(io.BytesIO(prepare(buf.getvalue()).data)) as img:
        assert img.info.get("icc_profile") == srgb


def test_a_cmyk_photo_becomes_rgb_without_its_cmyk_profile() -> None:
    cmyk_profile = b"\0" * 16 + b"CMYK" + b"\0" * 200
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(buf, "JPEG", icc_profile=cmyk_profile)
    prepared = prepare(buf.getvalue())
    with Image.open(io.BytesIO(prepared.data)) as img:
        assert img.mode == "RGB"
        assert "icc_profile" not in img.info


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


def test_files_over_the_upload_limit_are_shrunk_to_fit() -> None:
    noise = Image.frombytes("RGB", (400, 300), random.Random(1).randbytes(400 * 300 * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    big = buf.getvalue()
    small = shrink(big, len(big) // 10)
    assert len(small) <= len(big) // 10
    with Image.open(io.BytesIO(small)) as shrunk:
        assert shrunk.format == "JPEG"
    assert shrink(big, len(big)) is big
