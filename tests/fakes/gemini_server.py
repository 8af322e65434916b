"""A real local HTTP server that behaves like the official Gemini API's image generation.

``POST /v1beta/models/{model}:generateContent`` and ``GET /v1beta/models[/{model}]``, as Google
documents them (ai.google.dev: image generation, API reference, troubleshooting, rate limits):
the key in ``x-goog-api-key`` (or ``?key=``), proto-JSON bodies whose unknown fields are refused,
base64 ``inlineData`` references, ``imageConfig`` checked per model, one candidate per call, and
errors in Google's ``{"error": {code, message, status, details}}`` form. Per-minute and per-day
quotas answer 429 with ``QuotaFailure`` and ``RetryInfo``; over ``capacity`` the model is
"overloaded" (503). The fake's own model table is independent of the client's on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from io import BytesIO
from types import TracebackType
from typing import Any, Literal

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.flow_server import CLIENT_GONE, Recorded

JSON = dict[str, Any]
Shape = Literal["image", "text-and-image", "thoughts"]

PREFIX = "/v1beta"
DEFAULT_KEY = "test-gemini-key"
MAX_REQUEST_BYTES = 20 * 1024 * 1024
TEN = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
INPUT_MIMES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
EDGE = {"512": 32, "1K": 64, "2K": 128, "4K": 256}  # long edge of the fake's pictures


@dataclass(frozen=True)
class FakeModel:
    ratios: frozenset[str]
    sizes: frozenset[str]
    max_images: int


MODELS = {
    "gemini-2.5-flash-image": FakeModel(TEN, frozenset({"1K"}), 3),
    "gemini-3.1-flash-image": FakeModel(
        TEN | {"1:4", "4:1", "1:8", "8:1"}, frozenset({"512", "1K", "2K", "4K"}), 14
    ),
    "gemini-3-pro-image": FakeModel(TEN, frozenset({"1K", "2K", "4K"}), 14),
}
RETIRED = frozenset(
    {
        "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
        "gemini-2.5-flash-image-preview",
    }
)

# Proto-JSON accepts the lowerCamel and the original snake_case names; anything else is refused.
FIELDS: dict[str, frozenset[str]] = {
    "request": frozenset(
        {
            "contents",
            "generationConfig",
            "safetySettings",
            "systemInstruction",
            "tools",
            "toolConfig",
            "cachedContent",
        }
    ),
    "generationConfig": frozenset(
        {
            "responseModalities",
            "imageConfig",
            "seed",
            "temperature",
            "topP",
            "topK",
            "candidateCount",
            "maxOutputTokens",
            "stopSequences",
            "thinkingConfig",
            "responseMimeType",
        }
    ),
    "imageConfig": frozenset({"aspectRatio", "imageSize"}),
    "content": frozenset({"role", "parts"}),
    "part": frozenset({"text", "inlineData", "fileData", "thought", "thoughtSignature"}),
    "inlineData": frozenset({"mimeType", "data"}),
}


def google_error(code: int, message: str, status: str, *details: JSON) -> JSON:
    error: JSON = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def error_info(reason: str) -> JSON:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }


def quota_error(model: str, quota_id: str, limit: int, retry_in: float | None) -> JSON:
    """Google's 429 for a used-up quota: QuotaFailure names it, RetryInfo says when to retry."""
    metric = "generativelanguage.googleapis.com/generate_content_paid_tier_requests"
    message = (
        "You exceeded your current quota, please check your plan and billing details. "
        "For more information on this error, head to: "
        "https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        f"* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}"
    )
    details: list[JSON] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": metric,
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": str(limit),
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if retry_in is not None:
        message += f"\nPlease retry in {retry_in:.1f}s."
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_in:g}s"}
        )
    return google_error(429, message, "RESOURCE_EXHAUSTED", *details)


