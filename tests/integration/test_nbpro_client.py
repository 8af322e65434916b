"""The real ``NbproClient`` against the real ``FakeNbproServer`` over loopback: no mocks."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from bot.core.providers import ImageRequest, Pending, Reference, ReferenceMode, Rendering
from bot.core.upstream import (
    AuthError,
    InvalidRequestError,
    MediaRefused,
    ModerationError,
    OperatorError,
    PaymentError,
    RetryableError,
    Throttled,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from bot.providers.http import USER_AGENT
from bot.providers.nbpro import NbproClient
from bot.providers.plumbing import Timeouts
from tests.fakes.nbpro_server import FakeNbproServer
from tests.rendering import rendered

KEY = "sk-SECRET-nbpro-0123456789"
NB2 = "nano-banana-2"


@pytest.fixture
async def fake() -> AsyncIterator[FakeNbproServer]:
    async with FakeNbproServer(api_key=KEY) as server:
        yield server


def make(fake: FakeNbproServer, **kwargs: Any) -> NbproClient:
    # The fake serves its pictures from its own origin, which the media rules trust as the API's.
    return NbproClient(KEY, fake.base_url, **kwargs)


@pytest.fixture
async def client(fake: FakeNbproServer) -> AsyncIterator[NbproClient]:
    async with make(fake) as nbpro:
        yield nbpro


def picture(fmt: str = "PNG", size: tuple[int, int] = (30, 20)) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, (10, 120, 30)).save(out, fmt)
    return out.getvalue()


def request(**overrides: Any) -> ImageRequest:
    fields: dict[str, Any] = {
        "prompt": "a banana on the moon",
        "model": NB2,
        "aspect_ratio": "1:1",
        "size": "1K",
        "count": 1,
    }
    fields.update(overrides)
    return ImageRequest(**fields)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(BytesIO(data)) as image:
        return image.size


async def wait_until(condition: Any, timeout: float = 1.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    assert condition()


# -- the wire ------------------------------------------------------------------------------


async def test_without_references_the_body_is_json(
    fake: FakeNbproServer, client: NbproClient
) -> None:
    rendering = await rendered(client, request(aspect_ratio="21:9", size="4K"))
    record = fake.render_requests()[-1]
    assert record.headers["content-type"] == "application/json"
    assert record.json == {"prompt": "a banana on the moon", "size": "4k", "aspectRatio": "21:9"}
    assert record.headers["authorization"] == f"Bearer {KEY}"
    assert record.headers["user-agent"] == USER_AGENT
    (image,) = rendering.pictures
    assert (image.mime, size_of(image.data), image.seed, image.handle) == (
        "image/png",
        (256, 109),
        None,
        None,
    )
    assert rendering.provider == "nbpro"


async def test_references_go_as_multipart_files(fake: FakeNbproServer, client: NbproClient) -> None:
    png, jpeg = picture("PNG"), picture("JPEG")
    refs = (Reference(data=png, mime="image/png"), Reference(data=jpeg, mime="image/jpeg"))
    await rendered(client, request(references=refs, size="2K", aspect_ratio="3:2"))
    record = fake.render_requests()[-1]
    assert record.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert record.json == {"prompt": "a banana on the moon", "size": "2k", "aspectRatio": "3:2"}
    uploads = fake.uploads[-1]
    assert [(u.filename, u.mime, u.data) for u in uploads] == [
        ("reference-1.png", "image/png", png),
        ("reference-2.jpeg", "image/jpeg", jpeg),
    ]


async def test_downloads_carry_no_key(fake: FakeNbproServer, client: NbproClient) -> None:
    await rendered(client, request(count=2))
    assert len(fake.downloads) == 2
    for record in fake.downloads:
        assert "authorization" not in record.headers
        assert KEY not in " ".join(record.headers.values())
        assert record.headers["accept"] == "image/*"


async def test_generate_ends_at_the_answer_and_fetch_downloads(
    fake: FakeNbproServer, client: NbproClient
) -> None:
    made = await client.generate(request(count=2))
    assert fake.downloads == []  # the service's capacity is given back before any download
    assert all(isinstance(image, Pending) for image in made.images)
    fetched = await client.fetch(made)
    assert len(fake.downloads) == 2
    assert [image.mime for image in fetched.pictures] == ["image/png", "image/png"]


# -- count and concurrency -----------------------------------------------------------------


async def test_count_is_parallel_calls(fake: FakeNbproServer, client: NbproClient) -> None:
    fake.latency = 0.3
    rendering = await rendered(client, request(count=4))
    # All four at the server at once (its peak), not a timed bound a loaded machine stretches.
    assert (len(rendering.pictures), fake.peak, len(fake.render_requests())) == (4, 4, 4)


async def test_the_plans_concurrency_is_never_exceeded(fake: FakeNbproServer) -> None:
    fake.latency = 0.2
    async with make(fake, plan="standard") as client:
        renderings = await asyncio.gather(*(rendered(client, request(count=4)) for _ in range(2)))
    assert sum(len(r.pictures) for r in renderings) == 8
    assert fake.peak == 5
    assert fake.throttled == 0


async def test_a_second_process_over_the_limit_is_throttled(fake: FakeNbproServer) -> None:
    # The server, not our semaphore, refuses: as when two bots share one key.
    fake.latency = 0.3
    async with make(fake) as first, make(fake) as second:
        results = await asyncio.gather(
            rendered(first, request(count=4)),
            rendered(second, request(count=4)),
            return_exceptions=True,
        )
    assert any(isinstance(r, Rendering) for r in results)
    refused = [r for r in results if isinstance(r, Throttled)]
    assert refused
    assert all(r.status == 429 and "plan allows 5" in r.detail for r in refused)


async def test_one_empty_answer_is_withheld(fake: FakeNbproServer, client: NbproClient) -> None:
    fake.empty_next()
    rendering = await rendered(client, request(count=3))
    assert (len(rendering.pictures), rendering.withheld) == (2, 1)
    assert rendering.withheld_reason == "the answer carried no images"


async def test_every_answer_empty_is_moderation(fake: FakeNbproServer, client: NbproClient) -> None:
    fake.empty_next(2)
    with pytest.raises(ModerationError) as caught:
        await rendered(client, request(count=2))
    assert caught.value.status == 200


# -- refusals before any call --------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        ({"aspect_ratio": "4:5"}, "takes the aspect ratios"),
        ({"size": "8K"}, "renders at 1K, 2K, 4K"),
        ({"count": 0}, "1 to 4 images"),
        ({"references": (Reference(data=b"x", mime="image/png"),) * 9}, "at most 8 reference"),
        ({"references": (Reference(handle="https://x/y.png"),)}, "needs the reference pictures"),
        (
            {"references": (Reference(data=b"\0" * 2_500_001, mime="image/png"),)},
            "up to 2441 KiB",
        ),
    ],
)
async def test_unfit_requests_are_refused_without_a_call(
    fake: FakeNbproServer, client: NbproClient, overrides: dict[str, Any], sentence: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await rendered(client, request(**overrides))
    assert sentence in caught.value.detail
    assert fake.requests == []


async def test_the_pro_plan_takes_fourteen_references(fake: FakeNbproServer) -> None:
    fake.plan = "pro"
    refs = (Reference(data=picture(), mime="image/png"),) * 14
    async with make(fake, plan="pro") as client:
        assert client.profile.limits.concurrency == 10
        assert len((await rendered(client, request(references=refs))).pictures) == 1
    assert len(fake.uploads[-1]) == 14


# -- errors --------------------------------------------------------------------------------


async def test_a_wrong_key_is_an_auth_error(fake: FakeNbproServer) -> None:
    async with NbproClient("sk-wrong", fake.base_url) as client:
        with pytest.raises(AuthError) as caught:
            await rendered(client, request())
    assert (caught.value.status, caught.value.detail) == (401, "Invalid API key")
    assert "sk-wrong" not in "".join(traceback.format_exception(caught.value))


async def test_a_plan_without_api_access_is_an_auth_error(
    fake: FakeNbproServer, client: NbproClient
) -> None:
    fake.plan = "free"
    with pytest.raises(AuthError) as caught:
        await rendered(client, request())
    assert caught.value.status == 403
    assert isinstance(caught.value, OperatorError)


async def test_running_out_of_credits_is_a_payment_error(
    fake: FakeNbproServer, client: NbproClient
) -> None:
    fake.credits = 4
    await rendered(client, request(size="2K"))
    with pytest.raises(PaymentError) as caught:
        await rendered(client, request(size="2K"))
    assert (caught.value.status, caught.value.detail) == (402, "Insufficient credits")


async def test_the_services_own_400_is_invalid_request(client: NbproClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await rendered(client, request(prompt="x" * 5001))
    assert caught.value.status == 400
    assert "at most 5000 characters" in caught.value.detail


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, ModerationError),
        (502, Unavailable),
        (503, Unavailable),
        (504, Unavailable),
        (418, InvalidRequestError),
    ],
)
async def test_statuses_map_onto_the_error_tree(
    fake: FakeNbproServer, client: NbproClient, status: int, kind: type[UpstreamError]
) -> None:
    fake.fail_next(status)
    with pytest.raises(kind) as caught:
        await rendered(client, request())
    assert (type(caught.value), caught.value.status) == (kind, status)


async def test_429_carries_retry_after(fake: FakeNbproServer, client: NbproClient) -> None:
    fake.fail_next(429, retry_after=6, body={"error": "Too many concurrent generations"})
    with pytest.raises(Throttled) as caught:
        await rendered(client, request())
    assert (caught.value.retry_after, caught.value.detail) == (
        6.0,
        "Too many concurrent generations",
    )
    assert isinstance(caught.value, RetryableError)


async def test_a_non_json_error_page_is_still_mapped(
    fake: FakeNbproServer, client: NbproClient
) -> None:
    fake.fail_next(503, body={"error": "<html>maintenance</html>"})
    with pytest.raises(Unavailable) as caught:
        await rendered(client, request())
    assert caught.value.detail == "<html>maintenance</html>"


# -- containment of downloads --------------------------------------------------------------


async def test_an_image_url_on_another_host_is_not_fetched(
    fake: FakeNbproServer, client: NbproClient
) -> None:
    fake.media_root = fake.base_url.replace("127.0.0.1", "localhost")
    with pytest.raises(MediaRefused) as caught:
        await rendered(client, request())
    assert "points to localhost, which is not a media host" in caught.value.detail
    assert fake.downloads == []


async def test_a_redirect_off_the_media_hosts_is_not_followed(
    fake: FakeNbproServer, client: NbproClient
) -> None:
    fake.redirect_next(fake.base_url.replace("127.0.0.1", "localhost") + "/storage/x.png")
    with pytest.raises(MediaRefused) as caught:
        await rendered(client, request())
    assert "not a media host" in caught.value.detail
    assert [d.status for d in fake.downloads] == [302]


async def test_a_redirect_within_the_media_hosts_is_followed(
    fake: FakeNbproServer, client: NbproClient
) -> None:
    first = await rendered(client, request())
    # The next picture's download is redirected (relatively) to the first picture.
    fake.redirect_next(fake.made[0].removeprefix(fake.base_url))
    rendering = await rendered(client, request())
    assert rendering.pictures[0].data == first.pictures[0].data
    assert [d.status for d in fake.downloads][-2:] == [302, 200]


async def test_a_failed_download_is_unavailable(fake: FakeNbproServer, client: NbproClient) -> None:
    fake.media_status = 404
    with pytest.raises(Unavailable) as caught:
        await rendered(client, request())
    assert caught.value.detail == "the image download answered 404"


@pytest.mark.parametrize("served", [b"<html>not found</html>", b"GIF89a" + b"\0" * 20, b""])
async def test_a_download_that_is_no_picture_is_refused(
    fake: FakeNbproServer, client: NbproClient, served: bytes
) -> None:
    fake.serve_next(served)
    with pytest.raises(MediaRefused) as caught:
        await rendered(client, request())
    assert "is not a PNG, JPEG or WebP picture" in caught.value.detail


async def test_downloads_are_bounded_in_bytes_and_pixels(fake: FakeNbproServer) -> None:
    async with make(fake, max_image_bytes=100) as small:
        with pytest.raises(MediaRefused) as too_big:
            await rendered(small, request())
    async with make(fake, max_image_pixels=64 * 64 - 1) as few:
        with pytest.raises(MediaRefused) as too_many:
            await rendered(few, request())
    assert too_big.value.detail == "an image download is larger than 100 bytes"
    assert "more than 4095 pixels" in too_many.value.detail


# -- deadlines -----------------------------------------------------------------------------


async def test_the_end_to_end_deadline_cuts_a_slow_render(fake: FakeNbproServer) -> None:
    async with make(fake, timeouts=Timeouts(total=0.3)) as client:
        fake.stall_next(3)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await rendered(client, request())
        assert time.monotonic() - started < 1.0
        await wait_until(lambda: fake.in_flight == 0)
        assert fake.render_requests()[-1].status == 499
        assert len((await rendered(client, request())).pictures) == 1


async def test_the_key_never_shows_in_errors(fake: FakeNbproServer) -> None:
    async with make(fake, timeouts=Timeouts(total=0.3)) as client:
        assert KEY not in repr(client)
        errors: list[BaseException] = []
        for status in (400, 401, 402, 429, 500, 503):
            fake.fail_next(status)
            with pytest.raises(UpstreamError) as caught:
                await rendered(client, request())
            errors.append(caught.value)
        fake.stall_next(2)
        with pytest.raises(UpstreamTimeout) as timed_out:
            await rendered(client, request())
        errors.append(timed_out.value)
    for exc in errors:
        assert KEY not in "".join(traceback.format_exception(exc))


# -- check ---------------------------------------------------------------------------------


async def test_check_spends_nothing(fake: FakeNbproServer, client: NbproClient) -> None:
    fake.credits = 0
    assert await client.check() == "nbpro: key accepted"
    assert fake.generated == 0
    assert fake.render_requests()[-1].json == {"prompt": ""}
    assert client.profile.references is ReferenceMode.BYTES


async def test_check_with_a_wrong_key(fake: FakeNbproServer) -> None:
    async with NbproClient("sk-nope", fake.base_url) as client:
        with pytest.raises(AuthError):
            await client.check()
