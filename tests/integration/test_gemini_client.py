"""The real ``GeminiClient`` against the real ``FakeGeminiServer`` over loopback: no mocks."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from bot.core.models_table import ModelTable
from bot.core.providers import ImageRequest, Reference, ReferenceMode, Rendering
from bot.core.upstream import (
    AuthError,
    ContentPolicyError,
    InvalidRequestError,
    MediaRefused,
    ModelUnavailable,
    ModerationError,
    OperatorError,
    PaymentError,
    QuotaExhausted,
    RejectedError,
    RetryableError,
    Throttled,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from bot.providers.gemini import GeminiClient
from bot.providers.http import USER_AGENT
from bot.providers.plumbing import Timeouts
from tests.fakes.flow_server import Recorded
from tests.fakes.gemini_server import FakeGeminiServer
from tests.rendering import rendered

MODELS = ModelTable.builtin().offers("gemini")

KEY = "AIza-SECRET-0123456789abcdef"
PRO, FLASH, OLD = "gemini-3-pro-image", "gemini-3.1-flash-image", "gemini-2.5-flash-image"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiServer]:
    async with FakeGeminiServer(api_key=KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeGeminiServer) -> AsyncIterator[GeminiClient]:
    async with GeminiClient(KEY, fake.base_url) as gemini:
        yield gemini


def picture(fmt: str = "PNG", size: tuple[int, int] = (30, 20)) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(out, fmt)
    return out.getvalue()


def request(**overrides: Any) -> ImageRequest:
    fields: dict[str, Any] = {
        "prompt": "a banana in a spacesuit",
        "model": PRO,
        "aspect_ratio": "1:1",
        "size": "1K",
        "count": 1,
        "seed": 7,
    }
    fields.update(overrides)
    return ImageRequest(**fields)


def sent(record: Recorded) -> dict[str, Any]:
    assert isinstance(record.json, dict), record
    return record.json


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(BytesIO(data)) as image:
        return image.size


def texts(exc: BaseException) -> Iterator[str]:
    yield "".join(traceback.format_exception(exc))
    current: BaseException | None = exc
    while current is not None:
        yield str(current)
        yield repr(current)
        current = current.__cause__ or current.__context__


async def wait_until(condition: Any, timeout: float = 1.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    assert condition()


# -- the wire ------------------------------------------------------------------------------


async def test_key_travels_in_the_header_only(fake: FakeGeminiServer, client: GeminiClient) -> None:
    await rendered(client, request())
    record = fake.generate_requests()[-1]
    assert record.headers["x-goog-api-key"] == KEY
    assert "key=" not in record.path
    assert record.path == f"/v1beta/models/{PRO}:generateContent"
    assert record.headers["user-agent"] == USER_AGENT
    assert "authorization" not in record.headers
    assert KEY not in repr(client)


async def test_request_body_is_exactly_the_documented_shape(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    png, jpeg = picture("PNG"), picture("JPEG")
    refs = (Reference(data=png, mime="image/png"), Reference(data=jpeg, mime="image/jpeg"))
    await rendered(client, request(aspect_ratio="21:9", size="4K", seed=123, references=refs))
    assert sent(fake.generate_requests()[-1]) == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "a banana in a spacesuit"},
                    {
                        "inlineData": {
                            "mimeType": "image/png",
                            "data": base64.b64encode(png).decode(),
                        }
                    },
                    {
                        "inlineData": {
                            "mimeType": "image/jpeg",
                            "data": base64.b64encode(jpeg).decode(),
                        }
                    },
                ],
            }
        ],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": "21:9", "imageSize": "4K"},
            "seed": 123,
        },
    }


async def test_a_one_size_model_is_not_sent_a_size(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    await rendered(client, request(model=OLD, aspect_ratio="4:5"))
    config = sent(fake.generate_requests()[-1])["generationConfig"]
    assert config["imageConfig"] == {"aspectRatio": "4:5"}


async def test_auto_ratio_follows_the_first_reference(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    wide = Reference(data=picture("PNG", (40, 20)), mime="image/png")
    rendering = await rendered(client, request(aspect_ratio="auto", references=(wide,)))
    config = sent(fake.generate_requests()[-1])["generationConfig"]
    assert config["imageConfig"] == {"imageSize": "1K"}  # no aspectRatio: the model decides
    assert size_of(rendering.pictures[0].data) == (64, 36)  # 2:1 is nearest to 16:9
    await rendered(client, request(model=OLD, aspect_ratio="auto", references=(wide,)))
    assert "imageConfig" not in sent(fake.generate_requests()[-1])["generationConfig"]


async def test_auto_ratio_without_a_reference_is_refused(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await rendered(client, request(aspect_ratio="auto"))
    assert caught.value.detail == (
        "the ratio auto comes from a reference picture: add one, or choose a ratio"
    )
    assert fake.requests == []


async def test_without_a_seed_none_is_sent(fake: FakeGeminiServer, client: GeminiClient) -> None:
    rendering = await rendered(client, request(seed=None))
    assert "seed" not in sent(fake.generate_requests()[-1])["generationConfig"]
    assert rendering.pictures[0].seed is None


@pytest.mark.parametrize(
    ("model", "ratio", "size", "expected"),
    [
        (PRO, "16:9", "2K", (128, 72)),
        (PRO, "9:16", "4K", (144, 256)),
        (FLASH, "1:8", "1K", (8, 64)),
        (OLD, "1:1", "1K", (64, 64)),
    ],
)
async def test_each_model_renders_its_ratios_and_sizes(
    client: GeminiClient, model: str, ratio: str, size: str, expected: tuple[int, int]
) -> None:
    rendering = await rendered(client, request(model=model, aspect_ratio=ratio, size=size))
    assert isinstance(rendering, Rendering)
    assert rendering.provider == "gemini"
    (image,) = rendering.pictures
    assert (image.mime, size_of(image.data)) == ("image/png", expected)
    assert image.handle is None  # Gemini keeps nothing: references go back as bytes
    assert rendering.withheld == 0


@pytest.mark.parametrize("shape", ["image", "text-and-image", "thoughts"])
async def test_every_answer_shape_gives_the_final_picture(
    fake: FakeGeminiServer, client: GeminiClient, shape: Any
) -> None:
    fake.shape = shape
    rendering = await rendered(client, request(aspect_ratio="16:9"))
    # The thought draft is 8x8; the rendered picture is what comes back.
    assert size_of(rendering.pictures[0].data) == (64, 36)
    assert len(rendering.trace) == 1


async def test_same_seed_same_picture(client: GeminiClient) -> None:
    first = await rendered(client, request(seed=99))
    again = await rendered(client, request(seed=99))
    other = await rendered(client, request(seed=100))
    assert first.pictures[0].data == again.pictures[0].data != other.pictures[0].data


async def test_seeds_wrap_into_int32(fake: FakeGeminiServer, client: GeminiClient) -> None:
    rendering = await rendered(client, request(seed=2**31 - 1, count=2))
    seeds = [sent(r)["generationConfig"]["seed"] for r in fake.generate_requests()]
    assert sorted(seeds) == [0, 2**31 - 1]
    assert [i.seed for i in rendering.pictures] == [2**31 - 1, 0]


# -- count: one image per call, all at once -----------------------------------------------


async def test_count_four_is_four_calls_in_parallel(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    fake.latency = 0.3
    rendering = await rendered(client, request(count=4, seed=10))
    assert len(fake.generate_requests()) == 4
    assert fake.peak == 4  # all four at the server at once, however loaded the machine
    assert [i.seed for i in rendering.pictures] == [10, 11, 12, 13]
    assert sorted(sent(r)["generationConfig"]["seed"] for r in fake.generate_requests()) == [
        10,
        11,
        12,
        13,
    ]
    assert len({i.data for i in rendering.pictures}) == 4
    assert len(set(rendering.trace)) == 4


async def test_parallel_calls_stay_within_the_concurrency_limit(fake: FakeGeminiServer) -> None:
    fake.latency = 0.2
    limits = replace(GeminiClient(KEY).profile.limits, concurrency=2)
    async with GeminiClient(KEY, fake.base_url, limits=limits) as client:
        started = time.monotonic()
        rendering = await rendered(client, request(count=4))
    assert len(rendering.pictures) == 4
    assert fake.peak == 2
    assert time.monotonic() - started >= 0.4


async def test_one_withheld_image_is_reported_not_hidden(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    fake.finish_next("IMAGE_SAFETY")
    rendering = await rendered(client, request(count=3))
    assert len(rendering.pictures) == 2
    assert rendering.withheld == 1
    assert rendering.withheld_reason == "no image (finishReason IMAGE_SAFETY)"


async def test_every_image_withheld_raises_moderation(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    fake.finish_next("IMAGE_SAFETY", count=2)
    with pytest.raises(ModerationError) as caught:
        await rendered(client, request(count=2))
    assert caught.value.status == 200
    assert not isinstance(caught.value, RetryableError | RejectedError)


async def test_one_failing_call_cancels_its_siblings(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    fake.latency = 2.0
    fake.fail_next(503)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        await rendered(client, request(count=3))
    assert time.monotonic() - started < 1.0
    assert caught.value.status == 503
    await wait_until(lambda: fake.in_flight == 0)
    statuses = sorted(r.status for r in fake.generate_requests())
    assert statuses == [499, 499, 503]


# -- refusals before any call --------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        ({"aspect_ratio": "1:8"}, "takes the aspect ratios"),
        ({"model": OLD, "size": "2K"}, "renders at 1K"),
        ({"count": 5}, "1 to 4 images"),
        (
            {"model": OLD, "references": (Reference(data=b"x", mime="image/png"),) * 4},
            "at most 3 reference images",
        ),
        ({"references": (Reference(handle="files/abc"),)}, "needs the reference pictures"),
        (
            {"references": (Reference(data=b"\0" * (7 * 2**20 + 1), mime="image/png"),)},
            "up to 7168 KiB",
        ),
        (
            {"references": (Reference(data=b"\0" * (6 * 2**20), mime="image/png"),) * 3},
            "at most 20 MB of references",
        ),
    ],
)
async def test_unfit_requests_are_refused_without_a_call(
    fake: FakeGeminiServer, client: GeminiClient, overrides: dict[str, Any], sentence: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await rendered(client, request(**overrides))
    assert sentence in caught.value.detail
    assert caught.value.status is None
    assert fake.requests == []


# -- what a 200 can mean -------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "OTHER"])
async def test_a_blocked_prompt_is_content_policy(
    fake: FakeGeminiServer, client: GeminiClient, reason: str
) -> None:
    fake.block_prompt_next(reason)
    with pytest.raises(ContentPolicyError) as caught:
        await rendered(client, request())
    assert caught.value.status == 200
    assert caught.value.detail == f"the prompt was blocked ({reason})"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("IMAGE_SAFETY", ModerationError),
        ("SAFETY", ModerationError),
        ("RECITATION", ModerationError),
        ("IMAGE_RECITATION", ModerationError),
        ("NO_IMAGE", ModerationError),
        ("IMAGE_OTHER", ModerationError),
        ("OTHER", ModerationError),
        ("PROHIBITED_CONTENT", ContentPolicyError),
        ("IMAGE_PROHIBITED_CONTENT", ContentPolicyError),
        ("BLOCKLIST", ContentPolicyError),
        ("SPII", ContentPolicyError),
    ],
)
async def test_finish_reasons_without_an_image(
    fake: FakeGeminiServer, client: GeminiClient, reason: str, kind: type[UpstreamError]
) -> None:
    fake.finish_next(reason)
    with pytest.raises(kind) as caught:
        await rendered(client, request())
    assert type(caught.value) is kind
    assert caught.value.detail == f"no image (finishReason {reason})"


async def test_a_text_only_answer_says_what_the_model_said(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    fake.finish_next("STOP", text="I can only draw bananas on Tuesdays.")
    with pytest.raises(ModerationError) as caught:
        await rendered(client, request())
    assert caught.value.detail == (
        "no image (finishReason STOP): I can only draw bananas on Tuesdays."
    )


async def test_no_candidates_at_all_is_moderation(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    fake.empty_next()
    with pytest.raises(ModerationError) as caught:
        await rendered(client, request())
    assert caught.value.detail == "the answer carried no candidates"


def _picture_answer(data: str) -> dict[str, Any]:
    part = {"inlineData": {"mimeType": "image/png", "data": data}}
    return {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}


async def test_broken_base64_is_unavailable(fake: FakeGeminiServer, client: GeminiClient) -> None:
    fake.fail_next(200, body=_picture_answer("%%%"))
    with pytest.raises(Unavailable) as caught:
        await rendered(client, request())
    assert caught.value.detail == "an image came back with broken base64"


@pytest.mark.parametrize(
    "data", [b"GIF89a" + b"\0" * 20, b"", b"<html>hello</html>"], ids=["gif", "empty", "html"]
)
async def test_an_answer_that_is_no_picture_is_refused(
    fake: FakeGeminiServer, client: GeminiClient, data: bytes
) -> None:
    fake.fail_next(200, body=_picture_answer(base64.b64encode(data).decode()))
    with pytest.raises(MediaRefused) as caught:
        await rendered(client, request())
    assert "is not a PNG, JPEG or WebP picture" in caught.value.detail


async def test_pictures_are_bounded_in_pixels_and_bytes(fake: FakeGeminiServer) -> None:
    async with GeminiClient(KEY, fake.base_url, max_image_pixels=64 * 64 - 1) as few:
        assert len((await rendered(few, request(aspect_ratio="16:9"))).pictures) == 1
        with pytest.raises(MediaRefused) as too_many:
            await rendered(few, request(aspect_ratio="1:1"))
    async with GeminiClient(KEY, fake.base_url, max_image_bytes=100) as small:
        with pytest.raises(MediaRefused) as too_big:
            await rendered(small, request())
        # An answer past its bound (one picture, two drafts, 4 MiB of JSON) is not read whole.
        fake.fail_next(200, body={"candidates": [], "padding": "x" * (5 * 2**20)})
        with pytest.raises(Unavailable) as too_long:
            await rendered(small, request())
    assert "more than 4095 pixels" in too_many.value.detail
    assert too_big.value.detail == "an inline image is larger than 100 bytes"
    assert "answered more than" in too_long.value.detail


# -- error statuses ------------------------------------------------------------------------


async def test_a_wrong_key_is_an_auth_error(fake: FakeGeminiServer) -> None:
    async with GeminiClient("AIza-wrong-key", fake.base_url) as client:
        with pytest.raises(AuthError) as caught:
            await rendered(client, request())
    # Google answers 400 INVALID_ARGUMENT for it: the reason, not the status, decides.
    assert caught.value.status == 400
    assert caught.value.detail == (
        "API key not valid. Please pass a valid API key. (API_KEY_INVALID)"
    )
    assert isinstance(caught.value, OperatorError)


async def test_a_missing_key_is_an_auth_error(fake: FakeGeminiServer) -> None:
    async with GeminiClient("", fake.base_url) as client:
        with pytest.raises(AuthError) as caught:
            await rendered(client, request())
    assert caught.value.status == 403


@pytest.mark.parametrize(
    ("status", "body", "kind", "detail_part"),
    [
        (400, None, InvalidRequestError, "invalid argument"),
        (
            400,
            {
                "error": {
                    "code": 400,
                    "status": "FAILED_PRECONDITION",
                    "message": "Gemini API free tier is not available in your country. "
                    "Please enable "
                    "billing on your project in Google AI Studio.",
                }
            },
            PaymentError,
            "enable billing",
        ),
        (401, None, AuthError, "invalid authentication credentials"),
        (403, None, AuthError, "reported as leaked"),
        (500, None, Unavailable, "internal error"),
        (503, None, Unavailable, "overloaded"),
        (504, None, UpstreamTimeout, "timed out"),
        (
            502,
            {"error": {"code": 502, "message": "Bad Gateway", "status": "UNKNOWN"}},
            Unavailable,
            "Bad Gateway",
        ),
    ],
)
async def test_statuses_map_onto_the_error_tree(
    fake: FakeGeminiServer,
    client: GeminiClient,
    status: int,
    body: dict[str, Any] | None,
    kind: type[UpstreamError],
    detail_part: str,
) -> None:
    fake.fail_next(status, body=body)
    with pytest.raises(kind) as caught:
        await rendered(client, request())
    assert type(caught.value) is kind
    assert caught.value.status == status
    assert detail_part in caught.value.detail


async def test_a_retired_model_is_model_unavailable(client: GeminiClient) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        await rendered(client, request(model="gemini-3-pro-image-preview"))
    assert caught.value.status == 404
    assert "is not found for API version v1beta" in caught.value.detail
    assert isinstance(caught.value, OperatorError)


async def test_per_minute_quota_is_throttled_with_google_retry_delay(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    fake.rpm, fake.window = 2, 30.0
    await rendered(client, request(count=2))
    with pytest.raises(Throttled) as caught:
        await rendered(client, request())
    exc = caught.value
    assert exc.status == 429
    assert exc.retry_after is not None
    assert 28.0 < exc.retry_after <= 30.0  # RetryInfo.retryDelay, not a guess
    assert "Quota exceeded" in exc.detail


async def test_retry_after_header_when_google_gives_no_retry_info(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    body = {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}
    fake.fail_next(429, body=body, retry_after=4)
    with pytest.raises(Throttled) as caught:
        await rendered(client, request())
    assert caught.value.retry_after == 4.0
    fake.fail_next(429, body=body)
    with pytest.raises(Throttled) as bare:
        await rendered(client, request())
    assert bare.value.retry_after is None


async def test_a_used_up_day_is_quota_exhausted(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    fake.rpd = 1
    await rendered(client, request())
    with pytest.raises(QuotaExhausted) as caught:
        await rendered(client, request())
    assert caught.value.status == 429
    assert isinstance(caught.value, OperatorError)
    assert not isinstance(caught.value, RetryableError)


async def test_a_project_without_billing_is_a_payment_error(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    fake.paid = False
    with pytest.raises(PaymentError) as caught:
        await rendered(client, request())
    assert caught.value.status == 429
    assert "limit: 0" in caught.value.detail


async def test_an_overloaded_model_is_unavailable(fake: FakeGeminiServer) -> None:
    fake.capacity, fake.latency = 1, 0.3
    async with GeminiClient(KEY, fake.base_url) as client:
        results = await asyncio.gather(
            *(rendered(client, request()) for _ in range(3)), return_exceptions=True
        )
    assert sum(isinstance(r, Rendering) for r in results) == 1
    refused = [r for r in results if isinstance(r, Unavailable)]
    assert len(refused) == 2
    assert all(r.status == 503 for r in refused)


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with GeminiClient(KEY, f"http://127.0.0.1:{port}") as client:
        with pytest.raises(Unavailable) as caught:
            await rendered(client, request())
    assert caught.value.status is None
    assert caught.value.__cause__ is not None


async def test_the_key_never_shows_in_errors(fake: FakeGeminiServer) -> None:
    errors: list[BaseException] = []
    async with GeminiClient(KEY, fake.base_url, timeouts=Timeouts(total=0.3)) as client:
        for status in (400, 401, 403, 429, 500, 503, 504):
            fake.fail_next(status)
            with pytest.raises(UpstreamError) as caught:
                await rendered(client, request())
            errors.append(caught.value)
        fake.stall_next(2)
        with pytest.raises(UpstreamTimeout) as timed_out:
            await rendered(client, request())
        errors.append(timed_out.value)
    for exc in errors:
        for text in texts(exc):
            assert KEY not in text


# -- deadlines -----------------------------------------------------------------------------


async def test_the_end_to_end_deadline_cuts_a_slow_render(fake: FakeGeminiServer) -> None:
    async with GeminiClient(KEY, fake.base_url, timeouts=Timeouts(total=0.3)) as client:
        fake.stall_next(3)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await rendered(client, request())
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 1.0
        assert "longer than 0.3 s" in caught.value.detail
        await wait_until(lambda: fake.in_flight == 0)
        assert fake.generate_requests()[-1].status == 499
        assert len((await rendered(client, request())).pictures) == 1


async def test_the_per_request_timeout_also_holds(fake: FakeGeminiServer) -> None:
    timeouts = Timeouts(request=0.3, total=10)
    async with GeminiClient(KEY, fake.base_url, timeouts=timeouts) as client:
        fake.stall_next(3)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await rendered(client, request())
    assert time.monotonic() - started < 1.0
    assert "got no answer in time" in caught.value.detail


# -- check ---------------------------------------------------------------------------------


async def test_check_confirms_the_key_and_every_model(
    fake: FakeGeminiServer, client: GeminiClient
) -> None:
    line = await client.check()
    assert line == (
        "gemini: key accepted; gemini-3.1-flash-image, gemini-3-pro-image, "
        "gemini-2.5-flash-image available"
    )
    assert [r.path for r in fake.requests] == [f"/v1beta/models/{m.provider_model}" for m in MODELS]
    assert client.profile.references is ReferenceMode.BYTES


async def test_check_names_a_retired_model(fake: FakeGeminiServer) -> None:
    stale = (
        *MODELS,
        replace(MODELS[1], model="old-pro", provider_model="gemini-3-pro-image-preview"),
    )
    async with GeminiClient(KEY, fake.base_url, models=stale) as client:
        with pytest.raises(ModelUnavailable) as caught:
            await client.check()
    assert "gemini-3-pro-image-preview" in caught.value.detail


async def test_check_with_a_wrong_key(fake: FakeGeminiServer) -> None:
    async with GeminiClient("AIza-nope", fake.base_url) as client:
        with pytest.raises(AuthError):
            await client.check()
