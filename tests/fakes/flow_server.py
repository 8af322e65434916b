"""A real local HTTP server that behaves like the useapi.net Google Flow API.

Tests and benchmarks point the real httpx client at ``FakeFlowServer.base_url`` so that
serialisation, headers, timeouts and connection handling are exercised for real; only Google is
missing. The behaviour follows ``shared/reference/google-flow-api.md``.
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import json
import random
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from types import TracebackType
from typing import Any, Literal

from aiohttp import web
from PIL import Image, UnidentifiedImageError

Shape = Literal["media-url", "media-inline", "panels"]
JSON = dict[str, Any]

PREFIX = "/v1/google-flow"
ENDPOINTS = frozenset({"images", "assets", "upscale", "accounts", "characters", "character-delete"})
MAX_UPLOAD = 20 * 1024 * 1024
MAX_REFERENCES = 10
DEFAULT_CAPACITY = 20
DEFAULT_TOKEN = "test-token"
CLIENT_GONE = 499  # Recorded.status of a request whose client disconnected mid-way

# Canonical model → modelNameType; aliases resolve before lookup.
MODELS = {
    "nano-banana-2-lite": "GEM_PIX_2_LITE",
    "nano-banana-2": "GEM_PIX_2",
    "nano-banana-pro": "GEM_PIX_PRO",
}
ALIASES = {"imagen-4": "nano-banana-2-lite", "nano-banana": "nano-banana-2"}
DEFAULT_MODEL = "nano-banana-2-lite"
REFERENCES_MODEL = "nano-banana-2"  # what the API picks without a model when references are sent
UPSCALABLE = frozenset({"nano-banana-2", "nano-banana-pro"})
UPSCALE_FACTOR = {"2k": 2, "4k": 4}
ASPECTS = {
    "16:9": "IMAGE_ASPECT_RATIO_LANDSCAPE",
    "landscape": "IMAGE_ASPECT_RATIO_LANDSCAPE",
    "4:3": "IMAGE_ASPECT_RATIO_LANDSCAPE_FOUR_THREE",
    "1:1": "IMAGE_ASPECT_RATIO_SQUARE",
    "square": "IMAGE_ASPECT_RATIO_SQUARE",
    "3:4": "IMAGE_ASPECT_RATIO_PORTRAIT_THREE_FOUR",
    "9:16": "IMAGE_ASPECT_RATIO_PORTRAIT",
    "portrait": "IMAGE_ASPECT_RATIO_PORTRAIT",
}
UPLOAD_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
# The fields each call takes (reference page); anything else is refused, as the API does, so a
# misspelt field can't be silently ignored and then filled in with the API's default. (The
# vendor's own script checks its requests against the same list before sending them.)
IMAGES_FIELDS = frozenset({"prompt", "model", "aspectRatio", "count", "seed", "email", "replyUrl"})
UPSCALE_FIELDS = frozenset({"mediaGenerationId", "resolution", "email"})
CHARACTER_FIELDS = frozenset(
    {"displayName", "imageReference_1", "imageReference_2", "personalityNotes", "email"}
)
# Characters are not for Imagen, whose alias today is nano-banana-2-lite.
NO_CHARACTERS = frozenset({"nano-banana-2-lite"})
REF_KEY = re.compile(r"(reference|character)_(\d+)")
MAX_INDEX = {"reference": 10, "character": 7}
MARKER = re.compile(r"@((?:reference|character)_\d+)")
# A character's reference id: its user, its account's e-mail in hex, its entity, its pictures.
CHARACTER_REF = re.compile(r"user:(\d+)-email:([0-9a-f]+)-character:([0-9a-f-]+)-imgs:[12]\S*")


def google_error(code: int, message: str, status: str, reason: str | None = None) -> JSON:
    """An error body in Google's own form (as opposed to useapi's ``{"error": "text"}``)."""
    error: JSON = {"code": code, "message": message, "status": status}
    if reason is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return {"error": error}


THROTTLED = google_error(
    429,
    "Resource has been exhausted (e.g. check quota).",
    "RESOURCE_EXHAUSTED",
    "PUBLIC_ERROR_USER_REQUESTS_THROTTLED",
)
UNSAFE = google_error(
    400,
    "Request contains an invalid argument.",
    "INVALID_ARGUMENT",
    "PUBLIC_ERROR_UNSAFE_GENERATION",
)
REFERENCE_OWNER = (
    "Unauthorized access to user:123 detected in reference user:123-email:6a6f-image:0a1b2c3d"
)


def default_body(status: int, account: str) -> JSON:
    """The body the real API sends with ``status``, for failures injected without one."""
    bodies: dict[int, JSON] = {
        400: {"error": "Model nano-banana supports maximum 4 context references"},
        401: {"error": "Unauthorized"},
        402: {"error": "Account has no subscription or subscription expired"},
        403: {"error": REFERENCE_OWNER},
        404: {"error": f"Google Flow account {account} not found"},
        429: THROTTLED,
        500: google_error(500, "Internal error encountered.", "INTERNAL"),
        503: google_error(
            503, "Service temporarily unavailable.", "UNAVAILABLE", "SERVICE_UNAVAILABLE"
        ),
        596: {"error": "Failed to refresh session."},
    }
    return bodies.get(status, {"error": f"Injected HTTP {status}"})


def mask(address: str) -> str:
    """``alice@example.com`` → ``al***@example.com``, as the API prints account e-mails."""
    local, _, domain = address.partition("@")
    return f"{local[:2]}***@{domain}"


def new_media_id(account: str) -> str:
    return f"user:1-email:{account.encode().hex()}-image:{uuid.uuid4()}"


def jpeg(size: tuple[int, int], seed: int, comment: str) -> bytes:
    """A small solid-colour JPEG; the comment makes every image's bytes unique."""
    rng = random.Random(seed)
    colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    out = BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=85, comment=comment)
    return out.getvalue()


