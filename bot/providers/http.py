"""HTTP as every road to the models speaks it: one client shape (named, keeping no cookies,
following no redirect), an end-to-end deadline on every call, answers read within a size bound
(gzip inflated within it too) and parsed off the event loop when large, Retry-After read
sceptically, and httpx's own failures as the error tree of ``bot.core.upstream``.

Nothing here knows a wire format; each provider module does.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import math
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self

import httpx

from bot import __version__
from bot.core.upstream import Unavailable, UpstreamTimeout

USER_AGENT = f"nano-banana-bot/{__version__} (+https://github.com/nano-banana-bot)"
# A JSON answer beyond its pictures: ids, the prompt echoed per image, captcha details. Real ones
# are a few KB; 4 MiB is room for any honest answer, and the bound of every picture-less one.
JSON_OVERHEAD = 4 * 2**20
ERROR_BODY_BYTES = 64 * 1024  # an error's text is clipped to 500 characters anyway
PARSE_IN_THREAD = 2**20  # parsing more JSON than this would hold up the event loop
MAX_RETRY_AFTER = 86_400.0  # longer is no hint but a refusal; ignore it and back off as usual
_ENCODINGS = {"", "identity", "gzip", "x-gzip", "deflate"}


def new_http(*, read: float, connect: float, max_connections: int = 100) -> httpx.AsyncClient:
    """The client for a provider's API: named, keeping no cookies, never following a redirect
    (a 307 would replay the prompt to wherever it points), and asking only for encodings that
    ``read_body`` inflates within its bound (installing brotli must not change that)."""
    return httpx.AsyncClient(
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        },
        timeout=httpx.Timeout(read, connect=connect),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
        cookies=no_cookies(),
    )


def no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that keeps nothing: the key is the only credential, and an upstream's
    cookies would otherwise pile up for the life of the process and go back with every call."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class UpstreamClient:
    """What every provider's client shares: its httpx clients (``_clients``), closed together,
    also on leaving ``async with``."""

    _clients: tuple[httpx.AsyncClient, ...] = ()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


@asynccontextmanager
async def deadline(seconds: float, what: str, *, account: str | None = None) -> AsyncIterator[None]:
    """End-to-end bound: past ``seconds`` the work is cancelled and ``UpstreamTimeout`` raised
    (httpx's read timeout is only the silence between two chunks, which a server trickling a
    byte at a time never reaches)."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{what} took longer than {seconds:g} s", account=account) from exc


@asynccontextmanager
async def transport(what: str, *, account: str | None = None) -> AsyncIterator[None]:
    """httpx's own failures as the error tree: a timeout, or the service out of reach."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"{what} got no answer in time", account=account) from exc
    except (httpx.HTTPError, zlib.error) as exc:
        raise Unavailable(f"{what} failed: {type(exc).__name__}", account=account) from exc


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read within a size bound: status, headers and parsed body."""

    status: int
    headers: httpx.Headers
    body: Any


async def exchange(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    max_bytes: int,
    account: str | None = None,
    **kwargs: Any,
) -> Answer:
    """Send one request; read at most ``max_bytes`` of a 200 (``ERROR_BODY_BYTES`` of any other
    answer, whose text is clipped anyway), inflating gzip within the bound."""
    async with transport(what, account=account), http.stream(method, url, **kwargs) as response:
        limit = max_bytes if response.status_code == 200 else ERROR_BODY_BYTES
        raw, cut = await read_body(response, limit)
    if cut and response.status_code == 200:
        raise Unavailable(f"{what} answered more than {max_bytes} bytes", account=account)
    if 300 <= response.status_code < 400:
        raise Unavailable(
            f"{what} answered a redirect, which the API never does (is the base URL right?)",
            status=response.status_code,
            account=account,
        )
    # Images arrive base64 inside the JSON: parsing megabytes belongs off the event loop.
    body = (
        await asyncio.to_thread(parse_json, raw) if len(raw) > PARSE_IN_THREAD else parse_json(raw)
    )
    return Answer(response.status_code, response.headers, body)


async def read_body(response: httpx.Response, limit: int) -> tuple[bytearray, bool]:
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


def parse_json(raw: bytearray) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested to blow the stack
        return raw[:200].decode("utf-8", "replace") or None


def retry_after(headers: httpx.Headers | dict[str, str]) -> float | None:
    """Retry-After in seconds; a date, a negative, an infinite or an absurd value is no hint."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_AFTER else None
