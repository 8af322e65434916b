"""The real ``WireflowClient`` against the real ``FakeWireflowServer`` over loopback: no mocks.

Polling runs on small timings (``FAST``) except where the documented schedule itself is the
point (1 s × 1.5 up to 10 s), which is then measured for real.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import traceback
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from bot import reference_links
from bot.core.providers import (
    ImageRequest,
    Pending,
    Reference,
    ReferenceMode,
    Rendering,
    Resumable,
    Submission,
)
from bot.core.upstream import (
    AccountNotFound,
    AuthError,
    ExecutionLost,
    InsufficientCredits,
    InvalidRequestError,
    MediaRefused,
    ModerationError,
    OperatorError,
    PaymentError,
    QuotaExhausted,
    RetryableError,
    Throttled,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from bot.providers.plumbing import Timeouts
from bot.providers.wireflow import Polling, WireflowClient
from bot.reference_links import ReferenceLinks
from tests.fakes.wireflow_server import DEFAULT_WORKFLOW, FakeWireflowServer
from tests.rendering import rendered

KEY = "sk-SECRET-wireflow-0123456789"
PRO, NB2, NB1 = "generate:nano_banana_pro", "generate:nano_banana_2", "generate:nano_banana"
FAST = Polling(first=0.02, factor=1.5, cap=0.05, stale_after=5.0, timeout=10.0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWireflowServer]:
    async with FakeWireflowServer(api_key=KEY, plan="enterprise") as server:
        yield server


def make(fake: FakeWireflowServer, **kwargs: Any) -> WireflowClient:
    # The fake serves its pictures from its own origin, which the media rules trust as the API's.
    kwargs.setdefault("polling", FAST)
    kwargs.setdefault("plan", "enterprise")
    return WireflowClient(KEY, DEFAULT_WORKFLOW, fake.base_url, **kwargs)


@pytest.fixture
async def client(fake: FakeWireflowServer) -> AsyncIterator[WireflowClient]:
    async with make(fake) as wireflow:
        yield wireflow


def request(**overrides: Any) -> ImageRequest:
    fields: dict[str, Any] = {
        "prompt": "a banana on a skateboard",
        "model": PRO,
        "aspect_ratio": "1:1",
        "size": "1K",
        "count": 1,
        "job_key": "job-42-a1",
    }
    fields.update(overrides)
    return ImageRequest(**fields)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(BytesIO(data)) as image:
        return image.size


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


# -- the wire ------------------------------------------------------------------------------


async def test_submit_sends_the_two_node_workflow(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    await client.submit(request(aspect_ratio="16:9", size="2K", model=NB2))
    record = fake.execute_requests()[-1]
    assert record.path == f"/api/v1/workflows/{DEFAULT_WORKFLOW}/execute"
    assert record.headers["authorization"] == f"Bearer {KEY}"
    assert record.headers["idempotency-key"] == "job-42-a1:0"
    assert record.json == {
        "nodes": [
            {
                "id": "prompt",
                "type": "basedNode",
                "position": {"x": 0, "y": 0},
                "data": {
                    "label": "Prompt",
                    "nodeType": "input:text",
                    "category": "input",
                    "params": {"prompt": "a banana on a skateboard"},
                },
            },
            {
                "id": "render",
                "type": "basedNode",
                "position": {"x": 500, "y": 0},
                "data": {
                    "label": "Render",
                    "nodeType": NB2,
                    "category": "generate",
                    "params": {"resolution": "2K", "aspect_ratio": "16:9"},
                },
            },
        ],
        "edges": [
            {
                "source": "prompt",
                "target": "render",
                "sourceHandle": "out-prompt",
                "targetHandle": "in-prompt",
            }
        ],
    }


async def test_generate_submits_waits_and_downloads(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    fake.latency = 0.1
    rendering = await rendered(client, request(count=2, size="4K", aspect_ratio="9:16"))
    assert isinstance(rendering, Rendering)
    assert rendering.provider == "wireflow"
    assert len(rendering.pictures) == 2
    assert rendering.trace == tuple(fake.executions)
    for image in rendering.pictures:
        assert (image.mime, size_of(image.data), image.seed) == ("image/png", (144, 256), None)
        assert image.handle is not None
        assert image.handle.startswith(fake.base_url + "/cdn/")
    assert [r.headers["idempotency-key"] for r in fake.execute_requests()] == [
        "job-42-a1:0",
        "job-42-a1:1",
    ]
    for record in fake.downloads:
        assert "authorization" not in record.headers


async def test_resume_ends_with_the_executions_and_fetch_downloads(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    made = await client.resume(await client.submit(request(count=2)))
    assert fake.downloads == []  # the slot is given back before any download
    assert all(isinstance(image, Pending) for image in made.images)
    fetched = await client.fetch(made)
    assert len(fake.downloads) == 2
    assert [image.handle for image in fetched.pictures] == [i.handle for i in made.images]


async def test_a_result_can_be_the_reference_of_the_next_render(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    made = await rendered(client, request())
    handle = made.pictures[0].handle
    assert handle is not None
    again = await rendered(
        client, request(job_key="job-43", references=(Reference(handle=handle),))
    )
    assert len(again.pictures) == 1
    sent = fake.execute_requests()[-1].json
    assert isinstance(sent, dict)
    params = sent["nodes"][1]["data"]["params"]
    assert params["image1"] == handle
    assert client.profile.references is ReferenceMode.HANDLE


class Pictures:
    """A store's pictures by sha256, as ``bot.reference_links`` reads them."""

    def __init__(self, **held: bytes) -> None:
        self.held = held

    async def picture(self, sha256: str) -> bytes | None:
        return self.held.get(sha256)


