"""``FlowClient``: the useapi.net Google Flow API over ``httpx``.

Implements ``bot.core.upstream.Upstream``. Every answer shape the API has used is parsed into one
``Generation``; every error status becomes one exception of the tree in ``bot.core.upstream``.
The token travels only in the Authorization header of API calls, which follow no redirect: media
links are fetched by a second client without it, from the media hosts only (``bot.flow.media``).
Everything the upstream sends is bounded before it is parsed: each call has an end-to-end
deadline, each body a size, each picture a size and a pixel count, and it must be a picture.
Nothing here logs headers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http.cookiejar
import json
import logging
import math
import re
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from bot import __version__
from bot.core.models_table import MAX_SEED
from bot.core.policy import Tuning
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
    MediaRefused,
    ModerationError,
    PaymentError,
    ReferenceOwnershipError,
    SessionExpired,
    Throttled,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from bot.flow.media import DEFAULT_MEDIA_HOSTS, MediaHosts, base64_length, verified_mime

DEFAULT_BASE_URL = "https://api.useapi.net/v1/google-flow"
USER_AGENT = f"nano-banana-bot/{__version__} (+https://github.com/nano-banana-bot)"
UNSAFE_REASON = "PUBLIC_ERROR_UNSAFE_GENERATION"

MAX_REDIRECTS = 3  # per media link; each hop obeys the same rules as the link
# A JSON answer beyond its pictures: ids, the prompt echoed per image, captcha details. Real ones
# are a few KB; 4 MiB is room for any honest answer, and the bound of every picture-less one.
JSON_OVERHEAD = 4 * 2**20
# The API's own bound on an image (uploads, 20 MB). POST /images answers carry 1K–2K pictures
# (4K comes only from upscale), so inline ones get this much each: 4 of them ≈ 111 MiB of JSON.
INLINE_IMAGE_BYTES = 20 * 2**20
ERROR_BODY_BYTES = 64 * 1024  # an error's text is clipped to 500 characters anyway
PARSE_IN_THREAD = 2**20  # parsing more JSON than this would hold up the event loop
MAX_RETRY_AFTER = 86_400.0  # longer is no hint but a refusal; ignore it and back off as usual
# Generation and asset ids: printable ASCII, no spaces or control characters (they end up in
# logs and the store), and no longer than an e-mail in hex could make them.
_MEDIA_ID = re.compile(r"[!-~]{1,2048}")
_ACCOUNT = re.compile(r"[!-~]{1,320}")  # an e-mail address: at most 320 characters
_ENCODINGS = {"", "identity", "gzip", "x-gzip", "deflate"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowTimeouts:
    """Seconds; each is the end-to-end bound of one call: request, answer and any downloads.

    A generation blocks 10–20 s and sometimes minutes, so it (and upscale) gets its own bound;
    ``connect`` bounds establishing each connection within that.
    """

    connect: float = 10.0
    generate: float = Tuning.generation_timeout_seconds
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
        media_hosts: Iterable[str] = DEFAULT_MEDIA_HOSTS,
        max_image_bytes: int = 50 * 2**20,
        max_image_pixels: int = 50_000_000,
        max_connections: int = 200,
    ) -> None:
        """``max_image_bytes`` bounds every picture: 50 MiB is what Telegram takes as a document,
        the largest anything here can deliver; a 4K upscale is far below both bounds."""
        self._auth = {"Authorization": f"Bearer {token}"}
        self._base = base_url.rstrip("/")
        self._timeouts = timeouts or FlowTimeouts()
        self._hosts = MediaHosts(media_hosts, self._base)
        self._max_image_bytes = max_image_bytes
        self._max_image_pixels = max_image_pixels
        timeout = httpx.Timeout(self._timeouts.other, connect=self._timeouts.connect)
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        # No redirects: a 307 would replay the prompt to wherever it points. Only encodings
        # that _read_body inflates within its bound (installing brotli must not change that).
        self._http = httpx.AsyncClient(
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
            },
            timeout=timeout,
            limits=limits,
            follow_redirects=False,
            cookies=_no_cookies(),
        )
        # Media links are followed by hand (each hop checked) and fetched directly: through a
        # proxy from the environment, the address checked would not be the address reached.
        # No connection is reused: pooled by the pinned address, a connection whose certificate
        # was checked for one host name would carry the request for another.
        self._media = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
            follow_redirects=False,
            trust_env=False,
            cookies=_no_cookies(),
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
        await self._media.aclose()

    async def list_accounts(self) -> list[Account]:
        async with self._deadline(self._timeouts.other, "GET /accounts", None):
            body = await self._call("GET", "/accounts", bound=self._timeouts.other)
        if not isinstance(body, dict):
            raise Unavailable("GET /accounts answered something other than an object")
        accounts = []
        for email, info in body.items():
            if not _ACCOUNT.fullmatch(email):  # it goes into URLs, the store and logs
                log.warning("GET /accounts listed an account name that can't be one; skipped")
                continue
            health = str(info.get("health", "OK"))[:100] if isinstance(info, dict) else "OK"
            accounts.append(Account(email=email, healthy=health == "OK", health=health))
        return accounts

    async def upload_asset(self, email: str, data: bytes, mime: str) -> str:
        async with self._deadline(self._timeouts.upload, "POST /assets", email):
            body = await self._call(
                "POST",
                f"/assets/{quote(email, safe='')}",
                content=data,
                headers={"Content-Type": mime},
                bound=self._timeouts.upload,
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
        inline = base64_length(min(self._max_image_bytes, INLINE_IMAGE_BYTES))
        async with self._deadline(self._timeouts.generate, "POST /images", params.email):
            body = await self._call(
                "POST",
                "/images",
                json=payload,
                bound=self._timeouts.generate,
                account=params.email,
                max_bytes=JSON_OVERHEAD + params.count * inline,
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
            if len(entries) > params.count:
                # One entry per image, as asked: never fetch (or charge for) what wasn't.
                raise Unavailable(
                    f"POST /images answered {len(entries)} images for a count of {params.count}",
                    account=params.email,
                )
            images = await self._images(entries, params.email)
        if not images:
            # A 200 with nothing in it is how moderation of every candidate looks.
            raise ModerationError("the answer carried no images", status=200, account=params.email)
        return Generation(
            account=params.email,
            images=tuple(images),
            job_id=_media_id(body.get("jobId")),
        )

    async def upscale(self, media_id: str, resolution: str, *, email: str) -> bytes:
        async with self._deadline(self._timeouts.generate, "POST /images/upscale", email):
            body = await self._call(
                "POST",
                "/images/upscale",
                json={"mediaGenerationId": media_id, "resolution": resolution, "email": email},
                bound=self._timeouts.generate,
                account=email,
                max_bytes=JSON_OVERHEAD + base64_length(self._max_image_bytes),
            )
            encoded = body.get("encodedImage") if isinstance(body, dict) else None
            if not isinstance(encoded, str):
                raise Unavailable(
                    "POST /images/upscale answered without encodedImage", account=email
                )
            data, _ = await asyncio.to_thread(self._inline, encoded, email)
        return data

    async def create_character(self, email: str, references: Sequence[str], name: str) -> str:
        payload: dict[str, Any] = {"email": email, "name": name}
        payload.update({f"reference_{i}": ref for i, ref in enumerate(references, 1)})
        async with self._deadline(self._timeouts.other, "POST /characters", email):
            body = await self._call(
                "POST", "/characters", json=payload, bound=self._timeouts.other, account=email
            )
        if isinstance(body, dict):
            for key in ("characterId", "character_id", "mediaGenerationId", "id"):
                found = _media_id(body.get(key))
                if found:
                    return found
        raise Unavailable("POST /characters answered without a character id", account=email)

    @asynccontextmanager
    async def _deadline(
        self, seconds: float, call: str, account: str | None
    ) -> AsyncIterator[None]:
        """End the call at ``seconds`` whatever it is doing: httpx's read timeout is only the
        silence between two chunks, which a server trickling a byte at a time never reaches."""
        try:
            async with asyncio.timeout(seconds):
                yield
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{call} took longer than {seconds:g} s end to end", account=account
            ) from exc

    async def _images(self, entries: list[dict[str, Any]], email: str) -> list[GeneratedImage]:
        """Every image at once; the first failure stops the rest (no download outlives its call)."""
        if not entries:
            return []
        tasks = [asyncio.ensure_future(self._image(entry, email)) for entry in entries]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        for task in tasks:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure
        return [task.result() for task in tasks]

    async def _image(self, entry: dict[str, Any], email: str) -> GeneratedImage:
        media_id = _media_id(entry.get("mediaGenerationId"))
        if media_id is None:
            raise Unavailable(
                "an image came back without a usable mediaGenerationId", account=email
            )
        seed = entry.get("seed")
        if isinstance(entry.get("encodedImage"), str):
            data, mime = await asyncio.to_thread(self._inline, entry["encodedImage"], email)
        elif isinstance(entry.get("fifeUrl"), str):
            data = await self._download(entry["fifeUrl"], email)
            mime = await asyncio.to_thread(
                verified_mime, data, max_pixels=self._max_image_pixels, account=email
            )
        else:
            raise Unavailable(
                "an image came back with neither fifeUrl nor encodedImage", account=email
            )
        plausible = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED
        return GeneratedImage(
            data=data, media_id=media_id, seed=seed if plausible else None, mime=mime
        )

    def _inline(self, encoded: str, email: str) -> tuple[bytes, str]:
        """A base64 picture, bounded before it is decoded; CPU-bound (run it in a thread)."""
        if len(encoded) > base64_length(self._max_image_bytes):
            raise MediaRefused(
                f"an inline image is larger than {self._max_image_bytes} bytes", account=email
            )
        data = _b64(encoded, email)
        return data, verified_mime(data, max_pixels=self._max_image_pixels, account=email)

    async def _download(self, link: str, email: str) -> bytes:
        """Fetch a signed media link at once (it expires), by its rules, bounded in size."""
        try:
            url = httpx.URL(link)
            for _ in range(MAX_REDIRECTS + 1):
                hop = await self._hosts.hop(url, account=email)
                # No Authorization here: the token is for the API alone.
                async with self._media.stream(
                    "GET", hop.url, headers=hop.headers, extensions=hop.extensions
                ) as response:
                    if response.is_redirect:
                        url = url.join(response.headers["Location"])
                        continue
                    if response.status_code != 200:
                        raise Unavailable(
                            f"image download answered {response.status_code}", account=email
                        )
                    data, cut = await _read_body(response, self._max_image_bytes)
                if cut:
                    raise MediaRefused(
                        f"an image download is larger than {self._max_image_bytes} bytes",
                        account=email,
                    )
                return bytes(data)
        except httpx.InvalidURL as exc:
            raise MediaRefused("a media link is not a valid URL", account=email) from exc
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("image download timed out", account=email) from exc
        except (httpx.HTTPError, zlib.error) as exc:
            raise Unavailable(
                f"image download failed: {type(exc).__name__}", account=email
            ) from exc
        raise MediaRefused(
            f"a media link redirected more than {MAX_REDIRECTS} times", account=email
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        bound: float,
        account: str | None = None,
        max_bytes: int = JSON_OVERHEAD,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        started = time.monotonic()
        route = _route(path)
        try:
            async with self._http.stream(
                method,
                self._base + path,
                headers={**self._auth, **(headers or {})},
                timeout=httpx.Timeout(bound, connect=self._timeouts.connect),
                **kwargs,
            ) as response:
                status = response.status_code
                limit = max_bytes if status == 200 else ERROR_BODY_BYTES
                raw, cut = await _read_body(response, limit)
                headers_in = response.headers
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(
                f"{method} {route} got no answer in time", account=account
            ) from exc
        except (httpx.HTTPError, zlib.error) as exc:
            raise Unavailable(
                f"{method} {route} failed: {type(exc).__name__}", account=account
            ) from exc
        log.debug("%s %s → %d in %.2fs", method, route, status, time.monotonic() - started)
        if 300 <= status < 400:
            raise Unavailable(
                f"{method} {route} answered a redirect, which the API never does "
                "(is USEAPI_BASE_URL right?)",
                status=status,
                account=account,
            )
        if cut and status == 200:
            raise Unavailable(
                f"{method} {route} answered more than {max_bytes} bytes", account=account
            )
        body = await asyncio.to_thread(_json, raw) if len(raw) > PARSE_IN_THREAD else _json(raw)
        if status != 200:
            raise error_for(status, body, headers_in, account)
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


def _no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that keeps nothing: the token is the only credential, and an upstream's
    cookies would otherwise pile up for the life of the process and go back with every call."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _retry_after(headers: httpx.Headers | dict[str, str]) -> float | None:
    """Retry-After in seconds; a date, a negative, an infinite or an absurd value is no hint."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_AFTER else None


async def _read_body(response: httpx.Response, limit: int) -> tuple[bytearray, bool]:
    """At most ``limit`` bytes of the decoded body, and whether there was more.

    gzip and deflate are inflated here, never past the bound, rather than by httpx, which
    inflates each chunk whole: one 64 KiB chunk of a gzip bomb is 64 MiB, of "gzip, gzip" more
    than the machine has. The body is grown in place and never copied.
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        raise httpx.DecodingError(f"unsupported Content-Encoding {encoding[:40]!r}")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding not in ("", "identity") else None
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk if inflater is None else inflater.decompress(chunk, limit + 1 - len(body))
        if len(body) > limit:
            del body[limit:]
            return body, True
    return body, False


def _json(raw: bytearray) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested to blow the stack
        return raw[:200].decode("utf-8", "replace") or None


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
    return value if isinstance(value, str) and _MEDIA_ID.fullmatch(value) else None


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