def orientation(size: tuple[int, int]) -> str:
    width, height = size
    if width == height:
        return ASPECTS["1:1"]
    return ASPECTS["16:9"] if width > height else ASPECTS["9:16"]


@dataclass
class Recorded:
    """One request as the server saw it.

    ``headers`` keys are lower-cased; ``path`` is URL-decoded; ``json`` is the parsed JSON body,
    or the form fields of a multipart body, else None. ``account`` is the Google account the
    request was resolved to (None when it never got that far). ``status`` is 0 while the request
    is in progress and ``CLIENT_GONE`` (499) when the client disconnected before the answer.
    ``answered_at`` is when the answer was handed to the connection (``time.monotonic()``; 0 until
    then), so a benchmark can time what happens after the upstream answered; ``arrived_at`` when
    the request had arrived (with how long each held a capacity slot, how busy it was kept).
    """

    method: str
    path: str
    headers: dict[str, str]
    json: Any | None
    body: bytes
    account: str | None = None
    status: int = 0
    sent: int = 0  # body bytes written for a trickled or raw answer, when the client hung up
    peer: str = ""  # the client's address and port: which connection the request came on
    answered_at: float = 0.0
    arrived_at: float = field(default_factory=time.monotonic)


@dataclass
class RawAnswer:
    """An answer exactly as given: status, headers and body chunks, ``interval`` seconds apart.

    For what the real API never sends but a hostile or broken one may: redirects, endless or
    compressed bodies, lying headers. ``chunks`` may be endless (a generator).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] = ()
    interval: float = 0.0


class _Raw(Exception):
    def __init__(self, answer: RawAnswer) -> None:
        super().__init__(answer.status)
        self.answer = answer


@dataclass
class _Media:
    owner: str
    model: str | None  # None for uploads: they can be references but never upscaled
    size: tuple[int, int]


@dataclass
class _Failure:
    status: int
    body: JSON | None
    retry_after: float | None


RECORD = web.RequestKey("record", Recorded)


class ApiError(Exception):
    """Raised by handlers to answer with an error; the middleware turns it into a response."""

    def __init__(self, status: int, body: JSON | str, retry_after: float | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body: JSON = {"error": body} if isinstance(body, str) else body
        self.retry_after = retry_after


class FakeFlowServer:
    """The Google Flow API page on ``127.0.0.1:<free port>``, with switches for tests.

    Switches (constructor keywords, also plain attributes you may change while it runs):

    - ``token``: the only accepted ``Authorization: Bearer`` token (else 401).
    - ``accounts``: configured Google account e-mails.
    - ``latency`` / ``upscale_latency``: seconds each POST /images, /images/upscale takes.
    - ``capacity``: per-account parallel /images admitted (int for all, or dict by e-mail,
      missing e-mails get 20); one more answers 429 at once and counts in ``throttled``.
    - ``shape``: answer of POST /images — "media-url" (``fifeUrl`` to GET /fife/…),
      "media-inline" (base64 ``encodedImage``) or "panels" (the older ``imagePanels``).
    - ``image_size``: (width, height) of generated images; upscales are 2x (2k) or 4x (4k).
    - ``paid``: bool or dict by e-mail (missing: True); 4k upscale needs a paid account.
    - ``retry_after``: if set, 429 and 503 answers carry ``Retry-After`` with that many seconds.
    - ``fife_status``: if set, every GET /fife/… download answers this status.
    - ``fife_root``: the scheme and host written into ``fifeUrl`` (default: this server's own
      root), to point the client at another host; the path and signature are unchanged.
    - ``body_trickle`` / ``fife_trickle``: if set, answers of POST /images and /images/upscale
      (resp. GET /fife/… downloads) are sent one byte every that many seconds.

    One-shot behaviour: ``fail_next``, ``fail_next_unsafe``, ``fail_next_captcha``,
    ``empty_next``, ``stall_next``, ``answer_next`` / ``fife_answer_next`` (a ``RawAnswer``);
    ``hold()`` / ``release()`` keep every generation (or character) from answering (``held``);
    account state: ``set_capacity``, ``set_health``.
    Records: ``requests`` (every request, ``Recorded``), ``in_flight``/``peak`` (per-account
    concurrent /images), ``peak_total``, ``throttled``, ``generated``; ``reset_records()``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        accounts: Sequence[str] = ("alice@example.com",),
        latency: float = 0.0,
        upscale_latency: float = 0.0,
        capacity: int | dict[str, int] = DEFAULT_CAPACITY,
        shape: Shape = "media-url",
        image_size: tuple[int, int] = (64, 48),
        paid: bool | dict[str, bool] = True,
        retry_after: float | None = None,
        fife_status: int | None = None,
        fife_root: str | None = None,
        body_trickle: float | None = None,
        fife_trickle: float | None = None,
    ) -> None:
        self.token = token
        self.accounts = list(accounts)
        self.latency = latency
        self.upscale_latency = upscale_latency
        self.capacity = capacity
        self.shape: Shape = shape
        self.image_size = image_size
        self.paid = paid
        self.retry_after = retry_after
        self.fife_status = fife_status
        self.fife_root = fife_root
        self.body_trickle = body_trickle
        self.fife_trickle = fife_trickle
        self.health: dict[str, str] = {}
        self.requests: list[Recorded] = []
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.peak_total = 0
        self.throttled = 0
        self.generated = 0
        self._failures: dict[str, deque[_Failure]] = {name: deque() for name in ENDPOINTS}
        self._empty = 0
        self._stalls: deque[float] = deque()
        self._gates = {"images": asyncio.Event(), "characters": asyncio.Event()}
        for gate in self._gates.values():
            gate.set()
        self.held: list[Recorded] = []
        self._raw: dict[str, deque[RawAnswer]] = {name: deque() for name in ENDPOINTS}
        self._raw_fife: deque[RawAnswer] = deque()
        self._media: dict[str, _Media] = {}
        self._characters: dict[str, str] = {}  # character id → owning account
        self.deleted_characters: list[str] = []  # by DELETE /characters/{ref}, in order
        self._fife: dict[str, tuple[str, bytes]] = {}  # file name → (signature, JPEG)
        self._jobs: dict[str, JSON] = {}
        self._job_seq = 0
        self._created_ms = int(time.time() * 1000)
        self._runner: web.AppRunner | None = None
        self.root_url = ""
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=2 * MAX_UPLOAD)
        app.router.add_get(f"{PREFIX}/accounts", self._accounts)
        app.router.add_get(f"{PREFIX}/accounts/{{email}}", self._account)
        app.router.add_post(f"{PREFIX}/assets/{{email}}", self._assets)
        app.router.add_post(f"{PREFIX}/images", self._images)
        app.router.add_post(f"{PREFIX}/images/upscale", self._upscale)
        app.router.add_post(f"{PREFIX}/characters", self._new_character)
        app.router.add_delete(f"{PREFIX}/characters/{{ref}}", self._delete_character)
        app.router.add_get(f"{PREFIX}/jobs/{{job_id}}", self._job)
        app.router.add_get("/fife/{name}", self._download)
        # handler_cancellation: a client that hangs up must free its capacity slot at once,
        # and a short shutdown_timeout keeps teardown fast when a test leaves a request stalled.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.root_url = f"http://127.0.0.1:{port}"
        self.base_url = self.root_url + PREFIX

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeFlowServer:
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

    def set_capacity(self, account: str, n: int) -> None:
        if isinstance(self.capacity, int):
            self.capacity = dict.fromkeys(self.accounts, self.capacity)
        self.capacity[account] = n

    def set_health(self, account: str, health: str) -> None:
        """Anything but "OK" makes the account answer 596 to /images and /images/upscale."""
        self.health[account] = health

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        endpoint: str = "images",
        body: JSON | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next ``count`` valid calls to ``endpoint`` answer ``status`` (default body per docs).

        For /images the failure comes after the capacity check and without ``latency``.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}")
        self._failures[endpoint].extend(_Failure(status, body, retry_after) for _ in range(count))

    def fail_next_unsafe(self, *, count: int = 1) -> None:
        self.fail_next(400, count=count, body=UNSAFE)

    def fail_next_captcha(self, *, count: int = 1, endpoint: str = "images") -> None:
        body = {"error": "captcha solve failed (provider returned ERROR_CAPTCHA_UNSOLVABLE)"}
        self.fail_next(403, count=count, endpoint=endpoint, body=body)

    def empty_next(self, count: int = 1) -> None:
        """The next ``count`` successful /images answer 200 with no images (as if moderated)."""
        self._empty += count

    def stall_next(self, seconds: float) -> None:
        """The next /images waits ``seconds`` instead of ``latency``, e.g. for client timeouts."""
        self._stalls.append(seconds)

    def hold(self, endpoint: Literal["images", "characters"] = "images") -> None:
        """From now on, POST /images (or /characters) answers nothing until ``release()``: each
        request, once admitted, waits (listed in ``held``), holding its capacity slot. A client
        that hangs up meanwhile leaves it (status ``CLIENT_GONE``): nothing was made for it."""
        self._gates[endpoint].clear()

    def release(self) -> None:
        for gate in self._gates.values():
            gate.set()

    async def _wait_gate(self, endpoint: str, request: web.Request) -> None:
        gate = self._gates[endpoint]
        if gate.is_set():
            return
        self.held.append(request[RECORD])
        try:
            await gate.wait()
        finally:
            self.held.remove(request[RECORD])

    def answer_next(self, answer: RawAnswer, *, endpoint: str = "images") -> None:
        """The next valid call to ``endpoint`` gets ``answer`` as is (where ``fail_next`` acts)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}")
        self._raw[endpoint].append(answer)

    def fife_answer_next(self, answer: RawAnswer) -> None:
        """The next GET /fife/… download gets ``answer`` as is, whatever its signature."""
        self._raw_fife.append(answer)

    # -- records ---------------------------------------------------------------------------

    def images_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == f"{PREFIX}/images"]

    def fife_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/fife/")]

    def reset_records(self) -> None:
        """Forget recorded requests and counters; peaks restart from what is in flight now."""
        self.requests.clear()
        self.peak = {k: v for k, v in self.in_flight.items() if v}
        self.peak_total = sum(self.in_flight.values())
        self.throttled = 0
        self.generated = 0

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
            json=_parse_body(request.content_type, request.headers.get("Content-Type", ""), body),
            body=body,
            peer=str(request.transport.get_extra_info("peername") if request.transport else ""),
        )
        self.requests.append(record)
        request[RECORD] = record
        try:
            response = await self._guarded(request, handler)
        except _Raw as raw:
            return await _stream(request, record, raw.answer)
        except ApiError as err:
            response = web.json_response(err.body, status=err.status)
            if err.retry_after is not None:
                response.headers["Retry-After"] = f"{err.retry_after:g}"
        except web.HTTPException as exc:
            record.status = exc.status
            raise
        except asyncio.CancelledError:
            record.status = CLIENT_GONE
            raise
        record.status = response.status
        record.answered_at = time.monotonic()
        return response

    async def _guarded(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # Signed storage URLs are fetched from Google directly: no vendor edge, no token.
        if not request.path.startswith(PREFIX):
            return await handler(request)
        agent = request.headers.get("User-Agent", "")
        if not agent or agent.startswith("python-httpx"):
            raise ApiError(403, "Forbidden")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized")
        return await handler(request)

    def _use_account(self, request: web.Request, account: str) -> None:
        if account not in self.accounts:
            raise ApiError(404, f"Google Flow account {account} not found")
        request[RECORD].account = account

    def _check_owner(self, ref: str, owner: str, account: str) -> None:
        if owner != account:
            raise ApiError(403, f"Unauthorized access to user:1 detected in reference {ref}")

    def _check_health(self, account: str) -> None:
        if self.health.get(account, "OK") != "OK":
            raise ApiError(596, "Failed to refresh session.")

    def _inject(self, endpoint: str, account: str) -> None:
        """Raise the next queued raw answer or failure for ``endpoint``, if any."""
        if self._raw[endpoint]:
            raise _Raw(self._raw[endpoint].popleft())
        if not self._failures[endpoint]:
            return
        failure = self._failures[endpoint].popleft()
        retry_after = failure.retry_after
        if retry_after is None and failure.status in (429, 503):
            retry_after = self.retry_after
        body = failure.body if failure.body is not None else default_body(failure.status, account)
        raise ApiError(failure.status, body, retry_after)

    def _payload(self, request: web.Request, fields: frozenset[str]) -> JSON:
        payload = request[RECORD].json
        if not isinstance(payload, dict):
            raise ApiError(400, "Request body must be a JSON object")
        for key in payload:
            if key not in fields and not (fields is IMAGES_FIELDS and REF_KEY.fullmatch(key)):
                raise ApiError(400, f'"{key}" is not allowed')
        return payload

    # -- accounts --------------------------------------------------------------------------

    def _account_info(self, account: str) -> JSON:
        return {
            "health": self.health.get(account, "OK"),
            "nextRefresh": int(time.time() * 1000) + 86_400_000,
            "created": self._created_ms,
        }

    async def _accounts(self, request: web.Request) -> web.Response:
        self._inject("accounts", self.accounts[0] if self.accounts else "")
        return web.json_response({a: self._account_info(a) for a in self.accounts})

    async def _account(self, request: web.Request) -> web.Response:
        account = request.match_info["email"]
        self._use_account(request, account)
        self._inject("accounts", account)
        return web.json_response({**self._account_info(account), "credits": 100})

    # -- references ------------------------------------------------------------------------

    async def _assets(self, request: web.Request) -> web.Response:
        account = request.match_info["email"]
        self._use_account(request, account)
        image_format = UPLOAD_FORMATS.get(request.content_type)
        if image_format is None:
            raise ApiError(400, "Unsupported content type")
        body: bytes = request[RECORD].body
        if len(body) > MAX_UPLOAD:
            raise ApiError(400, f"File size {len(body)} exceeds the maximum of {MAX_UPLOAD} bytes")
        try:
            with Image.open(BytesIO(body), formats=[image_format]) as image:
                size = image.size
        except UnidentifiedImageError:
            raise ApiError(400, f"Content is not a valid {request.content_type} image") from None
        self._inject("assets", account)
        media_id = new_media_id(account)
        self._media[media_id] = _Media(account, None, size)
        return web.json_response(
            {
                "mediaGenerationId": {"mediaGenerationId": media_id},
                "width": size[0],
                "height": size[1],
                "email": mask(account),
            }
        )

    async def _new_character(self, request: web.Request) -> web.Response:
        payload = self._payload(request, CHARACTER_FIELDS)
        name = payload.get("displayName")
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise ApiError(400, "displayName is required (1 to 200 characters)")
        keys = ("imageReference_1", "imageReference_2")
        refs = [payload[k] for k in keys if payload.get(k)]
        if "imageReference_1" not in payload or not all(isinstance(r, str) for r in refs):
            raise ApiError(400, "imageReference_1 is required")
        media = [self._known_media(ref) for ref in refs]
        account = payload.get("email") or media[0].owner
        self._use_account(request, account)
        for ref, item in zip(refs, media, strict=True):
            self._check_owner(ref, item.owner, account)
        self._inject("characters", account)
        await self._wait_gate("characters", request)
        entity = str(uuid.uuid4())
        character_id = f"user:1-email:{account.encode().hex()}-character:{entity}-imgs:{len(refs)}"
        self._characters[character_id] = account
        return web.json_response(
            {"character": character_id, "entityId": entity, "displayName": name}
        )

    async def _delete_character(self, request: web.Request) -> web.Response:
        """``DELETE /characters/{ref}``, answered as the vendor documents (June 2026)."""
        ref = request.match_info["ref"]
        found = CHARACTER_REF.fullmatch(ref)
        if found is None:
            raise ApiError(400, "Parameter character has incorrect format")
        user, account_hex, entity = found.groups()
        if user != "1":
            raise ApiError(
                403, f"Unauthorized access to user:{user} detected in character reference"
            )
        self._inject("character-delete", bytes.fromhex(account_hex).decode(errors="replace"))
        if self._characters.pop(ref, None) is None:
            raise ApiError(404, f"Character not found: {entity}")
        self.deleted_characters.append(ref)
        return web.json_response({"deleted": True, "entityId": entity, "character": ref})

    def _known_media(self, ref: str) -> _Media:
        item = self._media.get(ref)
        if item is None:
            raise ApiError(400, f"Reference {ref} not found")
        return item

    # -- generation ------------------------------------------------------------------------

    async def _images(self, request: web.Request) -> web.StreamResponse:
        payload = self._payload(request, IMAGES_FIELDS)
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ApiError(400, "prompt is required")
        refs = _references(payload, prompt)
        # Without a model the API picks one: nano-banana-2 with references, else the default.
        requested = payload.get("model", REFERENCES_MODEL if refs else DEFAULT_MODEL)
        model = ALIASES.get(requested, requested) if isinstance(requested, str) else None
        if model not in MODELS:
            raise ApiError(400, f"Unsupported model {requested!r}; use one of {sorted(MODELS)}")
        characters = [key for key, _ in refs if key.startswith("character")]
        if characters and model in NO_CHARACTERS:
            raise ApiError(400, f"Model {requested} does not support {characters[0]}")
        count = payload.get("count", 4)
        if not _is_int(count) or not 1 <= count <= 4:
            raise ApiError(400, "count must be an integer from 1 to 4")
        seed = payload.get("seed")
        if seed is not None and (not _is_int(seed) or seed < 0):
            raise ApiError(400, "seed must be an integer >= 0")
        owners = [self._owner_of(key, value) for key, value in refs]
        aspect = payload.get("aspectRatio", "16:9")
        if aspect == "auto":
            if not refs or model == "nano-banana-2-lite":
                raise ApiError(
                    400, "aspectRatio auto needs a reference and nano-banana-2 or nano-banana-pro"
                )
        elif aspect not in ASPECTS:
            raise ApiError(400, f"Unsupported aspectRatio {aspect!r}")

        account = self._choose_account(payload, owners)
        self._use_account(request, account)
        for (_, ref), owner in zip(refs, owners, strict=True):
            self._check_owner(ref, owner, account)
        self._check_health(account)

        capacity = self._capacity_of(account)
        if self.in_flight.get(account, 0) >= capacity:
            self.throttled += 1
            raise ApiError(429, THROTTLED, self.retry_after)
        self.in_flight[account] = self.in_flight.get(account, 0) + 1
        try:
            self.peak[account] = max(self.peak.get(account, 0), self.in_flight[account])
            self.peak_total = max(self.peak_total, sum(self.in_flight.values()))
            stall = self._stalls.popleft() if self._stalls else None
            if stall is not None:
                await asyncio.sleep(stall)
            self._inject("images", account)
            if stall is None:
                await asyncio.sleep(self.latency)
            await self._wait_gate("images", request)
            if aspect == "auto":
                ref_media = self._media.get(refs[0][1])
                ratio = orientation(ref_media.size if ref_media else self.image_size)
            else:
                ratio = ASPECTS[aspect]
            answer = self._generate(account, prompt, model, count, seed, ratio)
            if self.body_trickle is not None:
                # Still holding the capacity slot, as the real API would while it sends.
                return await _stream(request, request[RECORD], _trickled(answer, self.body_trickle))
            return answer
        finally:
            self.in_flight[account] -= 1

    def _owner_of(self, key: str, value: str) -> str:
        if key.startswith("character"):
            owner = self._characters.get(value)
            if owner is None:
                raise ApiError(400, f"{key} {value} not found")
            return owner
        return self._known_media(value).owner

    def _choose_account(self, payload: JSON, owners: list[str]) -> str:
        account = payload.get("email")
        if isinstance(account, str) and account:
            return account
        if owners:
            return owners[0]
        if len(self.accounts) == 1:
            return self.accounts[0]
        raise ApiError(400, "email is required when multiple accounts are configured")

    def _capacity_of(self, account: str) -> int:
        if isinstance(self.capacity, int):
            return self.capacity
        return self.capacity.get(account, DEFAULT_CAPACITY)

    def _generate(
        self, account: str, prompt: str, model: str, count: int, seed: int | None, ratio: str
    ) -> web.Response:
        self._job_seq += 1
        job_id = (
            f"j{int(time.time() * 1000)}i{self._job_seq}-u1-email:{mask(account)}-bot:google-flow"
        )
        base_seed = seed if seed is not None else random.randrange(2**31)
        images: list[tuple[JSON, bytes]] = []
        if self._empty:
            self._empty -= 1
        else:
            for i in range(count):
                media_id = new_media_id(account)
                data = jpeg(self.image_size, base_seed + i, media_id)
                self._media[media_id] = _Media(account, model, self.image_size)
                name, sig = f"{uuid.uuid4().hex}.jpg", secrets.token_hex(8)
                self._fife[name] = (sig, data)
                generated: JSON = {
                    "seed": base_seed + i,
                    "mediaGenerationId": media_id,
                    "prompt": prompt,
                    "fifeUrl": f"{self.fife_root or self.root_url}/fife/{name}?sig={sig}",
                    "aspectRatio": ratio,
                    "modelNameType": MODELS[model],
                    "mediaVisibility": "PRIVATE",
                }
                images.append((generated, data))
            self.generated += count
        captcha = {"service": "fake", "durationMs": 1}
        by_url = [{"image": {"generatedImage": g}} for g, _ in images]
        self._jobs[job_id] = {"jobId": job_id, "media": by_url, "captcha": captcha}
        if self.shape == "media-url":
            return web.json_response(self._jobs[job_id])
        inline = [_inline(g, data) for g, data in images]
        if self.shape == "media-inline":
            media = [{"image": {"generatedImage": g}} for g in inline]
            return web.json_response({"jobId": job_id, "media": media, "captcha": captcha})
        panels = [
            {
                **g,
                "mediaGenerationId": {"mediaGenerationId": g["mediaGenerationId"]},
                "modelNameType": "GEM_PIX",
                "workflowId": "w",
            }
            for g in inline
        ]
        return web.json_response(
            {"imagePanels": [{"prompt": prompt, "generatedImages": panels}] if panels else []}
        )

    async def _upscale(self, request: web.Request) -> web.StreamResponse:
        payload = self._payload(request, UPSCALE_FIELDS)
        media_id = payload.get("mediaGenerationId")
        if not isinstance(media_id, str) or not media_id:
            raise ApiError(400, "mediaGenerationId is required")
        resolution = payload.get("resolution", "2k")
        if resolution not in UPSCALE_FACTOR:
            raise ApiError(400, f"Unsupported resolution {resolution!r}; use 2k or 4k")
        item = self._known_media(media_id)
        account = payload.get("email") or item.owner
        self._use_account(request, account)
        self._check_owner(media_id, item.owner, account)
        if item.model not in UPSCALABLE:
            raise ApiError(
                400, "Upscale is only supported for nano-banana-2 and nano-banana-pro images"
            )
        paid = self.paid if isinstance(self.paid, bool) else self.paid.get(account, True)
        if resolution == "4k" and not paid:
            raise ApiError(400, "4k upscale requires a paid Google account; free accounts get 2k")
        self._check_health(account)
        self._inject("upscale", account)
        await asyncio.sleep(self.upscale_latency)
        factor = UPSCALE_FACTOR[resolution]
        width, height = self.image_size
        data = jpeg((width * factor, height * factor), factor, f"{media_id} {resolution}")
        answer = web.json_response(
            {
                "encodedImage": base64.b64encode(data).decode(),
                "mediaGenerationId": media_id,
                "resolution": resolution,
            }
        )
        if self.body_trickle is not None:
            return await _stream(request, request[RECORD], _trickled(answer, self.body_trickle))
        return answer

    async def _job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if job_id not in self._jobs:
            raise ApiError(404, f"Job {job_id} not found")
        return web.json_response(
            {"jobId": job_id, "status": "completed", "response": self._jobs[job_id]}
        )

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if self._raw_fife:
            return await _stream(request, request[RECORD], self._raw_fife.popleft())
        if self.fife_status is not None:
            return web.Response(status=self.fife_status, text="storage error")
        stored = self._fife.get(request.match_info["name"])
        if stored is None:
            return web.Response(status=404, text="No such object")
        sig, data = stored
        if request.query.get("sig") != sig:
            return web.Response(status=403, text="SignatureDoesNotMatch")
        answer = web.Response(body=data, content_type="image/jpeg")
        if self.fife_trickle is not None:
            return await _stream(request, request[RECORD], _trickled(answer, self.fife_trickle))
        return answer


def _trickled(answer: web.Response, interval: float) -> RawAnswer:
    """``answer``'s body, one byte every ``interval`` seconds."""
    body = answer.body if isinstance(answer.body, bytes) else b""
    headers = {"Content-Type": answer.headers.get("Content-Type", "application/octet-stream")}
    return RawAnswer(answer.status, headers, (body[i : i + 1] for i in range(len(body))), interval)