BAD_KEY = google_error(
    400,
    "API key not valid. Please pass a valid API key.",
    "INVALID_ARGUMENT",
    error_info("API_KEY_INVALID"),
    {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        "locale": "en-US",
        "message": "API key not valid. Please pass a valid API key.",
    },
)
NO_KEY = google_error(
    403,
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API.",
    "PERMISSION_DENIED",
)


def default_body(status: int, model: str) -> JSON:
    """The body Google sends with ``status``, for failures injected without one."""
    bodies: dict[int, JSON] = {
        400: google_error(400, "Request contains an invalid argument.", "INVALID_ARGUMENT"),
        401: google_error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential.",
            "UNAUTHENTICATED",
        ),
        403: google_error(
            403,
            "Your API key was reported as leaked. Please use another API key.",
            "PERMISSION_DENIED",
        ),
        404: not_found(model),
        429: quota_error(model, "GenerateRequestsPerMinutePerProjectPerModel", 20, 30.0),
        500: google_error(
            500,
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
            "INTERNAL",
        ),
        503: google_error(503, "The model is overloaded. Please try again later.", "UNAVAILABLE"),
        504: google_error(504, "The request timed out. Please try again.", "DEADLINE_EXCEEDED"),
    }
    return bodies.get(status, google_error(status, f"Injected HTTP {status}", "UNKNOWN"))


def not_found(model: str) -> JSON:
    return google_error(
        404,
        f"models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
        "NOT_FOUND",
    )


def picture(size: tuple[int, int], seed: int | None) -> bytes:
    """A PNG, the same bytes for the same seed (so seeds can be seen to work)."""
    rng = random.Random(seed)
    colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    out = BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def dimensions(ratio: str, size: str) -> tuple[int, int]:
    edge = EDGE[size]
    width, height = (int(x) for x in ratio.split(":"))
    if width >= height:
        return edge, max(1, round(edge * height / width))
    return max(1, round(edge * width / height)), edge