async def test_a_users_picture_goes_as_a_link_wireflow_fetches(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    """Beside an image it made, our link to a user's picture: Wireflow fetches the picture
    from the bot's own HTTP server while the execution runs."""
    made = await rendered(client, request())
    handle = made.pictures[0].handle
    assert handle is not None
    picture = BytesIO()
    Image.new("RGB", (12, 9), "teal").save(picture, "JPEG")
    sha = "ab" * 32
    key = b"k" * 32
    # Links are checked by their key alone; the address they're made with is the server's own.
    pictures = Pictures(**{sha: picture.getvalue()})
    async with reference_links.serve(("127.0.0.1", 0), ReferenceLinks("", key), pictures) as port:
        link = ReferenceLinks(f"http://127.0.0.1:{port}", key).link(sha)
        refs = (Reference(handle=handle), Reference(link=link))
        again = await rendered(client, request(job_key="job-44", references=refs))
    assert len(again.pictures) == 1
    sent = fake.execute_requests()[-1].json
    assert isinstance(sent, dict)
    params = sent["nodes"][1]["data"]["params"]
    assert (params["image1"], params["image2"]) == (handle, link)
    assert [(f.url, f.status, f.content_type, f.data) for f in fake.fetched] == [
        (link, 200, "image/jpeg", picture.getvalue())
    ]


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        ({"references": (Reference(data=b"png", mime="image/png"),)}, "only references it made"),
        ({"references": (Reference(link="file:///etc/passwd"),)}, "only from web addresses"),
        ({"references": (Reference(handle="https://evil.example/x.png"),)}, "only references"),
        ({"model": NB1, "size": "2K"}, "renders at 1K"),
        ({"aspect_ratio": "1:8"}, "takes the aspect ratios"),
        ({"model": "generate:flux_9"}, "has no node for generate:flux_9"),
        ({"count": 5}, "1 to 4 images"),
    ],
)
async def test_unfit_requests_are_refused_without_a_call(
    fake: FakeWireflowServer, client: WireflowClient, overrides: dict[str, Any], sentence: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await client.submit(request(**overrides))
    assert sentence in caught.value.detail
    assert fake.requests == []


async def test_submit_needs_a_job_key_but_generate_makes_one(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    with pytest.raises(ValueError, match="job_key"):
        await client.submit(request(job_key=""))
    assert fake.requests == []
    await rendered(client, request(job_key=""))
    key = fake.execute_requests()[-1].headers["idempotency-key"]
    assert len(key) == 34
    assert key.endswith(":0")


async def test_an_overlong_job_key_is_sent_as_its_digest(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    await client.submit(request(job_key="k" * 300))
    key = fake.execute_requests()[-1].headers["idempotency-key"]
    assert key.startswith("sha256-")
    assert len(key) == 71


# -- idempotency and resume ----------------------------------------------------------------


async def test_resubmitting_the_same_job_replays_its_executions(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    first = await client.submit(request(count=3))
    again = await client.submit(request(count=3))
    assert first == again
    assert (fake.executed, fake.replays) == (3, 3)
    fresh = await client.submit(request(count=3, job_key="job-42-a2"))
    assert set(fresh.execution_ids).isdisjoint(first.execution_ids)
    assert fake.executed == 6


async def test_a_partial_submission_completes_on_retry_without_doubling(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    # Two of three executions were started before a failure; the retry replays those two
    # (same keys) and starts only the third.
    started = await client.submit(request(count=2))
    fake.fail_next(503)
    with pytest.raises(Unavailable):
        await client.submit(request(count=3))
    assert fake.executed == 2
    submission = await client.submit(request(count=3))
    assert fake.executed == 3
    assert submission.execution_ids[:2] == started.execution_ids
    assert len(set(submission.execution_ids)) == 3


async def test_resume_after_a_restart_polls_instead_of_submitting(
    fake: FakeWireflowServer,
) -> None:
    fake.latency = 0.2
    async with make(fake) as before_restart:
        submission = await before_restart.submit(request(count=2))
    stored = Submission(provider="wireflow", execution_ids=tuple(submission.execution_ids))
    async with make(fake) as after_restart:
        assert isinstance(after_restart, Resumable)
        rendering = await after_restart.fetch(await after_restart.resume(stored))
    assert len(rendering.pictures) == 2
    assert len(fake.execute_requests()) == 2
    assert fake.executed == 2


async def test_a_forgotten_execution_is_execution_lost(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    submission = await client.submit(request())
    fake.forget(submission.execution_ids[0])
    with pytest.raises(ExecutionLost) as caught:
        await client.resume(submission)
    assert caught.value.status == 404
    assert isinstance(caught.value, RetryableError)


# -- polling -------------------------------------------------------------------------------


async def test_the_documented_backoff_for_real(fake: FakeWireflowServer) -> None:
    # 1 s, then × 1.5: polls at 1, 2.5 and 4.75 s; the execution is done at 4 s. The waits
    # asked for are checked exactly and really slept: a poll never comes before its time (a
    # loaded machine may only make it later, which is not the client's doing).
    fake.latency = 4.0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    async with make(fake, polling=Polling(), sleep=sleep) as client:
        started = time.monotonic()
        rendering = await rendered(client, request())
    (times,) = fake.poll_times.values()
    assert len(rendering.pictures) == 1
    assert waits == pytest.approx([1.0, 1.5, 2.25])
    assert len(times) == 3
    assert times[0] - started >= 0.95
    first_gap, second_gap = gaps(times)
    assert first_gap >= 1.5 - 0.05
    assert second_gap >= 2.25 - 0.05


async def test_backoff_grows_by_the_factor_and_stops_at_the_cap(
    fake: FakeWireflowServer,
) -> None:
    # The waits the client asks for are counted, not timed: a loaded machine stretches real
    # gaps (test_the_documented_backoff_for_real times them, at the documented pace).
    fake.latency = 3600.0  # running until the sixth wait is over
    polling = Polling(first=0.1, factor=1.5, cap=0.25, timeout=10.0)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 6:
            for execution in fake.executions.values():
                execution.ready_at = time.monotonic()
        await asyncio.sleep(0)

    async with make(fake, polling=polling, sleep=sleep) as client:
        await rendered(client, request())
    (times,) = fake.poll_times.values()
    assert waits == pytest.approx([0.1, 0.15, 0.225, 0.25, 0.25, 0.25])
    assert len(times) == len(waits)  # a poll after each wait: the sixth sees it done
    assert max(waits) == polling.cap


async def test_a_silent_failure_is_found_in_the_details(fake: FakeWireflowServer) -> None:
    fake.silent_next()
    polling = Polling(first=0.02, cap=0.05, stale_after=0.3, timeout=5.0)
    async with make(fake, polling=polling) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            await rendered(client, request())
    assert 0.3 <= time.monotonic() - started < 1.0
    assert caught.value.detail == "Node render timed out"
    details = [r for r in fake.requests if r.method == "GET" and not r.path.endswith("/poll")]
    assert len(details) == 1


async def test_a_throttled_poll_is_sat_out_not_failed(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    fake.fail_next(429, endpoint="poll", retry_after=0.3)
    started = time.monotonic()
    rendering = await rendered(client, request())
    assert len(rendering.pictures) == 1
    assert time.monotonic() - started >= 0.3
    (times,) = fake.poll_times.values()
    assert times[1] - times[0] >= 0.3


async def test_polls_are_paced_below_the_plans_request_rate(fake: FakeWireflowServer) -> None:
    # Free plan: 10 requests a minute (here: a 2 s window, whose 5 % margin outlasts a loaded
    # machine's delays: see the next test) for polls; three executions polled every 20 ms
    # would ask ~60 times a second without the client's own pacing.
    fake.set_plan("free")
    fake.window = 2.0
    fake.latency = 1.2
    async with make(fake, plan="free", window=2.0) as client:
        rendering = await rendered(client, request(count=3))
    assert len(rendering.pictures) == 3
    assert fake.throttled == 0
    polls = sorted(t for times in fake.poll_times.values() for t in times)
    for index in range(len(polls) - 10):
        assert polls[index + 10] - polls[index] >= 1.99


async def test_executions_are_paced_to_ten_a_minute(fake: FakeWireflowServer) -> None:
    # The client counts a request when it sends it, the server when it arrives; the client's
    # margin for the difference is 5 % of the window (1 s of a minute). The window is shrunk
    # here, but not below what keeps that margin (0.1 s) above a loaded machine's delays (the
    # first requests open their connections): at 0.5 s (25 ms), about one run in twenty under
    # load met a 429.
    fake.window = 2.0
    async with make(fake, window=2.0) as client:
        started = time.monotonic()
        submissions = await asyncio.gather(
            *(client.submit(request(count=4, job_key=f"job-{i}")) for i in range(3))
        )
    assert sum(len(s.execution_ids) for s in submissions) == 12
    assert fake.throttled == 0
    assert time.monotonic() - started >= 2.0  # the 11th waited for the window


async def test_the_resume_deadline(fake: FakeWireflowServer) -> None:
    fake.latency = 30
    async with make(fake, polling=Polling(first=0.02, cap=0.05, timeout=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout) as caught:
            await rendered(client, request())
    assert time.monotonic() - started < 1.0
    assert "longer than 0.3 s" in caught.value.detail


async def test_a_stalled_poll_hits_the_request_timeout(fake: FakeWireflowServer) -> None:
    fake.stall_next(5, endpoint="poll")
    async with make(fake, timeouts=Timeouts(request=0.2)) as client:
        with pytest.raises(UpstreamTimeout) as caught:
            await rendered(client, request())
    assert "got no answer in time" in caught.value.detail


# -- outcomes ------------------------------------------------------------------------------


async def test_a_safety_failure_is_moderation(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    fake.fail_next_execution("Content blocked by safety filter")
    with pytest.raises(ModerationError) as caught:
        await rendered(client, request())
    assert caught.value.detail == "Content blocked by safety filter"


async def test_one_blocked_execution_among_several_is_withheld(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    fake.fail_next_execution("NSFW content detected")
    rendering = await rendered(client, request(count=3))
    assert (len(rendering.pictures), rendering.withheld) == (2, 1)
    assert rendering.withheld_reason == "NSFW content detected"


async def test_another_failure_is_unavailable(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    fake.fail_next_execution("Upstream provider error")
    with pytest.raises(Unavailable) as caught:
        await rendered(client, request())
    assert caught.value.detail == "Upstream provider error"


async def test_a_failure_that_quotes_our_link_keeps_it_out_of_the_error(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    link = f"https://bot.example/references/{'a' * 64}/1900000000/{'b' * 64}"
    fake.fail_next_execution(f"could not load image1 from {link}: 404")
    with pytest.raises(Unavailable) as caught:
        await rendered(client, request())
    assert caught.value.detail == "could not load image1 from ‹link›: 404"


# -- errors --------------------------------------------------------------------------------


async def test_out_of_credits_names_required_and_available(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    fake.credits = 30
    await client.submit(request(size="4K"))
    with pytest.raises(InsufficientCredits) as caught:
        await client.submit(request(size="4K", job_key="job-44"))
    exc = caught.value
    assert (exc.status, exc.required, exc.available) == (402, 24.0, 6.0)
    assert exc.detail == "Insufficient credits. Required: 24, Available: 6"
    assert isinstance(exc, PaymentError)
    assert isinstance(exc, OperatorError)


@pytest.mark.parametrize("expired", [False, True])
async def test_bad_or_expired_keys_are_auth_errors(fake: FakeWireflowServer, expired: bool) -> None:
    fake.expired = expired
    key = KEY if expired else "sk-wrong"
    async with WireflowClient(key, DEFAULT_WORKFLOW, fake.base_url, plan="enterprise") as client:
        with pytest.raises(AuthError) as caught:
            await client.submit(request())
    assert caught.value.status == 401
    assert caught.value.detail == ("API key has expired" if expired else "Invalid API key")
    assert "sk-wrong" not in "".join(traceback.format_exception(caught.value))


async def test_an_unknown_workflow_is_account_not_found(fake: FakeWireflowServer) -> None:
    async with WireflowClient(KEY, "wf-gone", fake.base_url, plan="enterprise") as client:
        with pytest.raises(AccountNotFound) as submitted:
            await client.submit(request())
        with pytest.raises(AccountNotFound) as checked:
            await client.check()
    assert submitted.value.detail == checked.value.detail == "Workflow not found"


async def test_429_uses_the_relative_header_not_the_absolute_body(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    body = {
        "error": "Too many workflow executions. Please try again later.",
        "retryAfter": int(time.time()) + 40,
    }
    fake.fail_next(429, body=body, retry_after=3)
    with pytest.raises(Throttled) as caught:
        await client.submit(request())
    assert (caught.value.status, caught.value.retry_after) == (429, 3.0)


async def test_a_used_up_day_is_quota_exhausted(fake: FakeWireflowServer) -> None:
    fake.set_plan("free")
    fake.window = 0.01
    async with make(fake, plan="free", window=0.01) as client:
        for index in range(50):
            await client.submit(request(job_key=f"day-{index}"))
        with pytest.raises(QuotaExhausted) as caught:
            await client.submit(request(job_key="day-50"))
    assert caught.value.status == 429
    assert "Daily execution limit" in caught.value.detail


@pytest.mark.parametrize(
    ("status", "endpoint", "kind"),
    [
        (400, "execute", InvalidRequestError),
        (403, "execute", AuthError),
        (500, "execute", Unavailable),
        (502, "execute", Unavailable),
        (500, "poll", Unavailable),
        (403, "poll", AuthError),
    ],
)
async def test_statuses_map_onto_the_error_tree(
    fake: FakeWireflowServer,
    client: WireflowClient,
    status: int,
    endpoint: str,
    kind: type[UpstreamError],
) -> None:
    fake.fail_next(status, endpoint=endpoint)
    with pytest.raises(kind) as caught:
        await rendered(client, request())
    assert (type(caught.value), caught.value.status) == (kind, status)


async def test_an_image_on_a_foreign_host_is_not_fetched(
    fake: FakeWireflowServer, client: WireflowClient
) -> None:
    fake.media_root = fake.base_url.replace("127.0.0.1", "localhost")
    with pytest.raises(MediaRefused) as caught:
        await rendered(client, request())
    assert "not a media host" in caught.value.detail
    assert fake.downloads == []


async def test_request_ids_are_logged(
    fake: FakeWireflowServer, client: WireflowClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="bot.providers.wireflow"):
        await rendered(client, request())
    lines = [r.getMessage() for r in caplog.records]
    assert any("→ 201 (X-Request-Id req_" in line for line in lines)
    assert all(KEY not in line for line in lines)


async def test_check(fake: FakeWireflowServer, client: WireflowClient) -> None:
    assert await client.check() == f"wireflow: key accepted; workflow {DEFAULT_WORKFLOW} found"
    assert fake.executed == 0
    assert KEY not in repr(client)
