"""``NbproClient``: the nano-banana-pro.net reseller API over httpx.

The only code that knows this wire format. ``POST /api/ai/nano-banana/generate`` renders one
image synchronously and answers with its URL, which ``fetch`` downloads through
``bot.providers.media`` (only the service's media hosts, bounded, verified). There is no model
parameter: the service renders Nano Banana 2 (its answers say ``"model": "nano-banana-2-4k"``),
no seed, one image per call, so ``count`` images are ``count`` calls at once. References go as
``image`` files of a multipart form; without references the body is JSON. A picture that
breaks the media rules (``bot.providers.media``) is ``MediaRefused``.

    200 with images                      each URL downloaded and verified
    200 with no images                   ModerationError
    400                                  InvalidRequestError
    401, 403                             AuthError (API access needs a paid plan's key)
    402                                  PaymentError (out of credits)
    429                                  Throttled (over the plan's concurrent generations)
    500 "generation failed"              ModerationError (how a filtered render looks here)
    502, 503, 504, other 5xx             Unavailable
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from bot.core.models_table import ModelOffer, ModelTable
from bot.core.providers import (
    ImageRequest,
    Pending,
    ProviderLimits,
    ProviderProfile,
    ReferenceMode,
    Rendering,
    unfit,
)
from bot.core.upstream import (
    AuthError,
    InvalidRequestError,
    ModerationError,
    PaymentError,
    RetryableError,
    Throttled,
    Unavailable,
    UpstreamError,
)
from bot.providers.http import Answer, UpstreamClient, deadline, exchange, new_http, retry_after
from bot.providers.media import MediaHosts, Pictures, new_media_http
from bot.providers.plumbing import Timeouts, fan_out

NAME = "nbpro"
DEFAULT_BASE_URL = "https://nano-banana-pro.net"
ENDPOINT = "/api/ai/nano-banana/generate"
# The docs show storage.example.com; the real storage host is not published. The service's
# own domain is assumed; an operator whose images come from elsewhere names those hosts.
DEFAULT_MEDIA_HOSTS = ("nano-banana-pro.net", "*.nano-banana-pro.net")
MAX_REFERENCE_BYTES = 2_500_000  # "Max image size 2.5MB" on every plan

# API access needs a Standard or Pro plan (Free has none): references 8 / 14, generations at
# once 5 / 10. Prices are plan credits, not published per image.
PLANS: Mapping[str, ProviderLimits] = {
    "standard": ProviderLimits(concurrency=5, references=8),
    "pro": ProviderLimits(concurrency=10, references=14),
}

_BY_STATUS: Mapping[int, type[UpstreamError]] = {
    400: InvalidRequestError,
    401: AuthError,
    403: AuthError,
    402: PaymentError,
    429: Throttled,
    500: ModerationError,
}


class NbproClient(UpstreamClient):
    """nano-banana-pro.net as an ``ImageProvider``; ``async with NbproClient(key) as n: ...``."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        plan: str = "standard",
        models: tuple[ModelOffer, ...] | None = None,
        media_hosts: Iterable[str] = DEFAULT_MEDIA_HOSTS,
        timeouts: Timeouts | None = None,
        max_image_bytes: int = 50 * 2**20,
        max_image_pixels: int = 50_000_000,
    ) -> None:
        limits = PLANS[plan]
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._url = base_url.rstrip("/") + ENDPOINT
        self._timeouts = timeouts or Timeouts()
        self._hosts = MediaHosts(media_hosts, base_url)
        if models is None:
            models = ModelTable.builtin().offers(NAME)
        self._profile = ProviderProfile(
            NAME, ReferenceMode.BYTES, limits, models, MAX_REFERENCE_BYTES
        )
        self._slots = asyncio.Semaphore(limits.concurrency or 1)
        self._http = new_http(read=self._timeouts.request, connect=self._timeouts.connect)
        self._media = new_media_http(read=self._timeouts.download, connect=self._timeouts.connect)
        self._clients = (self._http, self._media)
        self._pictures = Pictures(
            self._media, self._hosts, max_image_bytes, max_image_pixels, self._timeouts.download
        )

    def __repr__(self) -> str:
        return f"NbproClient(url={self._url!r})"

    @property
    def profile(self) -> ProviderProfile:
        return self._profile

    async def generate(self, request: ImageRequest) -> Rendering:
        """``request.count`` images, one call each, at most the plan's concurrency at once."""
        offer = self._profile.offer_for_wire(request.model) or self._profile.models[0]
        reason = unfit(self._profile, offer, request)
        if reason is not None:
            raise InvalidRequestError(reason)

        async def one(index: int) -> Pending:
            async with self._slots:
                answer = await self._post(request)
            return Pending(_first_url(answer))

        async with deadline(self._timeouts.total, "the nano-banana-pro.net render"):
            images, refused = await fan_out(request.count, one)
        if not images:
            raise refused[0]
        return Rendering(
            provider=NAME,
            images=tuple(images),
            withheld=len(refused),
            withheld_reason=refused[0].detail if refused else None,
        )

    async def fetch(self, rendering: Rendering) -> Rendering:
        """Each image from its URL, on the media hosts only, bounded and verified."""
        return await self._pictures.every(rendering, "the nano-banana-pro.net downloads")

    async def check(self) -> str:
        """The key is accepted. The API has no free endpoint, so this sends an empty prompt: a
        valid key gets 400 for it (nothing rendered, nothing charged), a bad one 401."""
        async with deadline(self._timeouts.request, "the nano-banana-pro.net check"):
            answer = await exchange(
                self._http,
                "POST",
                self._url,
                what=f"POST {ENDPOINT}",
                max_bytes=64 * 1024,
                headers=self._auth,
                json={"prompt": ""},
            )
        if answer.status not in (200, 400):
            raise error_for(answer)
        return f"{NAME}: key accepted"

    async def _post(self, request: ImageRequest) -> dict[str, Any]:
        fields = {
            "prompt": request.prompt,
            "size": request.size.lower(),
            "aspectRatio": request.aspect_ratio,
        }
        form: dict[str, Any]
        if request.references:
            files = [
                ("image", (f"reference-{i}.{(r.mime or '/').split('/')[1]}", r.data, r.mime))
                for i, r in enumerate(request.references, 1)
            ]
            form = {"data": fields, "files": files}
        else:
            form = {"json": fields}
        answer = await exchange(
            self._http,
            "POST",
            self._url,
            what=f"POST {ENDPOINT}",
            max_bytes=1024 * 1024,
            headers=self._auth,
            **form,
        )
        if answer.status != 200:
            raise error_for(answer)
        if not isinstance(answer.body, dict):
            raise Unavailable(f"POST {ENDPOINT} answered something other than an object")
        return answer.body


def error_for(answer: Answer) -> UpstreamError:
    """The exception for an error answer ``{"error": "text"}``, by HTTP status."""
    body = answer.body
    error = body.get("error") if isinstance(body, dict) else body
    detail = str(error) if error is not None else f"HTTP {answer.status}"
    kind = _BY_STATUS.get(answer.status) or (
        Unavailable if answer.status >= 500 else InvalidRequestError
    )
    if issubclass(kind, RetryableError):
        return kind(detail, status=answer.status, retry_after=retry_after(answer.headers))
    return kind(detail, status=answer.status)


def _first_url(answer: dict[str, Any]) -> str:
    images = answer.get("images")
    if not isinstance(images, list):
        raise Unavailable(f"POST {ENDPOINT} answered without an images list")
    if not images:
        # A 200 with nothing in it is how a filtered render looks.
        raise ModerationError("the answer carried no images", status=200)
    url = images[0].get("url") if isinstance(images[0], dict) else None
    if not isinstance(url, str) or not url:
        raise Unavailable("an image came back without a URL")
    return url