async def _stream(request: web.Request, record: Recorded, answer: RawAnswer) -> web.StreamResponse:
    """Write ``answer`` chunk by chunk (chunked unless it names a Content-Length)."""
    response = web.StreamResponse(status=answer.status, headers=answer.headers)
    if "Content-Length" not in answer.headers:
        response.enable_chunked_encoding()
    record.status = answer.status
    try:
        await response.prepare(request)
        for chunk in answer.chunks:
            if answer.interval:
                await asyncio.sleep(answer.interval)
            await response.write(chunk)
            record.sent += len(chunk)
        await response.write_eof()
    except asyncio.CancelledError:
        record.status = CLIENT_GONE
        raise
    except ConnectionResetError:
        record.status = CLIENT_GONE
    return response


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _inline(generated: JSON, data: bytes) -> JSON:
    """The same image entry with the picture inline instead of behind a URL."""
    entry = {k: v for k, v in generated.items() if k != "fifeUrl"}
    entry["encodedImage"] = base64.b64encode(data).decode()
    return entry


def _references(payload: JSON, prompt: str) -> list[tuple[str, str]]:
    """The (field, id) pairs of reference_N and character_N, checked against the API's rules."""
    refs: list[tuple[str, str]] = []
    for key, value in payload.items():
        match = REF_KEY.fullmatch(key)
        if match is None:
            continue
        kind, index = match.group(1), int(match.group(2))
        if not 1 <= index <= MAX_INDEX[kind]:
            raise ApiError(
                400, f"{key} is not supported (use {kind}_1 to {kind}_{MAX_INDEX[kind]})"
            )
        if not isinstance(value, str) or not value:
            raise ApiError(400, f"{key} must be a mediaGenerationId string")
        refs.append((key, value))
    if len(refs) > MAX_REFERENCES:
        raise ApiError(400, f"A maximum of {MAX_REFERENCES} references and characters is supported")
    given = {key for key, _ in refs}
    for marker in MARKER.findall(prompt):
        if marker not in given:
            raise ApiError(400, f"Prompt marker @{marker} has no matching {marker} parameter")
    return sorted(refs, key=lambda kv: (kv[0].startswith("character"), int(kv[0].split("_")[1])))


def _parse_body(content_type: str, raw_content_type: str, body: bytes) -> Any | None:
    """JSON bodies as parsed JSON, multipart forms as a dict of fields, anything else None."""
    if content_type == "application/json":
        try:
            return json.loads(body)
        except ValueError:
            return None
    if content_type != "multipart/form-data":
        return None
    header = f"Content-Type: {raw_content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    fields: JSON = {}
    for part in message.walk():  # the multipart root itself has no name and is skipped
        name = part.get_param("name", header="content-disposition")
        value = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(value, bytes):
            text = value.decode()
            # Form fields are all text; numbers arrive as digits.
            fields[name] = int(text) if name in ("count", "seed") and text.isdigit() else text
    return fields
