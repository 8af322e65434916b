"""What a hostile or broken upstream tries against the bot, through the real ``FlowClient``.

The upstream is the fake Flow server with its hostile switches (raw answers, trickles, foreign
media links); "somewhere else" is a ``Trap``, a local port that only counts who connects to it.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Iterator
from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from bot.core import texts
from bot.core.providers import ImageRequest, RenderedImage
from bot.core.upstream import (
    InvalidRequestError,
    MediaRefused,
    RetryableError,
    Throttled,
    Unavailable,
    UpstreamTimeout,
)
from bot.providers import media
from bot.providers.flow import FlowClient, FlowTimeouts
from tests.conftest import AnyStore, owner
from tests.fakes.flow_server import FakeFlowServer, RawAnswer
from tests.fakes.media_host import resolve_as
from tests.rendering import rendered

TOKEN = "tok-SECRET-hostile-0001"
JO = "jo@example.com"
PROMPT = "a very private prompt about my cat"


class Trap:
    """A TCP port that counts the connections made to it and answers nothing."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.connections = 0
        self.port = port
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Trap:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlowServer]:
    async with FakeFlowServer(token=TOKEN, accounts=[JO]) as server:
        yield server


@pytest.fixture
async def trap() -> AsyncIterator[Trap]:
    async with Trap() as port:
        yield port


@pytest.fixture
async def client(fake: FakeFlowServer) -> AsyncIterator[FlowClient]:
    async with FlowClient(TOKEN, fake.base_url) as flow_client:
        yield flow_client


def handle_of(image: RenderedImage) -> str:
    """A Flow image's mediaGenerationId: every image Flow makes has one."""
    assert image.handle is not None
    return image.handle


def params(**overrides: Any) -> ImageRequest:
    fields: dict[str, Any] = {
        "prompt": PROMPT,
        "model": "nano-banana-2",
        "aspect_ratio": "1:1",
        "count": 1,
        "seed": 7,
        "account": JO,
    }
    fields.update(overrides)
    return ImageRequest(**fields)


def picture(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, fmt)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that is all promise: a valid header claiming ``width`` × ``height`` and no pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def inline(data: bytes | str, **fields: Any) -> dict[str, Any]:
    """A new-shape answer with one inline image."""
    encoded = data if isinstance(data, str) else base64.b64encode(data).decode()
    entry = {"mediaGenerationId": "user:1-image:x", "seed": 1, "encodedImage": encoded, **fields}
    return {"jobId": "j1", "media": [{"image": {"generatedImage": entry}}]}


def panels(data: bytes) -> dict[str, Any]:
    """An old-shape answer with one image."""
    entry = {
        "encodedImage": base64.b64encode(data).decode(),
        "seed": 1,
        "mediaGenerationId": {"mediaGenerationId": "user:1-image:x"},
    }
    return {"imagePanels": [{"prompt": PROMPT, "generatedImages": [entry]}]}


def linked(url: str, **fields: Any) -> dict[str, Any]:
    """A new-shape answer with one image behind ``url``."""
    entry = {"mediaGenerationId": "user:1-image:x", "seed": 1, "fifeUrl": url, **fields}
    return {"jobId": "j1", "media": [{"image": {"generatedImage": entry}}]}


def redirect(location: str, status: int = 302) -> RawAnswer:
    return RawAnswer(status, {"Location": location, "Content-Length": "0"})


# -- media links: only the upstream's own media hosts ----------------------------------------


async def test_a_media_link_to_another_host_is_refused_without_connecting(
    fake: FakeFlowServer, client: FlowClient, trap: Trap
) -> None:
    fake.fail_next(200, body=linked(f"http://127.0.0.1:{trap.port}/admin"))
    with pytest.raises(MediaRefused) as caught:
        await rendered(client, params())
    assert trap.connections == 0
    assert caught.value.account == JO
    assert "not a media host" in caught.value.detail


