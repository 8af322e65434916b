"""A real local HTTP server that behaves like nano-banana-pro.net's image API.

``POST /api/ai/nano-banana/generate`` as its docs (API reference, Authentication, Testing guide)
describe it: ``Authorization: Bearer sk-…``; a JSON body (``prompt``, ``size`` 1k/2k/4k,
``aspectRatio`` of eight, ``image`` as a URL or a list of URLs) or a multipart form with
``image`` files; one synchronous render answered as ``{"model", "created", "images": [{"url"}]}``;
errors as ``{"error": "text"}`` with 400, 401, 402 and 500. Plans limit references (3/8/14),
concurrent generations (1/5/10) and file size (2.5 MB); API access needs a paid plan. What the
docs leave open is chosen here and said: unknown fields are refused, one generation over the
plan's concurrency answers 429, credits per size are the fake's own numbers.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from io import BytesIO
from types import TracebackType
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.flow_server import CLIENT_GONE, Recorded

JSON = dict[str, Any]

ENDPOINT = "/api/ai/nano-banana/generate"
DEFAULT_KEY = "sk-test-nbpro"
SIZES = {"1k": 64, "2k": 128, "4k": 256}  # long edge of the fake's pictures
RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9"})
FIELDS = frozenset({"prompt", "size", "aspectRatio", "image"})
MAX_FILE = 2_500_000
MAX_PROMPT = 5000
COST = {"1k": 2, "2k": 3, "4k": 5}  # credits per image: the fake's own numbers


@dataclass(frozen=True)
class Plan:
    references: int
    concurrency: int
    api: bool
    four_k: bool


PLANS = {
    "free": Plan(3, 1, api=False, four_k=False),
    "standard": Plan(8, 5, api=True, four_k=True),
    "pro": Plan(14, 10, api=True, four_k=True),
}


@dataclass
class Upload:
    """One ``image`` file of a multipart request, as the server saw it."""

    filename: str | None
    mime: str
    data: bytes


@dataclass
class _Failure:
    status: int
    body: JSON | None
    retry_after: float | None


class ApiError(Exception):
    def __init__(self, status: int, message: str | JSON, retry_after: float | None = None) -> None:
        super().__init__(status, message)
        self.status = status
        self.body: JSON = {"error": message} if isinstance(message, str) else message
        self.retry_after = retry_after


RECORD = web.RequestKey("nbpro_record", Recorded)


class FakeNbproServer:
    """nano-banana-pro.net on ``127.0.0.1:<free port>``; point the client at ``base_url``.

    Switches (constructor keywords, also attributes you may change while it runs):

    - ``api_key``; ``plan``: "free" (no API access: 403), "standard" or "pro".
    - ``credits``: balance (None: unlimited); a render costs ``COST[size]``, 402 when short.
    - ``latency``: seconds each render takes.
    - ``media_root``: where image URLs point (default: this server); set another host to
      test containment. ``media_status``: every download answers this status.

    One-shot: ``fail_next``, ``empty_next``, ``stall_next``, ``serve_next`` (the next download
    returns these bytes, e.g. not an image), ``redirect_next`` (the next download redirects).
    Records: ``requests``, ``uploads`` (files per multipart request), ``in_flight``, ``peak``,
    ``generated``, ``throttled``, ``downloads``, ``made`` (every image URL handed out).
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        plan: str = "standard",
        credits: int | None = None,
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.plan = plan
        self.credits = credits
        self.latency = latency
        self.media_root = ""
        self.media_status: int | None = None
        self.requests: list[Recorded] = []
        self.uploads: list[list[Upload]] = []
        self.downloads: list[Recorded] = []
        self.made: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self.generated = 0
        self.throttled = 0
        self._failures: deque[_Failure] = deque()
        self._empty = 0
        self._stalls: deque[float] = deque()
        self._serve: deque[bytes] = deque()
        self._redirects: deque[str] = deque()
        self._media: dict[str, bytes] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_post(ENDPOINT, self._generate)
        app.router.add_get("/storage/{name}", self._download)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.media_root = self.media_root or self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeNbproServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- switches --------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        body: JSON | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next ``count`` valid renders answer ``status`` at once (with ``body``, or the
        docs' one; with ``Retry-After`` if ``retry_after`` is given)."""
        self._failures.extend(_Failure(status, body, retry_after) for _ in range(count))

    def empty_next(self, count: int = 1) -> None:
        """The next ``count`` renders answer 200 with an empty ``images`` list."""
        self._empty += count

    def stall_next(self, seconds: float) -> None:
        self._stalls.append(seconds)

    def serve_next(self, data: bytes) -> None:
        """The next download answers ``data`` (image/png) instead of the picture."""
        self._serve.append(data)

    def redirect_next(self, location: str) -> None:
        """The next download answers 302 to ``location``."""
        self._redirects.append(location)

    def render_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == ENDPOINT]

    # -- plumbing --------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()
        record = Recorded(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=None,
            body=body,
        )
        (self.downloads if request.path.startswith("/storage/") else self.requests).append(record)
        request[RECORD] = record
        try:
            response = await handler(request)
        except ApiError as err:
            response = web.json_response(err.body, status=err.status)
            if err.retry_after is not None:
                response.headers["Retry-After"] = f"{err.retry_after:g}"
        except asyncio.CancelledError:
            record.status = CLIENT_GONE
            raise
        record.status = response.status
        return response

    # -- generation ------------------------------------------------------------------------

    async def _generate(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth:
            raise ApiError(401, "Missing API key")
        if auth != f"Bearer {self.api_key}":
            raise ApiError(401, "Invalid API key")
        plan = PLANS[self.plan]
        if not plan.api:
            raise ApiError(403, "API access requires an active Standard or Pro subscription")
        record = request[RECORD]
        fields, files = self._fields(request, record)
        record.json = fields
        size, ratio = _validate(fields, plan)
        refs = fields.get("image", [])
        refs = [refs] if isinstance(refs, str) else refs
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise ApiError(400, "image must be a URL or a list of URLs")
        for url in refs:
            if not self._holds(url):
                raise ApiError(400, f"Failed to download reference image: {url[:80]}")
        for upload in files:
            _check_file(upload)
        if len(refs) + len(files) > plan.references:
            raise ApiError(400, f"Too many reference images: your plan allows {plan.references}")
        if files:
            self.uploads.append(files)
        if self.in_flight >= plan.concurrency:
            self.throttled += 1
            raise ApiError(
                429, f"Too many concurrent generations: your plan allows {plan.concurrency}"
            )
        if self.credits is not None and self.credits < COST[size]:
            raise ApiError(402, "Insufficient credits")
        if self._failures:
            failure = self._failures.popleft()
            default = {401: "Invalid API key", 402: "Insufficient credits"}.get(
                failure.status, "Generation failed" if failure.status >= 500 else "Bad request"
            )
            raise ApiError(failure.status, failure.body or default, failure.retry_after)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self._stalls.popleft() if self._stalls else self.latency)
            if self.credits is not None:
                self.credits -= COST[size]
            images: list[JSON] = []
            if self._empty:
                self._empty -= 1
            else:
                images.append({"url": self._store(_picture(ratio, size))})
                self.generated += 1
            return web.json_response(
                {"model": f"nano-banana-2-{size}", "created": int(time.time()), "images": images}
            )
        finally:
            self.in_flight -= 1

    def _fields(self, request: web.Request, record: Recorded) -> tuple[JSON, list[Upload]]:
        if request.content_type == "application/json":
            try:
                payload = json.loads(record.body)
            except ValueError:
                raise ApiError(400, "Invalid JSON body") from None
            if not isinstance(payload, dict):
                raise ApiError(400, "Request body must be a JSON object")
            return payload, []
        if request.content_type == "multipart/form-data":
            return _multipart(request.headers.get("Content-Type", ""), record.body)
        raise ApiError(400, "Content-Type must be application/json or multipart/form-data")

    def _store(self, data: bytes) -> str:
        name = f"{uuid.uuid4().hex}.png"
        self._media[name] = data
        self.made.append(f"{self.media_root}/storage/{name}")
        return self.made[-1]

    def _holds(self, url: str) -> bool:
        prefix = f"{self.media_root}/storage/"
        return url.startswith(prefix) and url[len(prefix) :] in self._media

    async def _download(self, request: web.Request) -> web.Response:
        if self._redirects:
            return web.Response(status=302, headers={"Location": self._redirects.popleft()})
        if self.media_status is not None:
            return web.Response(status=self.media_status, text="storage error")
        if self._serve:
            return web.Response(body=self._serve.popleft(), content_type="image/png")
        served = self._media.get(request.match_info["name"])
        if served is None:
            return web.Response(status=404, text="Not found")
        return web.Response(body=served, content_type="image/png")


