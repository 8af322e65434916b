"""The real ``FlowClient`` against the real ``FakeFlowServer`` over loopback: no mocks.

Every test gets a fresh fake (an aiohttp server on a free port) and a client pointed at it, so
serialisation, headers, URL encoding, timeouts and connection handling are exercised for real.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from bot.core.providers import ImageRequest, Pending, Reference, RenderedImage, Rendering
from bot.core.upstream import (
    AccountNotFound,
    AuthError,
    CaptchaFailed,
    ContentPolicyError,
    InvalidRequestError,
    MediaRefused,
    ModerationError,
    OperatorError,
    PaymentError,
    ReferenceOwnershipError,
    RejectedError,
    RetryableError,
    SessionExpired,
    Throttled,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from bot.providers.flow import FlowClient, FlowTimeouts
from bot.providers.http import USER_AGENT
from tests.fakes.flow_server import PREFIX, FakeFlowServer, Recorded, Shape
from tests.rendering import rendered

TOKEN = "tok-SECRET-7f3a9c1e5b2d4680"
ALICE = "alice@example.com"
JO = "jo+test@example.com"  # "+" must survive the path; its masked form is "jo***@example.com"
BOB = "bob@example.com"
ACCOUNTS = (ALICE, JO, BOB)
LITE, NB2, PRO = "nano-banana-2-lite", "nano-banana-2", "nano-banana-pro"


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlowServer]:
    async with FakeFlowServer(token=TOKEN, accounts=ACCOUNTS) as server:
        yield server


@pytest.fixture
async def client(fake: FakeFlowServer) -> AsyncIterator[FlowClient]:
    async with FlowClient(TOKEN, fake.base_url) as flow_client:
        yield flow_client


def picture(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(out, fmt)
    return out.getvalue()


def params(
    email: str = JO,
    references: Sequence[str] = (),
    characters: Sequence[str] = (),
    **overrides: Any,
) -> ImageRequest:
    fields: dict[str, Any] = {
        "prompt": "a banana in a spacesuit",
        "model": NB2,
        "aspect_ratio": "1:1",
        "count": 1,
        "seed": 7,
        "account": email,
    }
    fields.update(overrides)
    return ImageRequest(
        **fields,
        references=tuple(Reference(handle=ref) for ref in references),
        characters=tuple(characters),
    )


def handle_of(image: RenderedImage) -> str:
    """A Flow image's mediaGenerationId: every image Flow makes has one."""
    assert image.handle is not None
    return image.handle


def decode_jpeg(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data), formats=["JPEG"])
    image.load()
    return image


def exception_texts(exc: BaseException) -> Iterator[str]:
    """Every text an exception (and its whole cause/context chain) can show to a log."""
    yield "".join(traceback.format_exception(exc))
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        if isinstance(current, UpstreamError):
            yield current.detail
        current = current.__cause__ or current.__context__


def sent(record: Recorded) -> dict[str, Any]:
    """The JSON object a recorded request carried."""
    assert isinstance(record.json, dict), record
    return record.json


async def wait_until(condition: Callable[[], bool], timeout: float = 1.0) -> None:
    """Poll the fake's records (plain attributes, no events to wait on) until true."""
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    assert condition()


def assert_masked(exc: UpstreamError, *emails: str) -> None:
    for address in emails:
        assert address not in str(exc)
        assert address not in exc.detail
        assert address not in repr(exc)


def assert_no_token(exc: BaseException) -> None:
    for text in exception_texts(exc):
        assert TOKEN not in text


# -- accounts, headers, token hygiene ------------------------------------------------------


async def test_list_accounts_reports_health(fake: FakeFlowServer, client: FlowClient) -> None:
    fake.set_health(BOB, "REFRESH_FAILED")
    accounts = {a.email: a for a in await client.list_accounts()}
    assert set(accounts) == set(ACCOUNTS)
    assert accounts[ALICE].healthy
    assert accounts[ALICE].health == "OK"
    assert accounts[JO].healthy
    assert not accounts[BOB].healthy
    assert accounts[BOB].health == "REFRESH_FAILED"


