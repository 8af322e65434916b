"""``GeminiClient``: the official Gemini API (``generateContent`` with image output) over httpx.

The only code that knows this wire format. One call returns one image, so ``count`` images are
``count`` calls at once (``seed + i`` each). References go inline as base64 ``inlineData``. The key
travels only in the ``x-goog-api-key`` header, never in a URL (where logs would keep it).

What comes back, and what it becomes (``bot.core.upstream``):

    a candidate with a non-thought inlineData image    the image (bounded in bytes and pixels,
                                                       a whole PNG, JPEG or WebP: else
                                                       MediaRefused; bad base64: Unavailable)
    aspect ratio "auto"                                no aspectRatio sent: the model follows
                                                       the references
    promptFeedback.blockReason (any)                   ContentPolicyError: the prompt is refused
    finishReason PROHIBITED_CONTENT, IMAGE_PROHIBITED_CONTENT, BLOCKLIST, SPII
                                                       ContentPolicyError
    finishReason IMAGE_SAFETY, SAFETY, RECITATION, IMAGE_RECITATION, NO_IMAGE, IMAGE_OTHER,
    OTHER, or STOP with text only; no candidates      ModerationError: withheld, may pass again
    400 with reason API_KEY_INVALID, 401, 403          AuthError
    400 FAILED_PRECONDITION (billing, region)          PaymentError
    400 otherwise                                      InvalidRequestError
    404 (model retired or not enabled)                 ModelUnavailable
    429 over a per-day quota                           QuotaExhausted
    429 whose quota limit is 0 (no paid tier)          PaymentError
    429 otherwise                                      Throttled, retry_after from RetryInfo
    500, 503, other 5xx                                Unavailable (503: overloaded)
    504 DEADLINE_EXCEEDED                              UpstreamTimeout
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from bot.core.models_table import AUTO, ModelOffer, ModelTable
from bot.core.providers import (
    ImageRequest,
    ProviderLimits,
    ProviderProfile,
    Reference,
    ReferenceMode,
    RenderedImage,
    Rendering,
    unfit,
)
from bot.core.upstream import (
    AuthError,
    ContentPolicyError,
    InvalidRequestError,
    MediaRefused,
    ModelUnavailable,
    ModerationError,
    PaymentError,
    QuotaExhausted,
    RetryableError,
    Throttled,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from bot.providers.http import (
    JSON_OVERHEAD,
    MAX_RETRY_AFTER,
    Answer,
    UpstreamClient,
    deadline,
    exchange,
    new_http,
    retry_after,
)
from bot.providers.media import base64_length, verified_mime
from bot.providers.plumbing import Timeouts, fan_out

NAME = "gemini"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
# Per inline picture, and per request (base64 included) before the Files API would be needed.
MAX_REFERENCE_BYTES = 7 * 1024 * 1024
MAX_REQUEST_BYTES = 20 * 1024 * 1024
SEED_RANGE = 2**31  # generationConfig.seed is an int32

# Limits are per Google Cloud project and tier, shown only in AI Studio: set yours.
DEFAULT_LIMITS = ProviderLimits(concurrency=8, requests_per_minute=20)

POLICY_BLOCKS = frozenset({"PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII"})
_BY_STATUS: Mapping[int, type[UpstreamError]] = {
    400: InvalidRequestError,
    401: AuthError,
    403: AuthError,
    404: ModelUnavailable,
    429: Throttled,
    500: Unavailable,
    503: Unavailable,
    504: UpstreamTimeout,
}
_BY_REASON: Mapping[str, type[UpstreamError]] = {"API_KEY_INVALID": AuthError}
_BY_GOOGLE_STATUS: Mapping[str, type[UpstreamError]] = {"FAILED_PRECONDITION": PaymentError}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


class GeminiClient(UpstreamClient):
    """The Gemini API as an ``ImageProvider``; use as ``async with GeminiClient(key) as g: ...``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeouts: Timeouts | None = None,
        limits: ProviderLimits = DEFAULT_LIMITS,
        models: tuple[ModelOffer, ...] | None = None,
        max_image_bytes: int = 50 * 2**20,
        max_image_pixels: int = 50_000_000,
    ) -> None:
        self._key = {"x-goog-api-key": api_key}
        self._base = f"{base_url.rstrip('/')}/{API_VERSION}"
        self._timeouts = timeouts or Timeouts()
        self._max_image_bytes = max_image_bytes
        self._max_image_pixels = max_image_pixels
        # One picture per answer, and at most two thinking drafts before it.
        self._max_answer_bytes = JSON_OVERHEAD + 3 * base64_length(max_image_bytes)
        if models is None:
            models = ModelTable.builtin().offers(NAME)
        self._profile = ProviderProfile(
            NAME, ReferenceMode.BYTES, limits, models, MAX_REFERENCE_BYTES
        )
        self._slots = asyncio.Semaphore(limits.concurrency or 1_000_000)
        self._http = new_http(read=self._timeouts.request, connect=self._timeouts.connect)
        self._clients = (self._http,)

    def __repr__(self) -> str:
        return f"GeminiClient(base_url={self._base!r})"

    @property
    def profile(self) -> ProviderProfile:
        return self._profile

    async def generate(self, request: ImageRequest) -> Rendering:
        """``request.count`` images, one call each, all at once."""
        self._refuse_unfit(request)
        parts = [{"text": request.prompt}, *map(_inline, request.references)]
        sized = self._sends_size(request.model)
        traces: list[str] = []

        async def one(index: int) -> RenderedImage:
            seed = None if request.seed is None else (request.seed + index) % SEED_RANGE
            config: dict[str, Any] = {"responseModalities": ["IMAGE"], "imageConfig": {}}
            # Without aspectRatio the model follows the references' ratio: that is "auto".
            if request.aspect_ratio != AUTO:
                config["imageConfig"]["aspectRatio"] = request.aspect_ratio
            if sized:
                config["imageConfig"]["imageSize"] = request.size
            if seed is not None:
                config["seed"] = seed
            if not config["imageConfig"]:
                del config["imageConfig"]
            body = {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}
            answer = await self._call(
                "POST", f"/models/{_path(request.model)}:generateContent", body
            )
            if isinstance(answer.get("responseId"), str):
                traces.append(answer["responseId"])
            data, mime = await self._image(answer)
            return RenderedImage(data=data, mime=mime, seed=seed)

        async with deadline(self._timeouts.total, "the Gemini render"):
            images, refused = await fan_out(request.count, one)
        if not images:
            raise refused[0]
        return Rendering(
            provider=NAME,
            images=tuple(images),
            withheld=len(refused),
            withheld_reason=refused[0].detail if refused else None,
            trace=tuple(traces),
        )

    async def fetch(self, rendering: Rendering) -> Rendering:
        """Nothing to fetch: the pictures came inline, decoded and verified with the answer."""
        return rendering

    async def check(self) -> str:
        """The key works and every offered model is there (``GET /models/{id}`` costs nothing)."""
        async with deadline(self._timeouts.total, "the Gemini check"):
            for offer in self._profile.models:
                await self._call("GET", f"/models/{_path(offer.provider_model)}")
        names = ", ".join(o.provider_model for o in self._profile.models)
        return f"{NAME}: key accepted; {names} available"

    def _refuse_unfit(self, request: ImageRequest) -> None:
        """Bad input is refused here, with no upstream call."""
        offer = self._profile.offer_for_wire(request.model)
        reason = unfit(self._profile, offer, request) if offer else None
        if reason is None and any(r.data is None for r in request.references):
            reason = f"{NAME} needs the reference pictures themselves"
        inline = sum(len(r.data or b"") for r in request.references) * 4 // 3
        if reason is None and inline > MAX_REQUEST_BYTES - 64 * 1024:
            reason = f"{NAME} takes at most {MAX_REQUEST_BYTES // 2**20} MB of references at once"
        if reason is not None:
            raise InvalidRequestError(reason)

    def _sends_size(self, model: str) -> bool:
        """Models with one size (2.5 Flash Image: 1K) are not told a size they cannot change."""
        offer = self._profile.offer_for_wire(model)
        return offer is None or len(offer.sizes) > 1

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        async with self._slots:
            answer = await exchange(
                self._http,
                method,
                self._base + path,
                what=f"{method} {path}",
                max_bytes=self._max_answer_bytes,
                headers=self._key,
                json=body,
            )
        if answer.status != 200:
            raise error_for(answer)
        if not isinstance(answer.body, dict):
            raise Unavailable(f"{method} {path} answered something other than an object")
        return answer.body

    async def _image(self, answer: dict[str, Any]) -> tuple[bytes, str]:
        """The final picture of the first candidate, or the refusal that took its place."""
        feedback = answer.get("promptFeedback")
        block = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if block:
            raise ContentPolicyError(f"the prompt was blocked ({block})", status=200)
        candidates = answer.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            raise ModerationError("the answer carried no candidates", status=200)
        candidate = candidates[0] if isinstance(candidates[0], dict) else {}
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        parts = [p for p in parts or [] if isinstance(p, dict) and not p.get("thought")]
        pictures = [p["inlineData"] for p in parts if isinstance(p.get("inlineData"), dict)]
        if not pictures:
            reason = candidate.get("finishReason") or "none"
            said = " ".join(str(p["text"]) for p in parts if isinstance(p.get("text"), str))
            detail = f"no image (finishReason {reason})" + (f": {said[:200]}" if said else "")
            kind = ContentPolicyError if reason in POLICY_BLOCKS else ModerationError
            raise kind(detail, status=200)
        # Thinking models may draw drafts first; the last picture is the rendered one.
        encoded = pictures[-1].get("data")
        return await asyncio.to_thread(self._inline, encoded if isinstance(encoded, str) else "")

    def _inline(self, encoded: str) -> tuple[bytes, str]:
        """A base64 picture, bounded before it is decoded; CPU-bound (run it in a thread)."""
        if len(encoded) > base64_length(self._max_image_bytes):
            raise MediaRefused(f"an inline image is larger than {self._max_image_bytes} bytes")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Unavailable("an image came back with broken base64") from exc
        return data, verified_mime(data, max_pixels=self._max_image_pixels, account=None)


