"""Reference images, as an attacker (or a careless phone) sends them: bombs, traps and secrets.

Each test is one thing a stranger can upload as a reference: it must cost little, never hang,
and leave nothing but pixels for the upstream (and later the store and history) to see.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from bot.core.errors import InvalidInput
from bot.core.images import PreparedImage, prepare_reference
from tests.conftest import owner
from tests.fakes.flow_server import FakeFlowServer

CAP = 25 * 2**20
PIXELS = 50_000_000
HOME = "Flat 3, 221B Baker Street"  # what a phone writes into a photo's description
PRIVATE = (HOME, "shot at home", "secret-place-xmp")


def prepare(data: bytes) -> PreparedImage:
    return prepare_reference(data, max_bytes=CAP, max_pixels=PIXELS)


def located_exif() -> Image.Exif:
    """EXIF as a phone writes it: where it was taken, a description, an orientation."""
    exif = Image.Exif()
    exif[0x010E] = HOME  # ImageDescription
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (51.0, 31.0, 25.0), 3: "W", 4: (0.0, 9.0, 30.0)})
    return exif


def photo(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    """A picture in ``fmt`` carrying GPS, a description, a comment and XMP where it can."""
    buf = io.BytesIO()
    picture = Image.new("RGB", size, "red")
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">secret-place-xmp</x:xmpmeta>'
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "shot at home")
        text.add_itxt("XML:com.adobe.xmp", xmp.decode())
        picture.save(buf, fmt, exif=located_exif(), pnginfo=text)
    elif fmt == "JPEG":
        picture.save(buf, fmt, exif=located_exif(), comment=b"shot at home", xmp=xmp)
    else:
        picture.save(buf, fmt, exif=located_exif(), xmp=xmp)
    return buf.getvalue()


def assert_pixels_only(data: bytes) -> None:
    """Nothing but pixels: no EXIF (so no GPS), no text, no XMP, no comment."""
    for secret in PRIVATE:
        assert secret.encode() not in data
    assert b"Exif\0\0" not in data
    with Image.open(io.BytesIO(data)) as img:
        assert not img.getexif()
        assert not {"exif", "xmp", "comment", "Comment", "XML:com.adobe.xmp"} & set(img.info)


def cost(data: bytes, tmp_path: Path) -> dict[str, Any]:
    """Prepare ``data`` in a fresh interpreter; its outcome and the peak memory it added (MB)."""
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    child = """
import json, resource, sys
from bot.core.errors import InvalidInput
from bot.core.images import prepare_reference
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    prepare_reference(data, max_bytes=25 * 2**20, max_pixels=50_000_000)
    outcome = "accepted"