class ApiError(Exception):
    def __init__(self, status: int, body: JSON, retry_after: float | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.retry_after = retry_after


def invalid(message: str) -> ApiError:
    return ApiError(400, google_error(400, message, "INVALID_ARGUMENT"))


@dataclass
class _Canned:
    """A one-shot answer: an error status with its body, or a 200 with a body of our making."""

    status: int
    body: JSON | None
    retry_after: float | None = None


RECORD = web.RequestKey("gemini_record", Recorded)


class FakeGeminiServer:
    """The Gemini API on ``127.0.0.1:<free port>``; point the client at ``base_url``.

    Switches (constructor keywords, also attributes you may change while it runs):

    - ``api_key``: the only key accepted (wrong: 400 API_KEY_INVALID; missing: 403).
    - ``latency``: seconds each generateContent takes; ``shape``: "image" (one image part),
      "text-and-image" (a text part first) or "thoughts" (a draft image marked ``thought``, then
      the final one).
    - ``rpm`` / ``rpd``: generateContent requests per model in ``window`` seconds / per day
      (None: unlimited); beyond either, 429 with QuotaFailure (and RetryInfo per minute).
    - ``paid``: False answers every call 429 "limit: 0", as Google does for a project without
      billing on an image model.
    - ``capacity``: generateContent calls in flight at once; one more answers 503 (overloaded).

    One-shot behaviour: ``fail_next``, ``block_prompt_next``, ``finish_next``, ``empty_next``,
    ``stall_next``. Records: ``requests``, ``in_flight``, ``peak``, ``generated``, ``throttled``,
    ``overloaded``.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        latency: float = 0.0,
        shape: Shape = "image",
        rpm: int | None = None,
        rpd: int | None = None,
        window: float = 60.0,
        paid: bool = True,
        capacity: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.shape: Shape = shape
        self.rpm = rpm
        self.rpd = rpd
        self.window = window
        self.paid = paid
        self.capacity = capacity
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.peak = 0
        self.generated = 0
        self.throttled = 0
        self.overloaded = 0
        self._canned: deque[_Canned] = deque()
        self._stalls: deque[float] = deque()
        self._minute: dict[str, deque[float]] = {}
        self._day: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.root_url = ""
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=2 * MAX_REQUEST_BYTES)
        app.router.add_get(f"{PREFIX}/models", self._list_models)
        app.router.add_get(f"{PREFIX}/models/{{name}}", self._get_model)
        app.router.add_post(f"{PREFIX}/models/{{name}}", self._generate)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.root_url = self.base_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGeminiServer:
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
        """The next ``count`` valid generateContent calls answer ``status`` (Google's body by
        default; with ``status`` 200 and a ``body``, that body after ``latency``). Error
        statuses answer at once, with a ``Retry-After`` header if ``retry_after`` is given."""
        self._canned.extend(_Canned(status, body, retry_after) for _ in range(count))

    def block_prompt_next(self, reason: str = "SAFETY", *, count: int = 1) -> None:
        """The prompt is blocked: 200 with ``promptFeedback.blockReason`` and no candidates."""
        body = {"promptFeedback": {"blockReason": reason}, "usageMetadata": _usage(0)}
        self.fail_next(200, count=count, body=body)

    def finish_next(self, reason: str, *, text: str | None = None, count: int = 1) -> None:
        """A candidate that stopped with ``finishReason`` ``reason``, no image (text if given)."""
        candidate: JSON = {"finishReason": reason, "index": 0}
        if text is not None:
            candidate["content"] = {"role": "model", "parts": [{"text": text}]}
        self.fail_next(
            200, count=count, body={"candidates": [candidate], "usageMetadata": _usage(0)}
        )

    def empty_next(self, *, count: int = 1) -> None:
        """A 200 with no candidates and no prompt feedback at all."""
        self.fail_next(200, count=count, body={"usageMetadata": _usage(0)})

    def stall_next(self, seconds: float) -> None:
        """The next generateContent waits ``seconds`` instead of ``latency``."""
        self._stalls.append(seconds)

    def generate_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    # -- plumbing --------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        record = Recorded(
            method=request.method,
            path=request.path_qs,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=parsed,
            body=body,
        )
        self.requests.append(record)
        request[RECORD] = record
        try:
            self._authorize(request)
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

    def _authorize(self, request: web.Request) -> None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            raise ApiError(403, NO_KEY)
        if key != self.api_key:
            raise ApiError(400, BAD_KEY)

    # -- models ----------------------------------------------------------------------------

    def _model_info(self, name: str) -> JSON:
        return {
            "name": f"models/{name}",
            "displayName": name,
            "inputTokenLimit": 65536,
            "outputTokenLimit": 32768,
            "supportedGenerationMethods": [
                "generateContent",
                "countTokens",
                "batchGenerateContent",
            ],
        }

    async def _list_models(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [self._model_info(m) for m in MODELS]})

    async def _get_model(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in MODELS:
            raise ApiError(404, not_found(name))
        return web.json_response(self._model_info(name))

    # -- generation ------------------------------------------------------------------------

    async def _generate(self, request: web.Request) -> web.Response:
        model, _, method = request.match_info["name"].partition(":")
        if method != "generateContent":
            raise ApiError(404, google_error(404, "Method not found.", "NOT_FOUND"))
        if model not in MODELS:
            raise ApiError(404, not_found(model))
        record = request[RECORD]
        if len(record.body) > MAX_REQUEST_BYTES:
            raise invalid(f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
        payload = record.json
        if not isinstance(payload, dict):
            raise invalid("Invalid JSON payload received. Expected an object.")
        ratio, size, seed = _validate(payload, model)
        self._charge(model)
        if self.capacity is not None and self.in_flight >= self.capacity:
            self.overloaded += 1
            raise ApiError(503, default_body(503, model))
        canned = self._canned.popleft() if self._canned else None
        if canned is not None and canned.status != 200:
            body = canned.body or default_body(canned.status, model)
            raise ApiError(canned.status, body, canned.retry_after)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self._stalls.popleft() if self._stalls else self.latency)
            if canned is not None:
                return web.json_response({**(canned.body or {}), "modelVersion": model})
            self.generated += 1
            data = picture(dimensions(ratio, size), seed)
            return web.json_response(self._answer(model, data))
        finally:
            self.in_flight -= 1

    def _charge(self, model: str) -> None:
        """Count the call against the quotas; 429 the way Google does once one is used up."""
        if not self.paid:
            self.throttled += 1
            raise ApiError(
                429,
                quota_error(model, "GenerateRequestsPerDayPerProjectPerModel-FreeTier", 0, None),
            )
        now = time.monotonic()
        stamps = self._minute.setdefault(model, deque())
        while stamps and now - stamps[0] >= self.window:
            stamps.popleft()
        if self.rpd is not None and self._day.get(model, 0) >= self.rpd:
            self.throttled += 1
            quota = "GenerateRequestsPerDayPerProjectPerModel"
            raise ApiError(429, quota_error(model, quota, self.rpd, None))
        if self.rpm is not None and len(stamps) >= self.rpm:
            self.throttled += 1
            retry_in = max(0.1, round(stamps[0] + self.window - now, 1))
            quota = "GenerateRequestsPerMinutePerProjectPerModel"
            raise ApiError(429, quota_error(model, quota, self.rpm, retry_in))
        stamps.append(now)
        self._day[model] = self._day.get(model, 0) + 1

    def _answer(self, model: str, data: bytes) -> JSON:
        image = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}}
        parts: list[JSON] = [{**image, "thoughtSignature": "c2ln"}]
        if self.shape == "text-and-image":
            parts.insert(0, {"text": "Here is your image."})
        elif self.shape == "thoughts":
            draft = picture((8, 8), None)
            draft_part = {"mimeType": "image/png", "data": base64.b64encode(draft).decode()}
            parts.insert(0, {"inlineData": draft_part, "thought": True})
        return {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": _usage(1290),
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:22],
        }


def _parts(record: Recorded) -> list[JSON]:
    payload = record.json if isinstance(record.json, dict) else {}
    return [part for content in payload.get("contents", []) for part in content.get("parts", [])]


def prompt_of(record: Recorded) -> str:
    """The text a generateContent request sent."""
    return "".join(str(part["text"]) for part in _parts(record) if "text" in part)


def inline_pictures(record: Recorded) -> list[bytes]:
    """The pictures a generateContent request sent inline, in order, as bytes."""
    return [
        base64.b64decode(part["inlineData"]["data"])
        for part in _parts(record)
        if "inlineData" in part
    ]


def _usage(image_tokens: int) -> JSON:
    return {
        "promptTokenCount": 12,
        "candidatesTokenCount": image_tokens,
        "totalTokenCount": 12 + image_tokens,
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _fields(obj: JSON, kind: str, where: str) -> JSON:
    """``obj`` with snake_case names turned lowerCamel; unknown names refused as Google does."""
    out: JSON = {}
    for name, value in obj.items():
        camel = _camel(name)
        if camel not in FIELDS[kind]:
            raise invalid(
                f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                "Cannot find field."
            )
        out[camel] = value
    return out


def _validate(payload: JSON, model: str) -> tuple[str, str, int | None]:
    """Check a generateContent body the way the API does; the ratio, size and seed to draw."""
    spec = MODELS[model]
    body = _fields(payload, "request", "")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified")
    images: list[tuple[int, int]] = []
    for c_index, raw_content in enumerate(contents):
        if not isinstance(raw_content, dict):
            raise invalid(f"Invalid value at 'contents[{c_index}]'")
        content = _fields(raw_content, "content", f"contents[{c_index}]")
        if content.get("role", "user") not in ("user", "model"):
            raise invalid(f"Please use a valid role: user, model. Got {content.get('role')!r}")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise invalid(f"* GenerateContentRequest.contents[{c_index}].parts: must not be empty")
        for p_index, raw_part in enumerate(parts):
            where = f"contents[{c_index}].parts[{p_index}]"
            size = _check_part(raw_part, where)
            if size is not None:
                images.append(size)
    if len(images) > spec.max_images:
        raise invalid(
            f"Too many images in the request: {len(images)}. "
            f"{model} takes at most {spec.max_images}."
        )
    config = _fields(body.get("generationConfig") or {}, "generationConfig", "generation_config")
    modalities = config.get("responseModalities", ["TEXT", "IMAGE"])
    if not isinstance(modalities, list) or not set(modalities) <= {"TEXT", "IMAGE"}:
        raise invalid(f"Invalid value at 'generation_config.response_modalities': {modalities!r}")
    if "IMAGE" not in modalities:
        raise invalid("Model does not support the requested response modalities: text")
    if config.get("candidateCount", 1) != 1:
        raise invalid(f"Multiple candidates is not enabled for models/{model}")
    seed = config.get("seed")
    if seed is not None and (
        not isinstance(seed, int) or isinstance(seed, bool) or not -(2**31) <= seed < 2**31
    ):
        raise invalid(f"Invalid value at 'generation_config.seed' (TYPE_INT32), {seed!r}")
    image_config = _fields(config.get("imageConfig") or {}, "imageConfig", "image_config")
    # Without a ratio the model follows the first reference (the nearest ratio it can draw).
    ratio = image_config.get("aspectRatio") or (
        _nearest(images[0], spec.ratios) if images else "1:1"
    )
    if ratio not in spec.ratios:
        raise invalid(f"Unsupported aspect ratio {ratio!r} for {model}.")
    size = image_config.get("imageSize", "1K")
    if size not in spec.sizes:
        raise invalid(f"Unsupported image size {size!r} for {model}.")
    return ratio, size, seed


def _nearest(size: tuple[int, int], ratios: frozenset[str]) -> str:
    def distance(ratio: str) -> float:
        width, height = (int(x) for x in ratio.split(":"))
        return abs(math.log((size[0] / size[1]) / (width / height)))

    return min(sorted(ratios), key=distance)


def _check_part(raw_part: Any, where: str) -> tuple[int, int] | None:
    """One part: text, or an inline picture that decodes. Returns the picture's size."""
    if not isinstance(raw_part, dict):
        raise invalid(f"Invalid value at '{where}'")
    part = _fields(raw_part, "part", where)
    data_kinds = [k for k in ("text", "inlineData", "fileData") if k in part]
    if len(data_kinds) != 1:
        raise invalid(f"Invalid value at '{where}': a part holds exactly one kind of data")
    if "text" in part:
        return None
    if "fileData" in part:
        raise invalid(f"Invalid value at '{where}.file_data': the fake holds no files")
    inline = _fields(part["inlineData"], "inlineData", f"{where}.inline_data")
    mime = inline.get("mimeType")
    if mime not in INPUT_MIMES:
        raise invalid(f"Unsupported MIME type: {mime}")
    encoded = inline.get("data")
    try:
        data = base64.b64decode(encoded if isinstance(encoded, str) else "", validate=True)
    except (binascii.Error, ValueError):
        raise invalid(
            f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), "
            f"Base64 decoding failed for {str(encoded)[:20]!r}"
        ) from None
    if mime not in ("image/png", "image/jpeg", "image/webp"):
        return (1, 1)  # HEIC/HEIF: accepted, not decoded here
    try:
        with Image.open(BytesIO(data), formats=[mime.split("/")[1].upper()]) as image:
            image.load()
            size: tuple[int, int] = image.size
            return size
    except (UnidentifiedImageError, OSError, ValueError):
        raise invalid(
            "Unable to process input image. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        ) from None