def error_for(answer: Answer) -> UpstreamError:
    """The exception for an error answer, from Google's ``{"error": {code, message, status,
    details}}``: the reason, then the status name, then the HTTP status decide."""
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    error = error if isinstance(error, dict) else {}
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    reasons = {str(d["reason"]) for d in details if d.get("reason")}
    google_status = str(error.get("status") or "")
    message = str(error.get("message") or google_status or answer.body or "")
    detail = f"{message} ({', '.join(sorted(reasons))})" if reasons else message
    kind = (
        next((_BY_REASON[r] for r in sorted(reasons) if r in _BY_REASON), None)
        or _BY_GOOGLE_STATUS.get(google_status)
        or (_quota_kind(details, message) if answer.status == 429 else None)
        or _BY_STATUS.get(answer.status)
        or (Unavailable if answer.status >= 500 else InvalidRequestError)
    )
    if issubclass(kind, RetryableError):
        wait = _retry_delay(details)
        if wait is None:
            wait = retry_after(answer.headers)
        return kind(detail, status=answer.status, retry_after=wait)
    return kind(detail, status=answer.status)


def _quota_kind(details: list[dict[str, Any]], message: str) -> type[UpstreamError] | None:
    """A 429 is a per-minute rate (Throttled), a used-up day, or a model the tier cannot use."""
    quota_ids = [
        str(v.get("quotaId", ""))
        for d in details
        for v in d.get("violations") or []
        if isinstance(v, dict)
    ]
    if "limit: 0" in message:
        return PaymentError
    if any("PerDay" in q for q in quota_ids):
        return QuotaExhausted
    return None


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """google.rpc.RetryInfo's ``retryDelay`` ("41s", "0.5s") in seconds; past a day, no hint."""
    for item in details:
        match = _DURATION.match(str(item.get("retryDelay", ""))[:40])
        if match and float(match.group(1)) <= MAX_RETRY_AFTER:
            return float(match.group(1))
    return None


def _inline(reference: Reference) -> dict[str, Any]:
    return {
        "inlineData": {
            "mimeType": reference.mime,
            "data": base64.b64encode(reference.data or b"").decode("ascii"),
        }
    }


def _path(model: str) -> str:
    return quote(model, safe="")