async def test_a_media_link_to_the_cloud_metadata_server_is_refused_at_once(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.fail_next(200, body=linked("http://169.254.169.254/computeMetadata/v1/?recursive=true"))
    started = time.monotonic()
    with pytest.raises(MediaRefused):
        await rendered(client, params())
    assert time.monotonic() - started < 0.5  # refused, not a connection attempt that timed out


async def test_a_listed_media_host_over_plain_http_is_refused(
    fake: FakeFlowServer, trap: Trap
) -> None:
    async with FlowClient(TOKEN, fake.base_url, media_hosts=("localhost",)) as client:
        fake.fail_next(200, body=linked(f"http://localhost:{trap.port}/x.jpg"))
        with pytest.raises(MediaRefused) as caught:
            await rendered(client, params())
    assert trap.connections == 0
    assert "https" in caught.value.detail


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "10.1.2.3",  # private
        "192.168.0.10",
        "172.16.5.4",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.169.254",  # link-local: the cloud metadata server
        "0.0.0.0",  # noqa: S104 — an address the attacker names, not one we bind
        "224.0.0.251",  # multicast
        "240.0.0.1",  # reserved
        "::1",
        "fe80::1",
        "fd00::5",  # unique local
        "ff02::1",  # multicast
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
    ],
)
async def test_a_listed_media_host_that_resolves_to_an_internal_address_is_refused(
    fake: FakeFlowServer, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    asked = resolve_as(monkeypatch, {"media.example": [address]})
    async with FlowClient(TOKEN, fake.base_url, media_hosts=("media.example",)) as client:
        fake.fail_next(200, body=linked("https://media.example/image.jpg"))
        with pytest.raises(MediaRefused) as caught:
            await rendered(client, params())
    assert asked == ["media.example"]
    assert "internal address" in caught.value.detail


async def test_a_listed_host_resolving_to_loopback_is_not_connected(
    fake: FakeFlowServer, trap: Trap, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"cdn.media.example": ["127.0.0.1"]})
    async with FlowClient(TOKEN, fake.base_url, media_hosts=("*.example",)) as client:
        fake.fail_next(200, body=linked(f"https://cdn.media.example:{trap.port}/i.jpg"))
        with pytest.raises(MediaRefused):
            await rendered(client, params())
    assert trap.connections == 0


