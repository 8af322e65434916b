"""``FlowClient``: the useapi.net Google Flow API over one shared ``httpx.AsyncClient``.

Implements ``bot.core.upstream.Upstream``. Every answer shape the API has used is parsed into one
``Generation``; every error status becomes one exception of the tree in ``bot.core.upstream``.
The token travels only in the Authorization header of API calls: signed image URLs are fetched
without it, and nothing here logs headers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from bot import __version__
from bot.core.images import sniff_mime
from bot.core.upstream import (
    Account,
    AccountNotFound,
    AuthError,
    CaptchaFailed,
    ContentPolicyError,
    GeneratedImage,
    GenerateParams,
    Generation,
    InvalidRequestError,
    ModerationError,
    PaymentError,
    ReferenceOwnershipError,
    SessionExpired,
    Throttled,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)

DEFAULT_BASE_URL = "https://api.useapi.net/v1/google-flow"
USER_AGENT = f"nano-banana-bot/{__version__} (+https://github.com/nano-banana-bot)"
UNSAFE_REASON = "PUBLIC_ERROR_UNSAFE_GENERATION"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowTimeouts:
    """Seconds. A generation blocks 10–20 s and sometimes minutes, so it gets its own bound."""

    connect: float = 10.0
    generate: float = 300.0
    upload: float = 120.0
    other: float = 60.0


class FlowClient:
    """Client for the Google Flow API; use as ``async with FlowClient(token) as flow: ...``."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeouts: FlowTimeouts | None = None,
        max_image_bytes: int = 64 * 1024 * 1024,
        max_connections: int = 200,
    ) -> None:
        self._auth = {"Authorization": f"Bearer {token}"}
        self._base = base_url.rstrip("/")
        self._timeouts = timeouts or FlowTimeouts()
        self._max_image_bytes = max_image_bytes
        self._http = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(self._timeouts.other, connect=self._timeouts.connect),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=True,
        )

    def __repr__(self) -> str:
        return f"FlowClient(base_url={self._base!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def list_accounts(self) -> list[Account]:
        body = await self._call("GET", "/accounts")
        if not isinstance(body, dict):
            raise Unavailable("GET /accounts answered something other than an object")
        accounts = []
        for email, info in body.items():
            health = str(info.get("health", "OK")) if isinstance(info, dict) else "OK"
            accounts.append(Account(email=email, healthy=health == "OK", health=health))
        return accounts

    async def upload_asset(self, email: str, data: bytes, mime: str) -> str:
        body = await self._call(
            "POST",
            f"/assets/{quote(email, safe='')}",
            content=data,
            headers={"Content-Type": mime},
            read_timeout=self._timeouts.upload,
            account=email,
        )
        media_id = _media_id(body.get("mediaGenerationId") if isinstance(body, dict) else None)
        if media_id is None:
            raise Unavailable("POST /assets answered without a mediaGenerationId", account=email)
        return media_id

    async def generate(self, params: GenerateParams) -> Generation:
        payload: dict[str, Any] = {
            "prompt": params.prompt,
            "model": params.model,
            "aspectRatio": params.aspect_ratio,
            "count": params.count,
            "seed": params.seed,
            "email": params.email,
        }
        payload.update({f"reference_{i}": ref for i, ref in enumerate(params.references, 1)})
        payload.update({f"character_{i}": c for i, c in enumerate(params.characters, 1)})
        body = await self._call(
            "POST",
            "/images",
            json=payload,
            read_timeout=self._timeouts.generate,
            account=params.email,
        )
        if not isinstance(body, dict):
            raise Unavailable(
                "POST /images answered something other than an object", account=params.email
            )
        entries = _image_entries(body)
        if entries is None:
            raise Unavailable(
                "POST /images answered without media or imagePanels", account=params.email
            )
        images = await asyncio.gather(*(self._image(entry, params.email) for entry in entries))
        if not images:
            # A 200 with nothing in it is how moderation of every candidate looks.
            raise ModerationError("the answer carried no images", status=200, account=params.email)
        job_id = body.get("jobId")
        return Generation(
            account=params.email,
            images=tuple(images),
            job_id=job_id if isinstance(job_id, str) else None,
        )

    async def upscale(self, media_id: str, resolution: str, *, email: str) -> bytes:
        body = await self._call(
            "POST",
            "/images/upscale",
            json={"mediaGenerationId": media_id, "resolution": resolution, "email": email},
            read_timeout=self._timeouts.generate,
            account=email,
        )
        encoded = body.get("encodedImage") if isinstance(body, dict) else None
        if not isinstance(encoded, str):
            raise Unavailable("POST /images/upscale answered without encodedImage", account=email)
        return _b64(encoded, email)

    async def create_character(self, email: str, references: Sequence[str], name: str) -> str:
        payload: dict[str, Any] = {"email": email, "name": name}
        payload.update({f"reference_{i}": ref for i, ref in enumerate(references, 1)})
        body = await self._call("POST", "/characters", json=payload, account=email)
        if isinstance(body, dict):
            for key in ("characterId", "character_id", "mediaGenerationId", "id"):
                found = _media_id(body.get(key))
                if found:
                    return found
        raise Unavailable("POST /characters answered without a character id", account=email)

    async def _image(self, entry: dict[str, Any], email: str) -> GeneratedImage:
        media_id = _media_id(entry.get("mediaGenerationId"))
        if media_id is None:
            raise Unavailable("an image came back without a mediaGenerationId", account=email)
        seed = entry.get("seed")
        if isinstance(entry.get("encodedImage"), str):
            data = _b64(entry["encodedImage"], email)
        elif isinstance(entry.get("fifeUrl"), str):
            data = await self._download(entry["fifeUrl"], email)
        else:
            raise Unavailable(
                "an image came back with neither fifeUrl nor encodedImage", account=email
            )
        return GeneratedImage(
            data=data,
            media_id=media_id,
            seed=seed if isinstance(seed, int) else None,
            mime=sniff_mime(data),
        )

    async def _download(self, url: str, email: str) -> bytes:
        """Fetch a signed image URL at once (it expires), streamed and bounded in size."""
        chunks: list[bytes] = []
        size = 0
        try:
            # No Authorization here: the URL is signed and belongs to another host.
            async with self._http.stream("GET", url, headers={"Accept": "image/*"}) as response:
                if response.status_code != 200:
                    raise Unavailable(
                        f"image download answered {response.status_code}", account=email
                    )
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_image_bytes:
                        raise Unavailable("image download is larger than allowed", account=email)
                    chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("image download timed out", account=email) from exc
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"image download failed: {type(exc).__name__}", account=email
            ) from exc
        return b"".join(chunks)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        account: str | None = None,
        read_timeout: float | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        started = time.monotonic()
        request_timeout = httpx.Timeout(
            read_timeout or self._timeouts.other, connect=self._timeouts.connect
        )
        try:
            response = await self._http.request(
                method,
                self._base + path,
                headers={**self._auth, **(headers or {})},
                timeout=request_timeout,
                **kwargs,
            )
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"{method} {_route(path)} got no answer in time", account=account
            ) from exc
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"{method} {_route(path)} failed: {type(exc).__name__}", account=account
            ) from exc
        log.debug(
            "%s %s → %d in %.2fs",
            method,
            _route(path),
            response.status_code,
            time.monotonic() - started,
        )
        body = _json(response)
        if response.status_code != 200:
            raise error_for(response.status_code, body, response.headers, account)
        return body