async def test_named_user_agent_and_bearer_token_are_sent(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    # The fake answers 403 to an empty or python-httpx User-Agent: success proves the name.
    await client.list_accounts()
    await client.upload(picture("PNG"), "image/png", account=JO)
    await rendered(client, params())
    api_calls = [r for r in fake.requests if r.path.startswith(PREFIX)]
    assert len(api_calls) == 3
    for record in api_calls:
        assert record.headers["user-agent"] == USER_AGENT
        assert not record.headers["user-agent"].startswith("python-httpx")
        assert record.headers["authorization"] == f"Bearer {TOKEN}"
        assert record.status == 200


async def test_fife_download_carries_no_token(fake: FakeFlowServer, client: FlowClient) -> None:
    fake.shape = "media-url"
    generation = await rendered(client, params(count=2))
    downloads = fake.fife_requests()
    assert len(downloads) == 2 == len(generation.pictures)
    for record in downloads:
        assert record.method == "GET"
        assert "authorization" not in record.headers
        assert TOKEN not in " ".join(record.headers.values())
        assert record.headers["accept"] == "image/*"
        assert record.status == 200
    # ...while the API call itself did carry it.
    assert fake.images_requests()[-1].headers["authorization"] == f"Bearer {TOKEN}"


async def test_wrong_token_is_an_auth_error(fake: FakeFlowServer) -> None:
    async with FlowClient("not-the-token", fake.base_url) as client:
        with pytest.raises(AuthError) as caught:
            await client.list_accounts()
    assert caught.value.status == 401
    assert isinstance(caught.value, OperatorError)
    assert "not-the-token" not in "".join(exception_texts(caught.value))


async def test_token_never_appears_in_errors_or_repr(fake: FakeFlowServer) -> None:
    errors: list[BaseException] = []
    client = FlowClient(TOKEN, fake.base_url, timeouts=FlowTimeouts(generate=0.2))
    assert TOKEN not in repr(client)
    assert TOKEN not in str(client)
    async with client:
        for status in (400, 401, 402, 403, 404, 429, 500, 503, 596):
            fake.fail_next(status)
            with pytest.raises(UpstreamError) as caught:
                await rendered(client, params())
            errors.append(caught.value)
        fake.stall_next(1.0)
        with pytest.raises(UpstreamTimeout) as timed_out:
            await rendered(client, params())
        errors.append(timed_out.value)
        fake.fife_status = 500
        with pytest.raises(Unavailable) as download:
            await rendered(client, params())
        errors.append(download.value)
    # A network failure, whose chained httpx exception carries the request.
    await fake.close()
    async with FlowClient(TOKEN, fake.base_url) as gone:
        with pytest.raises(Unavailable) as refused:
            await gone.list_accounts()
        assert refused.value.__cause__ is not None
        errors.append(refused.value)
        assert TOKEN not in repr(gone)
    for exc in errors:
        assert_no_token(exc)


async def test_connection_refused_is_unavailable(fake: FakeFlowServer) -> None:
    base_url = fake.base_url
    await fake.close()
    async with FlowClient(TOKEN, base_url) as client:
        with pytest.raises(Unavailable) as caught:
            await rendered(client, params())
    assert isinstance(caught.value, RetryableError)
    assert caught.value.account == JO
    assert caught.value.status is None


# -- uploads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
)
async def test_upload_asset_each_format(
    fake: FakeFlowServer, client: FlowClient, fmt: str, mime: str
) -> None:
    data = picture(fmt)
    media_id = await client.upload(data, mime, account=JO)
    # The id is nested one level in the answer; a str of the inner value must come out.
    assert isinstance(media_id, str)
    assert media_id.startswith("user:")
    assert f"email:{JO.encode().hex()}" in media_id
    record = fake.requests[-1]
    assert record.method == "POST"
    assert record.path == f"{PREFIX}/assets/{JO}"  # recorded URL-decoded
    assert record.account == JO
    assert record.headers["content-type"] == mime
    assert record.body == data
    # The uploaded id is usable as a reference on its owning account.
    generation = await rendered(client, params(references=[media_id]))
    assert sent(fake.images_requests()[-1])["reference_1"] == media_id
    assert len(generation.pictures) == 1