async def test_a_host_that_rebinds_after_the_check_is_reached_at_the_checked_address(
    fake: FakeFlowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first answer passes the check (127.0.0.2 counts as public here); every later answer
    # is loopback. The connection must go where the check said, not where DNS says next.
    monkeypatch.setattr(media, "is_public", lambda ip: str(ip) == "127.0.0.2")
    asked = resolve_as(monkeypatch, {"rebind.example": ["127.0.0.2", "127.0.0.1"]})
    async with Trap("127.0.0.2") as checked, Trap("127.0.0.1", checked.port) as rebound:
        async with FlowClient(TOKEN, fake.base_url, media_hosts=("rebind.example",)) as client:
            url = f"https://rebind.example:{checked.port}/i.jpg"
            fake.fail_next(200, body=linked(url))
            with pytest.raises(Unavailable):  # the trap speaks no TLS
                await rendered(client, params())
        assert checked.connections == 1
        assert rebound.connections == 0
    assert asked == ["rebind.example"]


async def test_a_media_host_redirect_to_an_internal_address_is_refused(
    fake: FakeFlowServer, client: FlowClient, trap: Trap
) -> None:
    fake.fife_answer_next(redirect(f"http://127.0.0.1:{trap.port}/latest/meta-data/"))
    with pytest.raises(MediaRefused):
        await rendered(client, params())
    assert trap.connections == 0
    assert len(fake.fife_requests()) == 1


async def test_endless_media_redirects_stop_after_three(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    for _ in range(10):
        fake.fife_answer_next(redirect(f"{fake.root_url}/fife/again.jpg"))
    with pytest.raises(MediaRefused) as caught:
        await rendered(client, params())
    assert "redirected more than 3 times" in caught.value.detail
    assert len(fake.fife_requests()) == 4  # the link and three redirects


async def test_a_media_redirect_within_the_rules_is_followed(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    # The real link, moved once: a relative Location on the same origin is fine.
    first = await rendered(client, params())
    fake.fife_answer_next(redirect("/fife/elsewhere.jpg", status=307))
    fake.fife_answer_next(RawAnswer(200, {"Content-Type": "image/png"}, [picture("PNG")]))
    second = await rendered(client, params())
    assert second.pictures[0].mime == "image/png"
    assert [r.path for r in fake.fife_requests()][-1] == "/fife/elsewhere.jpg"
    assert first.pictures[0].mime == "image/jpeg"


async def test_an_api_redirect_takes_neither_the_prompt_nor_the_token_elsewhere(
    fake: FakeFlowServer, client: FlowClient, trap: Trap
) -> None:
    # httpx would drop Authorization on a cross-origin hop but replay a 307's body: the prompt.
    fake.answer_next(redirect(f"http://127.0.0.1:{trap.port}/steal", status=307))
    with pytest.raises(Unavailable) as caught:
        await rendered(client, params())
    assert trap.connections == 0
    assert caught.value.status == 307
    assert "redirect" in caught.value.detail


# -- images: bounded before decoding, verified by content ------------------------------------


async def test_a_download_that_is_not_a_picture_is_refused(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    page = b"<html><body>Sign in to continue</body></html>"
    fake.fife_answer_next(RawAnswer(200, {"Content-Type": "image/jpeg"}, [page]))
    with pytest.raises(MediaRefused) as caught:
        await rendered(client, params())
    assert "not a PNG, JPEG or WebP picture" in caught.value.detail
    assert caught.value.account == JO
    assert not isinstance(caught.value, RetryableError)


@pytest.mark.parametrize("shape", ["media-inline", "panels"])
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"#!/bin/sh\nrm -rf /\n", id="script"),
        pytest.param(picture("GIF"), id="gif"),
        pytest.param(picture("BMP"), id="bmp"),
        pytest.param(picture("ICO"), id="ico"),
        pytest.param(picture("JPEG", (400, 300))[:600], id="truncated-jpeg"),
        pytest.param(picture("PNG")[:-20], id="truncated-png"),
    ],
)
async def test_an_inline_image_that_is_not_a_whole_picture_is_refused(
    fake: FakeFlowServer, client: FlowClient, shape: str, data: bytes
) -> None:
    fake.fail_next(200, body=inline(data) if shape == "media-inline" else panels(data))
    with pytest.raises(MediaRefused):
        await rendered(client, params())


async def test_an_upscale_that_is_not_a_picture_is_refused(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    made = await rendered(client, params())
    fake.fail_next(200, endpoint="upscale", body={"encodedImage": base64.b64encode(b"MZ").decode()})
    with pytest.raises(MediaRefused):
        await client.upscale_image(handle_of(made.pictures[0]), "2k", account=JO)


async def test_a_pixel_bomb_is_refused_without_decoding_it(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.fail_next(200, body=inline(png_header(60_000, 60_000)))
    started = time.monotonic()
    with pytest.raises(MediaRefused) as caught:
        await rendered(client, params())
    assert time.monotonic() - started < 1.0
    assert "pixels" in caught.value.detail


async def test_an_inline_image_over_the_bound_is_refused_before_decoding(
    fake: FakeFlowServer,
) -> None:
    async with FlowClient(TOKEN, fake.base_url, max_image_bytes=3000) as client:
        # Valid base64 of 6000 zero bytes: decoded, it would be "not a picture" instead.
        fake.fail_next(200, body=inline("A" * 8000))
        with pytest.raises(MediaRefused) as caught:
            await rendered(client, params())
    assert "larger than" in caught.value.detail


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_a_real_picture_in_each_format_passes(
    fake: FakeFlowServer, client: FlowClient, fmt: str
) -> None:
    fake.fail_next(200, body=inline(picture(fmt)))
    generation = await rendered(client, params())
    assert generation.pictures[0].mime == f"image/{fmt.lower()}"


# -- answers: bounded, well-formed, plausible --------------------------------------------------


def spaces(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON object that never gets to its point: ``{"media": [`` and ``total`` spaces."""
    yield b'{"media": ['
    for _ in range(total // chunk):
        yield b" " * chunk


def gzip_bomb(total: int) -> Iterator[bytes]:
    """``total`` bytes of spaces, gzip-compressed on the fly (about 1000:1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1 << 20)
    for _ in range(total >> 20):
        if out := packer.compress(block):
            yield out
    yield packer.flush()


async def test_a_json_answer_that_never_ends_is_cut_at_the_bound(fake: FakeFlowServer) -> None:
    total = 64 * 2**20
    async with FlowClient(TOKEN, fake.base_url, max_image_bytes=1000) as client:
        fake.answer_next(RawAnswer(200, {"Content-Type": "application/json"}, spaces(total)))
        with pytest.raises(Unavailable) as caught:
            await rendered(client, params())
    assert "answered more than" in caught.value.detail
    await asyncio.sleep(0.1)
    assert fake.images_requests()[-1].sent < total / 4


async def peak_memory_of(call: Awaitable[object]) -> tuple[BaseException | None, int]:
    """What ``call`` raised (or None), and the most memory Python held at once meanwhile."""
    failure: BaseException | None = None
    tracemalloc.start()
    try:
        await call
    except Exception as exc:
        failure = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return failure, peak


async def test_a_gzip_bomb_answer_is_cut_at_the_bound(fake: FakeFlowServer) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    fake.answer_next(RawAnswer(200, headers, list(gzip_bomb(512 * 2**20))))  # 0.5 MB on the wire
    async with FlowClient(TOKEN, fake.base_url, max_image_bytes=1000) as client:
        failure, peak = await peak_memory_of(rendered(client, params()))
    assert isinstance(failure, Unavailable)
    assert "answered more than" in failure.detail
    assert peak < 32 * 2**20  # inflated up to the 4 MiB bound, not to 512 MiB


async def test_a_stacked_gzip_bomb_answer_is_refused_unopened(fake: FakeFlowServer) -> None:
    # Each layer multiplies by 1000: a few KB on the wire, 64 MiB after two, gigabytes after three.
    twice = zlib.compress(b"".join(gzip_bomb(64 * 2**20)), 9, wbits=31)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip, gzip"}
    fake.answer_next(RawAnswer(200, headers, [twice]))
    async with FlowClient(TOKEN, fake.base_url) as client:
        failure, peak = await peak_memory_of(rendered(client, params()))
    assert isinstance(failure, Unavailable)
    assert "DecodingError" in failure.detail
    assert peak < 32 * 2**20


async def test_a_download_that_never_ends_is_cut_at_the_bound(fake: FakeFlowServer) -> None:
    total = 64 * 2**20
    async with FlowClient(TOKEN, fake.base_url, max_image_bytes=2**20) as client:
        fake.fife_answer_next(RawAnswer(200, {"Content-Type": "image/jpeg"}, spaces(total)))
        with pytest.raises(MediaRefused) as caught:
            await rendered(client, params())
    assert "larger than" in caught.value.detail
    await asyncio.sleep(0.1)
    assert fake.fife_requests()[-1].sent < total / 4


async def test_deeply_nested_json_is_a_broken_answer(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.answer_next(RawAnswer(200, {"Content-Type": "application/json"}, [b"[" * 200_000]))
    with pytest.raises(Unavailable):
        await rendered(client, params())


async def test_invalid_utf8_json_is_a_broken_answer(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    body = b'{"media": [{"image": {"generatedImage": {"seed": "\xff\xfe\xc0"}}}]}'
    fake.answer_next(RawAnswer(200, {"Content-Type": "application/json"}, [body]))
    with pytest.raises(Unavailable):
        await rendered(client, params())


async def test_huge_headers_are_a_broken_answer(fake: FakeFlowServer, client: FlowClient) -> None:
    headers = {f"X-Junk-{i}": "x" * 1000 for i in range(300)}
    fake.answer_next(RawAnswer(200, headers, [b"{}"]))
    with pytest.raises(Unavailable):
        await rendered(client, params())


async def test_a_huge_error_text_costs_no_time(fake: FakeFlowServer, client: FlowClient) -> None:
    # E-mail masking scanned the whole text, quadratically: 100 KB took half a minute.
    fake.fail_next(400, body={"error": "a" * 100_000 + f" for {JO}"})
    started = time.monotonic()
    with pytest.raises(InvalidRequestError) as caught:
        await rendered(client, params())
    assert time.monotonic() - started < 1.0
    assert len(caught.value.detail) <= 500


async def test_an_answer_with_more_images_than_asked_is_refused_without_downloading(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    entry = {"mediaGenerationId": "user:1", "fifeUrl": f"{fake.root_url}/fife/x.jpg?sig=1"}
    body = {"media": [{"image": {"generatedImage": entry}}] * 5000}
    fake.fail_next(200, body=body)
    with pytest.raises(Unavailable) as caught:
        await rendered(client, params(count=2))
    assert "5000 images" in caught.value.detail
    assert fake.fife_requests() == []


@pytest.mark.parametrize(
    "media_id",
    [
        pytest.param("user:1\nINFO forged log line", id="newline"),
        pytest.param("user:" + "x" * 10_000, id="10kb"),
        pytest.param("", id="empty"),
        pytest.param("user:1 image", id="space"),
    ],
)
async def test_a_strange_media_id_is_a_broken_answer(
    fake: FakeFlowServer, client: FlowClient, media_id: str
) -> None:
    fake.fail_next(200, body=inline(picture("PNG"), mediaGenerationId=media_id))
    with pytest.raises(Unavailable):
        await rendered(client, params())


@pytest.mark.parametrize("seed", [-5, 2**31, 10**30, True, 1.5, "7"])
async def test_an_absurd_seed_is_dropped(
    fake: FakeFlowServer, client: FlowClient, seed: object
) -> None:
    fake.fail_next(200, body=inline(picture("PNG"), seed=seed))
    generation = await rendered(client, params())
    assert generation.pictures[0].seed is None


@pytest.mark.parametrize("value", ["1e12", "inf", "nan", "-3", "Wed, 21 Oct 2015 07:28:00 GMT"])
async def test_an_absurd_retry_after_is_no_hint(
    fake: FakeFlowServer, client: FlowClient, value: str
) -> None:
    body = b'{"error": "slow down"}'
    fake.answer_next(
        RawAnswer(429, {"Retry-After": value, "Content-Type": "application/json"}, [body])
    )
    with pytest.raises(Throttled) as caught:
        await rendered(client, params())
    assert caught.value.retry_after is None


async def test_cookies_from_the_upstream_are_not_kept_or_sent_back(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    body = b'{"' + JO.encode() + b'": {"health": "OK"}}'
    tracking = {"Set-Cookie": "track=" + "x" * 3000, "Content-Type": "application/json"}
    fake.answer_next(RawAnswer(200, tracking, [body]), endpoint="accounts")
    fake.fife_answer_next(
        RawAnswer(200, {**tracking, "Content-Type": "image/png"}, [picture("PNG")])
    )
    await client.list_accounts()
    await rendered(client, params())
    await client.list_accounts()
    await rendered(client, params())
    assert all("cookie" not in r.headers for r in fake.requests)


async def test_account_names_that_cannot_be_addresses_are_skipped(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    listed = {JO: {"health": "OK"}, "evil\nINFO forged": {}, "x" * 1000: {}, "": {}}
    fake.fail_next(200, endpoint="accounts", body=listed)
    assert [a.email for a in await client.list_accounts()] == [JO]


# -- deadlines: end to end, not between chunks -------------------------------------------------


async def test_a_trickling_answer_ends_at_the_generation_deadline(fake: FakeFlowServer) -> None:
    fake.body_trickle = 0.3  # a byte every 0.3 s: never silent long enough for a read timeout
    async with FlowClient(TOKEN, fake.base_url, timeouts=FlowTimeouts(generate=2)) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await rendered(client, params())
        elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 3.0, elapsed
    assert caught.value.account == JO
    await asyncio.sleep(0.1)
    assert fake.in_flight.get(JO, 0) == 0  # the capacity slot is free again


async def test_a_trickling_download_ends_at_the_download_deadline(fake: FakeFlowServer) -> None:
    fake.fife_trickle = 0.3  # the deadline covers the downloads together, after the answer
    timeouts = FlowTimeouts(generate=2, download=2)
    async with FlowClient(TOKEN, fake.base_url, timeouts=timeouts) as client:
        made = await client.generate(params(count=2))
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await client.fetch(made)
        elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 3.0, elapsed
    assert caught.value.account == JO
    assert len(fake.fife_requests()) == 2


async def test_a_trickling_upscale_ends_at_its_deadline(fake: FakeFlowServer) -> None:
    async with FlowClient(TOKEN, fake.base_url, timeouts=FlowTimeouts(generate=2)) as client:
        made = await rendered(client, params())
        fake.body_trickle = 0.3
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await client.upscale_image(handle_of(made.pictures[0]), "2k", account=JO)
        assert 1.9 <= time.monotonic() - started < 3.0


async def test_a_trickling_answer_to_any_other_call_ends_at_its_deadline(
    fake: FakeFlowServer,
) -> None:
    body = b'{"' + JO.encode() + b'": {"health": "OK"}}'
    slow = RawAnswer(200, {"Content-Type": "application/json"}, [bytes([b]) for b in body], 0.3)
    fake.answer_next(slow, endpoint="accounts")
    async with FlowClient(TOKEN, fake.base_url, timeouts=FlowTimeouts(other=1)) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await client.list_accounts()
        assert 0.9 <= time.monotonic() - started < 1.6


async def test_one_refused_image_stops_the_other_downloads(fake: FakeFlowServer) -> None:
    fake.fife_answer_next(RawAnswer(200, {"Content-Type": "image/jpeg"}, [b"not a picture"]))
    fake.fife_trickle = 0.3
    async with FlowClient(TOKEN, fake.base_url) as client:
        started = time.monotonic()
        with pytest.raises(MediaRefused):
            await rendered(client, params(count=2))
        assert time.monotonic() - started < 1.5
    await asyncio.sleep(0.2)
    assert sorted(r.status for r in fake.fife_requests()) == [200, 499]


# -- what the user sees --------------------------------------------------------------------------


async def test_a_job_answered_with_a_non_picture_fails_at_once_with_a_sentence(
    make_service: Any, flow: FakeFlowServer, store: AnyStore
) -> None:
    service, told = await make_service()
    flow.fife_answer_next(RawAnswer(200, {"Content-Type": "image/jpeg"}, [b"<?php evil(); ?>"]))
    submitted = await service.submit(owner(), "a fox --count 1")
    await told.wait_answered(submitted.job_id)
    assert told.failure(submitted.job_id) == texts.MEDIA_REFUSED
    assert len(flow.images_requests()) == 1  # not retried: each try is a paid generation
    job = await store.get_job(submitted.job_id)
    assert job is not None
    assert job.state.final
    assert await store.results(submitted.job_id) == []