def error_for(
    status: int, body: Any, headers: httpx.Headers | dict[str, str], account: str | None
) -> UpstreamError:
    """The exception for an error answer (see the tree in ``bot.core.upstream``)."""
    text, reasons = _error_text(body)
    if status == 400:
        if UNSAFE_REASON in reasons or UNSAFE_REASON in text:
            return ContentPolicyError(text, status=status, account=account)
        return InvalidRequestError(text, status=status, account=account)
    if status == 401:
        return AuthError(text, status=status, account=account)
    if status == 402:
        return PaymentError(text, status=status, account=account)
    if status == 403:
        if text.lower().startswith("captcha"):
            return CaptchaFailed(text, status=status, account=account)
        return ReferenceOwnershipError(text, status=status, account=account)
    if status == 404:
        return AccountNotFound(text, status=status, account=account)
    if status == 429:
        return Throttled(text, status=status, account=account, retry_after=_retry_after(headers))
    if status == 500:
        return ModerationError(text, status=status, account=account)
    if status == 596:
        return SessionExpired(text, status=status, account=account)
    if status >= 500:
        return Unavailable(text, status=status, account=account, retry_after=_retry_after(headers))
    return InvalidRequestError(text, status=status, account=account)


def _error_text(body: Any) -> tuple[str, set[str]]:
    """Both error forms: ``{"error": "text"}`` (useapi) and ``{"error": {...}}`` (Google)."""
    error = body.get("error") if isinstance(body, dict) else body
    if isinstance(error, str):
        return error, set()
    if isinstance(error, dict):
        reasons = {
            str(d.get("reason"))
            for d in error.get("details") or []
            if isinstance(d, dict) and d.get("reason")
        }
        message = str(error.get("message") or error.get("status") or "")
        return (f"{message} ({', '.join(sorted(reasons))})" if reasons else message), reasons
    return ("" if body is None else str(body)[:200]), set()


def _retry_after(headers: httpx.Headers | dict[str, str]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:200] or None


def _image_entries(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Image records from either answer shape, normalised to one flat dict each."""
    if isinstance(body.get("media"), list):
        out = []
        for item in body["media"]:
            image = item.get("image") if isinstance(item, dict) else None
            generated = image.get("generatedImage") if isinstance(image, dict) else None
            if not isinstance(generated, dict):
                return None  # a shape we don't know: say so rather than drop images silently
            out.append(generated)
        return out
    if isinstance(body.get("imagePanels"), list):
        return [
            image
            for panel in body["imagePanels"]
            if isinstance(panel, dict)
            for image in panel.get("generatedImages") or []
            if isinstance(image, dict)
        ]
    return None


def _media_id(value: Any) -> str | None:
    """Ids come flat (new answers) or nested one level (uploads and old answers)."""
    if isinstance(value, dict):
        value = value.get("mediaGenerationId")
    return value if isinstance(value, str) and value else None


def _b64(encoded: str, account: str | None) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unavailable("an image came back with broken base64", account=account) from exc


def _route(path: str) -> str:
    """A path fit for logs: account e-mails in it are masked."""
    if path.startswith("/assets/"):
        return "/assets/…"
    return path