@pytest.mark.parametrize(
    "email",
    [
        JO,
        "jo%41x@example.com",  # unencoded, "%41" would arrive as "A"
        "jo/x@example.com",  # unencoded, "/" splits the path
        "jo?x@example.com",  # unencoded, "?" starts a query
        "jo#x@example.com",  # unencoded, "#" starts a fragment
    ],
)
async def test_upload_asset_url_encodes_the_email(email: str) -> None:
    # Each of these reaches the fake's account lookup intact only if it was percent-encoded.
    async with (
        FakeFlowServer(token=TOKEN, accounts=[email]) as fake,
        FlowClient(TOKEN, fake.base_url) as client,
    ):
        media_id = await client.upload(picture("PNG"), "image/png", account=email)
        assert f"email:{email.encode().hex()}" in media_id
        assert fake.requests[-1].account == email
        assert fake.requests[-1].path == f"{PREFIX}/assets/{email}"


async def test_mislabelled_upload_is_invalid_request(client: FlowClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await client.upload(picture("PNG"), "image/jpeg", account=JO)
    assert caught.value.status == 400
    assert caught.value.account == JO
    assert "image/jpeg" in caught.value.detail
    assert isinstance(caught.value, RejectedError)


async def test_upload_to_unknown_account_is_account_not_found(client: FlowClient) -> None:
    stranger = "carol+x@example.com"
    with pytest.raises(AccountNotFound) as caught:
        await client.upload(picture("PNG"), "image/png", account=stranger)
    assert caught.value.status == 404
    assert caught.value.account == stranger
    assert "ca***@example.com" in caught.value.detail
    assert_masked(caught.value, stranger)


async def test_upload_refused_by_filters_is_invalid_request(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.fail_next(
        400, endpoint="assets", body={"error": f"Image rejected for {JO}: prominent person"}
    )
    with pytest.raises(InvalidRequestError) as caught:
        await client.upload(picture("JPEG"), "image/jpeg", account=JO)
    assert caught.value.status == 400
    assert caught.value.account == JO
    assert "prominent person" in caught.value.detail
    assert "jo***@example.com" in caught.value.detail
    assert_masked(caught.value, JO)


# -- generation ----------------------------------------------------------------------------


SHAPES: list[Shape] = ["media-url", "media-inline", "panels"]


@pytest.mark.parametrize("shape", SHAPES)
async def test_generate_each_answer_shape(
    fake: FakeFlowServer, client: FlowClient, shape: Shape
) -> None:
    fake.shape = shape
    fake.image_size = (64, 48)
    generation = await rendered(client, params(count=3, seed=1000))
    assert isinstance(generation, Rendering)
    assert generation.account == JO
    assert len(generation.pictures) == 3
    assert len({image.data for image in generation.pictures}) == 3
    assert len({image.handle for image in generation.pictures}) == 3
    assert [image.seed for image in generation.pictures] == [1000, 1001, 1002]
    for image in generation.pictures:
        assert isinstance(image, RenderedImage)
        assert image.mime == "image/jpeg"
        assert isinstance(image.handle, str)
        assert image.handle.startswith("user:")
        decoded = decode_jpeg(image.data)
        assert decoded.format == "JPEG"
        assert decoded.size == (64, 48)
    if shape == "panels":
        assert generation.trace == ()
        assert fake.fife_requests() == []
    else:
        (job_id,) = generation.trace
        assert job_id.startswith("j")
        assert len(fake.fife_requests()) == (3 if shape == "media-url" else 0)

    # Each returned id works directly as a reference: proves the (flat or nested) id was parsed.
    follow_up = await rendered(
        client, params(references=[handle_of(generation.pictures[2])], seed=5)
    )
    record = fake.images_requests()[-1]
    assert record.status == 200
    assert sent(record)["reference_1"] == generation.pictures[2].handle
    assert len(follow_up.pictures) == 1
    assert follow_up.pictures[0].seed == 5


async def test_generate_sends_every_field(fake: FakeFlowServer, client: FlowClient) -> None:
    first = await rendered(client, params(count=2))
    uploaded = await client.upload(picture("PNG"), "image/png", account=JO)
    character = await client.create_character(JO, [uploaded], "Captain Banana")
    generation = await rendered(
        client,
        params(
            prompt="@reference_1 meets @character_1 on the moon",
            model=PRO,
            aspect_ratio="3:4",
            count=4,
            seed=123,
            references=[handle_of(first.pictures[0]), handle_of(first.pictures[1]), uploaded],
            characters=[character],
        ),
    )
    assert len(generation.pictures) == 4
    assert sent(fake.images_requests()[-1]) == {
        "prompt": "@reference_1 meets @character_1 on the moon",
        "model": PRO,
        "aspectRatio": "3:4",
        "count": 4,
        "seed": 123,
        "email": JO,
        "reference_1": first.pictures[0].handle,
        "reference_2": first.pictures[1].handle,
        "reference_3": uploaded,
        "character_1": character,
    }
    assert fake.images_requests()[-1].headers["content-type"].startswith("application/json")


async def test_generate_seed_zero_is_sent(fake: FakeFlowServer, client: FlowClient) -> None:
    generation = await rendered(client, params(seed=0, model=LITE, aspect_ratio="16:9"))
    body = sent(fake.images_requests()[-1])
    assert body["seed"] == 0
    assert body["model"] == LITE
    assert generation.pictures[0].seed == 0


# -- error mapping -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
async def test_empty_media_is_moderation(
    fake: FakeFlowServer, client: FlowClient, shape: Shape
) -> None:
    fake.shape = shape
    fake.empty_next()
    with pytest.raises(ModerationError) as caught:
        await rendered(client, params(count=4))
    assert caught.value.status == 200
    assert caught.value.account == JO
    assert not isinstance(caught.value, RetryableError | RejectedError)
    # The next one is fine again.
    assert len((await rendered(client, params())).pictures) == 1


@pytest.mark.parametrize(
    ("status", "kind", "detail_part"),
    [
        (400, InvalidRequestError, "supports maximum 4 context references"),
        (401, AuthError, "Unauthorized"),
        (402, PaymentError, "no subscription"),
        (403, ReferenceOwnershipError, "Unauthorized access"),
        (404, AccountNotFound, "jo***@example.com not found"),
        (429, Throttled, "PUBLIC_ERROR_USER_REQUESTS_THROTTLED"),
        (500, ModerationError, "Internal error"),
        (503, Unavailable, "temporarily unavailable"),
        (596, SessionExpired, "refresh session"),
    ],
)
async def test_injected_status_maps_to_error(
    fake: FakeFlowServer,
    client: FlowClient,
    status: int,
    kind: type[UpstreamError],
    detail_part: str,
) -> None:
    fake.fail_next(status)
    with pytest.raises(kind) as caught:
        await rendered(client, params())
    exc = caught.value
    assert type(exc) is kind
    assert exc.status == status
    assert exc.account == JO
    assert detail_part in exc.detail
    assert str(exc).startswith(f"{status} ")
    assert_masked(exc, JO)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequestError),
        (401, AuthError),
        (402, PaymentError),
        (403, ReferenceOwnershipError),
        (404, AccountNotFound),
        (429, Throttled),
        (500, ModerationError),
        (503, Unavailable),
        (596, SessionExpired),
    ],
)
async def test_emails_in_error_details_are_masked(
    fake: FakeFlowServer, client: FlowClient, status: int, kind: type[UpstreamError]
) -> None:
    body = {"error": f"trouble with {JO} and {BOB} on {ALICE}"}
    fake.fail_next(status, body=body)
    with pytest.raises(kind) as caught:
        await rendered(client, params())
    exc = caught.value
    assert (exc.status, exc.account) == (status, JO)
    assert "jo***@example.com" in exc.detail
    assert "bo***@example.com" in exc.detail
    assert "al***@example.com" in exc.detail
    assert_masked(exc, JO, BOB, ALICE)