except InvalidInput as refusal:
    outcome = refusal.message
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"outcome": outcome, "peak_mb": peak / 1024}))
"""
    done = subprocess.run(
        [sys.executable, "-c", child, str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def icon_around(png: bytes) -> bytes:
    """An .ico whose one entry claims 256×256 and holds ``png``, whatever its real size."""
    directory = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 6 + 16)
    return directory + entry + png


def test_an_icon_wrapping_a_13000_pixel_png_is_refused_without_decoding_it(
    tmp_path: Path,
) -> None:
    buf = io.BytesIO()
    Image.new("1", (13000, 13000)).save(buf, "PNG")
    icon = icon_around(buf.getvalue())
    assert len(icon) < 64 * 1024
    spent = cost(icon, tmp_path)
    assert "isn't an image I can read" in spent["outcome"]
    # Decoding it would take 169 MB here (671 MB for the RGB variant); a refusal takes nothing.
    assert spent["peak_mb"] < 20


def progressive_jpeg_with_scans(extra: int, size: int = 1000) -> bytes:
    """A small progressive JPEG whose last scan is repeated: each repeat is a full decode pass."""
    buf = io.BytesIO()
    Image.new("L", (size, size)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    # 0xFF 0xDA can't occur inside entropy-coded data (0xFF is stuffed there), so this is the
    # last Start Of Scan marker; the scan runs up to the End Of Image marker.
    last_scan = data[data.rfind(b"\xff\xda") : -2]
    return data[:-2] + last_scan * extra + b"\xff\xd9"


def test_a_jpeg_with_thousands_of_scans_is_refused_before_decoding() -> None:
    # At 7000×7000, 2,000 repeated scans (a 334 KiB file) cost a minute of CPU to decode.
    bomb = progressive_jpeg_with_scans(300)
    assert len(bomb) < 100 * 1024
    with pytest.raises(InvalidInput, match="would take too long to read"):
        prepare(bomb)


def test_an_ordinary_progressive_jpeg_still_passes() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), "blue").save(buf, "JPEG", progressive=True, optimize=True)
    assert prepare(buf.getvalue()).mime == "image/jpeg"


def test_a_one_pixel_wide_line_of_20_million_pixels_is_refused() -> None:
    # Under the pixel limit, but every row costs Pillow a pointer: 1×49,000,000 takes 423 MB.
    buf = io.BytesIO()
    Image.new("1", (1, 20_000_000)).save(buf, "PNG")
    with pytest.raises(InvalidInput, match=r"1×20000000.*65535 pixels"):
        prepare(buf.getvalue())


def tiff_of_one_pixel_tiles(side: int) -> bytes:
    """An uncompressed grey TIFF of ``side`` × ``side`` tiles of one pixel, all one byte."""
    tiles = side * side
    pixel_at, offsets_at = 8, 12
    counts_at = offsets_at + 4 * tiles
    ifd_at = counts_at + 4 * tiles
    tags = [
        (256, 4, 1, side), (257, 4, 1, side), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
        (277, 3, 1, 1), (322, 4, 1, 1), (323, 4, 1, 1), (324, 4, tiles, offsets_at),
        (325, 4, tiles, counts_at),
    ]  # fmt: skip
    directory = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags)
    return b"".join(
        [
            b"II*\0" + struct.pack("<I", ifd_at) + b"\x80\0\0\0",
            struct.pack(f"<{tiles}I", *[pixel_at] * tiles),
            struct.pack(f"<{tiles}I", *[1] * tiles),
            directory + b"\0\0\0\0",
        ]
    )


def test_a_tiff_of_millions_of_one_pixel_tiles_is_refused_before_decoding(
    tmp_path: Path,
) -> None:
    # 1700 × 1700 pixels in 22 MB: Pillow read it a tile at a time, in 16 s and 900 MB.
    bomb = tiff_of_one_pixel_tiles(1700)
    assert len(bomb) < CAP
    spent = cost(bomb, tmp_path)
    assert "would take too long to read" in spent["outcome"]
    assert spent["peak_mb"] < 100


@pytest.mark.parametrize("compression", ["raw", "tiff_lzw", "tiff_deflate", "jpeg"])
def test_an_ordinary_tiff_still_passes(compression: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (1500, 1000), "green").save(buf, "TIFF", compression=compression)
    assert prepare(buf.getvalue()).width == 1500


def test_a_netpbm_header_with_a_20_mb_comment_is_refused_before_reading_it() -> None:
    # Pillow reads a Netpbm header a byte at a time: this one took 9 s.
    bomb = b"P6\n#" + b"x" * 20 * 2**20 + b"\n2 2\n255\n" + b"\x80" * 12
    with pytest.raises(InvalidInput, match="would take too long to read"):
        prepare(bomb)


@pytest.mark.parametrize("mode", ["1", "L", "RGB"])
def test_an_ordinary_netpbm_picture_still_passes(mode: str) -> None:
    buf = io.BytesIO()
    Image.new(mode, (300, 200)).save(buf, "PPM")
    named = b"P6\n# Created by GIMP version 2.10.34 PNM plug-in\n300 200\n255\n" + bytes(180_000)
    assert prepare(buf.getvalue()).width == prepare(named).width == 300


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_photo_with_gps_loses_its_location_and_every_other_note(fmt: str) -> None:
    data = photo(fmt)
    with Image.open(io.BytesIO(data)) as img:
        assert img.getexif().get_ifd(0x8825)  # the attack is real: the location is in there
    prepared = prepare(data)
    assert_pixels_only(prepared.data)
    assert (prepared.width, prepared.height) == (40, 30)


def test_a_16_mb_colour_profile_is_not_passed_on() -> None:
    buf = io.BytesIO()
    huge_profile = b"\0\0\0\0lcms\x02\x10\0\0mntrRGB XYZ " + b"\x55" * (16 * 2**20)
    Image.new("RGB", (16, 16), "green").save(buf, "JPEG", icc_profile=huge_profile)
    prepared = prepare(buf.getvalue())
    assert len(prepared.data) < 64 * 1024
    with Image.open(io.BytesIO(prepared.data)) as img:
        assert "icc_profile" not in img.info


def zip_archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "trailer"),
    [
        ("PNG", zip_archive()),  # a PNG that is also a ZIP
        ("JPEG", b"\0\0\0\x18ftypmp42" + b"\x01" * 4096),  # a "motion photo": video after the JPEG
    ],
)
def test_a_polyglot_reaches_the_upstream_as_pixels_only(fmt: str, trailer: bytes) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), "white").save(buf, fmt)
    prepared = prepare(buf.getvalue() + trailer)
    assert trailer[:16] not in prepared.data
    assert prepared.data.endswith((b"IEND\xaeB`\x82", b"\xff\xd9"))


def test_a_png_stuffed_with_private_chunks_reaches_the_upstream_as_pixels_only() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    png = buf.getvalue()
    payload = b"tracking-id-0123456789" * 100
    chunk = struct.pack(">I", len(payload)) + b"prVt" + payload
    chunk += struct.pack(">I", zlib.crc32(b"prVt" + payload))
    prepared = prepare(png[:33] + chunk * 100 + png[33:])  # after the 33-byte signature + IHDR
    assert b"tracking-id" not in prepared.data


async def test_a_photo_with_gps_reaches_the_upstream_without_its_location(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    submitted = await service.submit(owner(), "the same cat, in space", images=[photo("JPEG")])
    await told.wait_answered(submitted.job_id)
    [upload] = [r for r in flow.requests if "/assets/" in r.path]
    assert upload.headers["content-type"] == "image/jpeg"
    assert_pixels_only(upload.body)