def _validate(fields: JSON, plan: Plan) -> tuple[str, str]:
    unknown = set(fields) - FIELDS
    if unknown:
        raise ApiError(400, f"Unknown parameter: {sorted(unknown)[0]}")
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "prompt is required")
    if len(prompt) > MAX_PROMPT:
        raise ApiError(400, f"prompt must be at most {MAX_PROMPT} characters")
    size = fields.get("size", "1k")
    if size not in SIZES:
        raise ApiError(400, "Invalid size. Use 1k, 2k or 4k")
    if size == "4k" and not plan.four_k:
        raise ApiError(400, "4K generation requires a paid plan")
    ratio = fields.get("aspectRatio", "1:1")
    if ratio not in RATIOS:
        raise ApiError(400, f"Unsupported aspectRatio: {ratio}")
    return size, ratio


def _check_file(upload: Upload) -> None:
    if len(upload.data) > MAX_FILE:
        raise ApiError(400, "Image exceeds the 2.5MB limit")
    try:
        with Image.open(BytesIO(upload.data), formats=["PNG", "JPEG", "WEBP"]) as image:
            image.load()
    except (UnidentifiedImageError, OSError, ValueError):
        raise ApiError(400, "Invalid image file") from None


def _multipart(content_type: str, body: bytes) -> tuple[JSON, list[Upload]]:
    """Form fields (text) and ``image`` files of a multipart body."""
    header = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    if not message.is_multipart():
        raise ApiError(400, "Malformed multipart body")
    fields: JSON = {}
    files: list[Upload] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(data, bytes):
            raise ApiError(400, "Malformed multipart body")
        filename = part.get_filename()
        if name == "image" and filename is not None:
            files.append(Upload(filename, part.get_content_type(), data))
        elif name in FIELDS:
            fields[name] = data.decode()
        else:
            raise ApiError(400, f"Unknown parameter: {name}")
    return fields, files


def _picture(ratio: str, size: str) -> bytes:
    edge = SIZES[size]
    width, height = (int(x) for x in ratio.split(":"))
    dims = (
        (edge, max(1, edge * height // width))
        if width >= height
        else (
            max(1, edge * width // height),
            edge,
        )
    )
    out = BytesIO()
    Image.new("RGB", dims, tuple(random.randrange(256) for _ in range(3))).save(out, "PNG")
    return out.getvalue()