async def test_google_form_error_detail(fake: FakeFlowServer, client: FlowClient) -> None:
    body = {
        "error": {
            "code": 400,
            "message": f"Bad argument for {JO}",
            "status": "INVALID_ARGUMENT",
            "details": [{"reason": "SOMETHING_ELSE"}],
        }
    }
    fake.fail_next(400, body=body)
    with pytest.raises(InvalidRequestError) as caught:
        await rendered(client, params())
    assert caught.value.detail == "Bad argument for jo***@example.com (SOMETHING_ELSE)"


async def test_unsafe_generation_is_content_policy(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.fail_next_unsafe()
    with pytest.raises(ContentPolicyError) as caught:
        await rendered(client, params())
    exc = caught.value
    assert (exc.status, exc.account) == (400, JO)
    assert "PUBLIC_ERROR_UNSAFE_GENERATION" in exc.detail
    assert isinstance(exc, RejectedError)
    assert not isinstance(exc, InvalidRequestError)


async def test_plain_400_is_invalid_request_with_detail(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    # A real validation failure from the fake: a prompt marker without its parameter.
    with pytest.raises(InvalidRequestError) as caught:
        await rendered(client, params(prompt="use @reference_2 please"))
    exc = caught.value
    assert (exc.status, exc.account) == (400, JO)
    assert exc.detail == "Prompt marker @reference_2 has no matching reference_2 parameter"
    assert not isinstance(exc, ContentPolicyError)


async def test_reference_of_another_account_is_ownership_error(client: FlowClient) -> None:
    alices = await client.upload(picture("PNG"), "image/png", account=ALICE)
    with pytest.raises(ReferenceOwnershipError) as caught:
        await rendered(client, params(email=JO, references=[alices]))
    exc = caught.value
    assert (exc.status, exc.account) == (403, JO)
    assert "Unauthorized access" in exc.detail
    assert not isinstance(exc, CaptchaFailed)


@pytest.mark.parametrize("endpoint", ["images", "upscale"])
async def test_captcha_failure_is_retryable(
    fake: FakeFlowServer, client: FlowClient, endpoint: str
) -> None:
    made = await rendered(client, params())
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "images": lambda: rendered(client, params()),
        "upscale": lambda: client.upscale_image(handle_of(made.pictures[0]), "2k", account=JO),
    }
    fake.fail_next_captcha(endpoint=endpoint)
    with pytest.raises(CaptchaFailed) as caught:
        await calls[endpoint]()
    exc = caught.value
    assert isinstance(exc, RetryableError)
    assert not isinstance(exc, ReferenceOwnershipError)
    assert (exc.status, exc.account) == (403, JO)
    assert exc.detail.startswith("captcha")


async def test_unknown_account_on_generate(client: FlowClient) -> None:
    stranger = "zed.zulu@example.org"
    with pytest.raises(AccountNotFound) as caught:
        await rendered(client, params(email=stranger))
    assert (caught.value.status, caught.value.account) == (404, stranger)
    assert "ze***@example.org" in caught.value.detail
    assert_masked(caught.value, stranger)


async def test_unhealthy_account_is_session_expired(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.set_health(JO, "COOKIES_EXPIRED")
    with pytest.raises(SessionExpired) as caught:
        await rendered(client, params())
    assert (caught.value.status, caught.value.account) == (596, JO)
    assert isinstance(caught.value, OperatorError)


async def test_capacity_429_carries_retry_after(fake: FakeFlowServer) -> None:
    fake.capacity = 1
    fake.latency = 0.3
    fake.retry_after = 7
    async with FlowClient(TOKEN, fake.base_url) as client:
        first = asyncio.create_task(rendered(client, params()))
        await wait_until(lambda: fake.in_flight.get(JO, 0) == 1)
        with pytest.raises(Throttled) as caught:
            await rendered(client, params())
        assert len((await first).pictures) == 1
    exc = caught.value
    assert (exc.status, exc.account, exc.retry_after) == (429, JO, 7.0)
    assert "PUBLIC_ERROR_USER_REQUESTS_THROTTLED" in exc.detail
    assert fake.throttled == 1


async def test_injected_429_carries_retry_after(fake: FakeFlowServer, client: FlowClient) -> None:
    fake.fail_next(429, retry_after=2.5)
    with pytest.raises(Throttled) as caught:
        await rendered(client, params())
    assert (caught.value.status, caught.value.account, caught.value.retry_after) == (429, JO, 2.5)


async def test_429_without_retry_after_header(fake: FakeFlowServer, client: FlowClient) -> None:
    fake.fail_next(429)
    with pytest.raises(Throttled) as caught:
        await rendered(client, params())
    assert caught.value.retry_after is None


async def test_503_is_unavailable_with_retry_after(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.retry_after = 9
    fake.fail_next(503)
    with pytest.raises(Unavailable) as caught:
        await rendered(client, params())
    exc = caught.value
    assert (exc.status, exc.account, exc.retry_after) == (503, JO, 9.0)
    assert isinstance(exc, RetryableError)


async def test_errors_on_other_endpoints(fake: FakeFlowServer, client: FlowClient) -> None:
    fake.fail_next(402, endpoint="accounts")
    with pytest.raises(PaymentError) as accounts:
        await client.list_accounts()
    assert accounts.value.status == 402
    assert accounts.value.account is None  # not tied to one account

    fake.fail_next(596, endpoint="assets")
    with pytest.raises(SessionExpired) as assets:
        await client.upload(picture("PNG"), "image/png", account=JO)
    assert (assets.value.status, assets.value.account) == (596, JO)

    uploaded = await client.upload(picture("PNG"), "image/png", account=JO)
    fake.fail_next(503, endpoint="characters")
    with pytest.raises(Unavailable) as characters:
        await client.create_character(JO, [uploaded], "x")
    assert (characters.value.status, characters.value.account) == (503, JO)


# -- timeouts ------------------------------------------------------------------------------


async def test_generate_timeout_against_a_slow_server(fake: FakeFlowServer) -> None:
    async with FlowClient(TOKEN, fake.base_url, timeouts=FlowTimeouts(generate=0.3)) as client:
        fake.stall_next(2)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await rendered(client, params())
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 1.0
        exc = caught.value
        assert isinstance(exc, RetryableError)
        assert exc.account == JO
        assert exc.status is None
        # The client hung up, so the fake freed the capacity slot at once.
        await wait_until(lambda: fake.in_flight.get(JO, 0) == 0)
        assert fake.in_flight.get(JO, 0) == 0
        assert fake.images_requests()[-1].status == 499
        # The client is still usable afterwards: the stall was one-shot.
        assert len((await rendered(client, params())).pictures) == 1


async def test_generate_timeout_does_not_apply_to_other_calls(fake: FakeFlowServer) -> None:
    # Only /images (and upscale) use the generate bound; uploads are not cut by it.
    timeouts = FlowTimeouts(generate=0.3, other=5.0, upload=5.0)
    async with FlowClient(TOKEN, fake.base_url, timeouts=timeouts) as client:
        fake.latency = 0.1
        generation = await rendered(client, params())
        assert len(generation.pictures) == 1
        assert await client.upload(picture("PNG"), "image/png", account=JO)


async def test_generate_ends_at_the_answer_and_fetch_downloads(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    made = await client.generate(params(count=2))
    assert fake.fife_requests() == []  # the account's slot is given back before any download
    assert all(isinstance(image, Pending) for image in made.images)
    assert "fife" not in repr(made)  # a signed link stays out of logs
    fetched = await client.fetch(made)
    assert len(fake.fife_requests()) == 2
    assert [image.handle for image in fetched.pictures] == [i.handle for i in made.images]


# -- downloads -----------------------------------------------------------------------------


async def test_fife_download_failure_is_unavailable(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.shape = "media-url"
    fake.fife_status = 403
    with pytest.raises(Unavailable) as caught:
        await rendered(client, params(count=2))
    exc = caught.value
    assert "403" in exc.detail
    assert exc.account == JO
    assert isinstance(exc, RetryableError)
    assert len(fake.fife_requests()) >= 1
    assert all(r.status == 403 for r in fake.fife_requests())


async def test_oversized_download_is_refused(fake: FakeFlowServer) -> None:
    # Not retried: the same upstream would send the same thing, at the price of a generation.
    fake.shape = "media-url"
    async with FlowClient(TOKEN, fake.base_url, max_image_bytes=100) as client:
        with pytest.raises(MediaRefused) as caught:
            await rendered(client, params())
    assert "larger than 100 bytes" in caught.value.detail
    assert caught.value.account == JO
    assert not isinstance(caught.value, RetryableError)


async def test_download_exactly_at_the_bound_passes(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.shape = "media-url"
    size = len((await rendered(client, params(seed=3))).pictures[0].data)
    async with FlowClient(TOKEN, fake.base_url, max_image_bytes=size + 200) as roomy:
        assert len((await rendered(roomy, params(seed=3))).pictures) == 1


# -- malformed 200 answers ("a broken answer" is Unavailable) ------------------------------


def _entry(**fields: Any) -> dict[str, Any]:
    return {"media": [{"image": {"generatedImage": fields}}], "jobId": "j1"}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_entry(seed=1, encodedImage="aGVsbG8="), id="no-media-id"),
        pytest.param(
            _entry(mediaGenerationId="user:1", encodedImage="%%%not base64%%%"), id="bad-base64"
        ),
    ],
)
async def test_broken_generate_answer_is_unavailable(
    fake: FakeFlowServer, client: FlowClient, body: dict[str, Any]
) -> None:
    fake.fail_next(200, body=body)
    with pytest.raises(Unavailable) as caught:
        await rendered(client, params())
    assert caught.value.account == JO


def _unaccounted_bodies() -> list[Any]:
    dead = f"http://127.0.0.1:{_closed_port()}/fife/gone.jpg?sig=x"
    return [
        pytest.param({"jobId": "j1"}, Unavailable, id="no-media-key"),
        pytest.param(_entry(mediaGenerationId="user:1", seed=1), Unavailable, id="no-picture"),
        # Not the API's origin and not a media host: refused before any connection.
        pytest.param(
            _entry(mediaGenerationId="user:1", fifeUrl=dead), MediaRefused, id="dead-host"
        ),
    ]


@pytest.mark.parametrize(("body", "kind"), _unaccounted_bodies())
async def test_broken_answer_errors_carry_the_account(
    fake: FakeFlowServer, client: FlowClient, body: dict[str, Any], kind: type[UpstreamError]
) -> None:
    fake.fail_next(200, body=body)
    with pytest.raises(kind) as caught:
        await rendered(client, params())
    assert caught.value.account == JO


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"media": [42]}, id="media-item-not-object"),
        pytest.param({"media": [{"image": "oops"}]}, id="image-not-object"),
    ],
)
async def test_non_object_media_item_is_unavailable(
    fake: FakeFlowServer, client: FlowClient, body: dict[str, Any]
) -> None:
    fake.fail_next(200, body=body)
    with pytest.raises(Unavailable):
        await rendered(client, params())


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("upscale", {"resolution": "2k"}),
        ("upscale", {"encodedImage": "***"}),
        ("characters", {"displayName": "no id here", "characterId": "character:1"}),
        ("assets", {"width": 1, "height": 1}),
    ],
)
async def test_broken_answers_on_other_endpoints(
    fake: FakeFlowServer, client: FlowClient, endpoint: str, body: dict[str, Any]
) -> None:
    made = await rendered(client, params())
    uploaded = await client.upload(picture("PNG"), "image/png", account=JO)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "upscale": lambda: client.upscale_image(handle_of(made.pictures[0]), "2k", account=JO),
        "characters": lambda: client.create_character(JO, [uploaded], "c"),
        "assets": lambda: client.upload(picture("PNG"), "image/png", account=JO),
    }
    fake.fail_next(200, endpoint=endpoint, body=body)
    with pytest.raises(Unavailable) as caught:
        await calls[endpoint]()
    assert caught.value.account == JO


# -- upscale and characters ----------------------------------------------------------------


@pytest.mark.parametrize(("resolution", "factor"), [("2k", 2), ("4k", 4)])
async def test_upscale_returns_a_larger_jpeg(
    fake: FakeFlowServer, client: FlowClient, resolution: str, factor: int
) -> None:
    fake.image_size = (64, 48)
    made = await rendered(client, params(model=NB2))
    original = decode_jpeg(made.pictures[0].data)
    data = await client.upscale_image(handle_of(made.pictures[0]), resolution, account=JO)
    upscaled = decode_jpeg(data)
    assert upscaled.size == (64 * factor, 48 * factor)
    assert upscaled.width > original.width
    assert upscaled.height > original.height
    record = fake.requests[-1]
    assert record.path == f"{PREFIX}/images/upscale"
    assert record.json == {
        "mediaGenerationId": made.pictures[0].handle,
        "resolution": resolution,
        "email": JO,
    }


async def test_upscale_of_a_lite_image_is_invalid_request(client: FlowClient) -> None:
    made = await rendered(client, params(model=LITE))
    with pytest.raises(InvalidRequestError) as caught:
        await client.upscale_image(handle_of(made.pictures[0]), "2k", account=JO)
    assert (caught.value.status, caught.value.account) == (400, JO)
    assert "only supported" in caught.value.detail


async def test_4k_upscale_on_a_free_account_is_invalid_request(
    fake: FakeFlowServer, client: FlowClient
) -> None:
    fake.paid = {JO: False}
    made = await rendered(client, params(model=PRO))
    with pytest.raises(InvalidRequestError) as caught:
        await client.upscale_image(handle_of(made.pictures[0]), "4k", account=JO)
    assert "paid" in caught.value.detail
    assert len(await client.upscale_image(handle_of(made.pictures[0]), "2k", account=JO)) > 0


async def test_create_character_id_is_usable(fake: FakeFlowServer, client: FlowClient) -> None:
    first = await client.upload(picture("PNG"), "image/png", account=JO)
    second = await client.upload(picture("WEBP"), "image/webp", account=JO)
    character = await client.create_character(JO, [first, second], "Captain Banana")
    assert isinstance(character, str)
    assert "-character:" in character
    record: Recorded = fake.requests[-1]
    assert record.json == {  # the reference page's field names: the API refuses others
        "email": JO,
        "displayName": "Captain Banana",
        "imageReference_1": first,
        "imageReference_2": second,
    }
    generation = await rendered(client, params(prompt="@character_1 waves", characters=[character]))
    last = fake.images_requests()[-1]
    assert last.status == 200
    assert sent(last)["character_1"] == character
    assert "reference_1" not in sent(last)
    assert len(generation.pictures) == 1


async def test_character_of_another_account_is_ownership_error(client: FlowClient) -> None:
    uploaded = await client.upload(picture("PNG"), "image/png", account=ALICE)
    with pytest.raises(ReferenceOwnershipError) as caught:
        await client.create_character(JO, [uploaded], "borrowed")
    assert (caught.value.status, caught.value.account) == (403, JO)


# -- concurrency ---------------------------------------------------------------------------


async def test_concurrent_generates_over_capacity(fake: FakeFlowServer, client: FlowClient) -> None:
    fake.capacity = 4
    fake.latency = 0.2
    results = await asyncio.gather(
        *(rendered(client, params(seed=i)) for i in range(10)), return_exceptions=True
    )
    successes = [r for r in results if isinstance(r, Rendering)]
    throttled = [r for r in results if isinstance(r, Throttled)]
    assert len(successes) + len(throttled) == 10, results
    assert throttled, "capacity 4 must turn some of 10 parallel calls away"
    assert 1 <= len(successes) <= 4
    assert fake.peak[JO] <= 4
    assert fake.throttled == len(throttled)
    assert all(t.status == 429 and t.account == JO for t in throttled)
    assert fake.in_flight[JO] == 0


async def test_a_character_deleted_twice_is_gone_and_a_refused_delete_raises(
    fake: FakeFlowServer, client: FlowClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")  # httpx logs only warnings (bot.logs)
    media_id = await client.upload(picture("PNG"), "image/png", account=JO)
    handle = await client.create_character(JO, [media_id], "Tom")
    await client.delete_character(handle)
    await client.delete_character(handle)  # 404 "Character not found": gone already
    assert fake.deleted_characters == [handle]
    assert [r.status for r in fake.requests if r.method == "DELETE"] == [200, 404]
    with pytest.raises(InvalidRequestError):
        await client.delete_character("not-a-character")
    fake.fail_next(503, endpoint="character-delete")
    with pytest.raises(Unavailable):
        await client.delete_character(handle)
    # The handle names the account in hex: the logs keep no handle.
    assert "DELETE /characters/…" in caplog.text
    assert JO.encode().hex() not in caplog.text
