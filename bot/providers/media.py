"""Media from the upstream: where the bot may fetch it from, how, and what it accepts as a
picture. Every road's image links go through here (Flow's ``fifeUrl``s, nano-banana-pro.net's and
Wireflow's result URLs).

A link is fetched only from a listed media host, over https, at an address on the public
internet, and the connection goes to the very address that was checked (a second DNS answer
can't move it: no rebinding); every redirect hop is checked the same way; a connection is kept
for later links only of the host name it was verified for, at the address it went to
(``media_pools``); no credentials and no cookies go along. The API's own origin is trusted as
it is, which also lets tests serve media from the local fakes. A download is bounded in bytes
before it is read and in pixels before it is decoded, within a deadline; a picture is accepted
only as a whole PNG, JPEG or WebP within the bounds, judged by its content, never by a header
or a file name.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from bot.core.providers import Pending, RenderedImage, Rendering
from bot.core.upstream import MediaRefused, Unavailable, UpstreamTimeout
from bot.providers.http import USER_AGENT, deadline, no_cookies, read_body
from bot.providers.media_pools import MediaTransport
from bot.providers.plumbing import fetched

# storage.googleapis.com: the documented home of fifeUrl links (June 2026 guide).
# flow-content.google: where live answers point since (seen in September 2026).
# *.googleusercontent.com: Google's image-serving (FIFE) hosts, where Flow's media may move next.
DEFAULT_MEDIA_HOSTS = ("storage.googleapis.com", "flow-content.google", "*.googleusercontent.com")
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
MAX_REDIRECTS = 3  # per link; each hop obeys the same rules as the link
# A connection that ended before an answer began: closed or reset under the request (not a
# timeout, nor a connection that could not be made: those are the host's answer).
_CLOSED_UNANSWERED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
KEPT = 20  # idle connections kept per media host (httpx's default)


def base64_length(size: int) -> int:
    """Characters of base64 text that decode to ``size`` bytes."""
    return 4 * -(-size // 3)


@dataclass(frozen=True)
class Hop:
    """One request of a download: the URL to connect to, and what the server must be told."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, Any]


class MediaHosts:
    """The hosts media may come from: ``patterns`` (``name`` or ``*.domain``) and the API origin."""

    def __init__(self, patterns: Iterable[str], base_url: str) -> None:
        names = [p.strip().lower().rstrip(".") for p in patterns if p.strip()]
        self._exact = frozenset(n for n in names if not n.startswith("*."))
        self._suffixes = tuple(n[1:] for n in names if n.startswith("*."))
        self._base = _origin(httpx.URL(base_url))

    def __repr__(self) -> str:
        listed = sorted(self._exact) + [f"*{s}" for s in self._suffixes]
        return f"MediaHosts({', '.join(listed)})"

    async def hop(self, url: httpx.URL, *, account: str | None) -> Hop:
        """How to fetch ``url``, or ``MediaRefused`` before any connection is made."""
        if _origin(url) == self._base:
            return Hop(url, {}, {})
        host = _host(url)
        if url.userinfo:
            raise MediaRefused(f"a media link to {host} carries credentials", account=account)
        if host not in self._exact and not host.endswith(self._suffixes):
            raise MediaRefused(
                f"a media link points to {host}, which is not a media host "
                "(BOT_UPSTREAM_MEDIA_HOSTS)",
                account=account,
            )
        if url.scheme != "https":
            raise MediaRefused(f"a media link is not https: {url.scheme}://{host}", account=account)
        address = await _public_address(host, url.port or 443, account)
        # Connect to the checked address; name the host in the Host header, and in TLS, whose
        # certificate is still verified against the name (httpx's sni_hostname extension).
        pinned = url.copy_with(host=str(address))
        host_header = host if url.port is None else f"{host}:{url.port}"
        return Hop(pinned, {"Host": host_header}, {"sni_hostname": host})


def is_public(ip: IPAddress) -> bool:
    """True for an address on the public internet; false for anything internal or special."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
        if ip.is_site_local:
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def verified_mime(data: bytes, *, max_pixels: int, account: str | None) -> str:
    """The MIME type of ``data`` if it is a whole PNG, JPEG or WebP picture within bounds.

    The pixel count is read from the header before anything is decoded. Then PNG is verified
    chunk by chunk (every CRC through IEND, nothing inflated), JPEG is decoded at 1/8 scale
    (every scan is read, little memory), WebP is decoded (it has no cheaper check).
    CPU-bound: call it in a worker thread.
    """
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise MediaRefused(
                    f"a {width}×{height} picture has more than {max_pixels} pixels",
                    account=account,
                )
            kind = image.format or ""
            if kind not in FORMATS:  # e.g. MPO, which Pillow opens as a kind of JPEG
                raise MediaRefused(f"a picture came as {kind}", account=account)
            if kind == "PNG":
                image.verify()
            else:
                if kind == "JPEG":
                    image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
    except MediaRefused:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaRefused(f"a picture has more than {max_pixels} pixels", account=account) from exc
    except Exception as exc:  # Pillow's many ways of saying "not this": OSError, SyntaxError, …
        raise MediaRefused(
            f"an image is not a PNG, JPEG or WebP picture ({type(exc).__name__})",
            account=account,
        ) from exc
    return FORMATS[kind]


def new_media_http(
    *, read: float, connect: float, max_connections: int = 100, tls: ssl.SSLContext | None = None
) -> httpx.AsyncClient:
    """The client for media links: no proxy from the environment (the address checked must be
    the address reached), connections kept only for the host name they were verified for
    (``MediaTransport``; ``max_connections`` is per host name), no cookies, and no compression
    to inflate. ``tls``: the roots to trust instead of certifi's (tests' local media hosts)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=KEPT)
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"},
        timeout=httpx.Timeout(read, connect=connect),
        transport=MediaTransport(limits, tls),
        follow_redirects=False,
        trust_env=False,
        cookies=no_cookies(),
    )


async def fetch_image(
    http: httpx.AsyncClient,
    hosts: MediaHosts,
    link: str,
    *,
    max_bytes: int,
    max_pixels: int,
    seconds: float,
    account: str | None = None,
) -> tuple[bytes, str]:
    """The picture at ``link`` and its MIME type, judged by its content.

    ``MediaRefused`` when the link or the picture breaks a rule (not worth a retry),
    ``Unavailable`` or ``UpstreamTimeout`` when the media host failed us.
    """
    async with deadline(seconds, "the image download", account=account):
        data = await _download(http, hosts, link, max_bytes, account)
    mime = await asyncio.to_thread(verified_mime, data, max_pixels=max_pixels, account=account)
    return data, mime


async def _download(
    http: httpx.AsyncClient, hosts: MediaHosts, link: str, max_bytes: int, account: str | None
) -> bytes:
    try:
        url = httpx.URL(link)
        for _ in range(MAX_REDIRECTS + 1):
            hop = await hosts.hop(url, account=account)
            async with _get(http, hop) as response:
                if response.is_redirect:
                    url = url.join(response.headers["Location"])
                    continue
                if response.status_code != 200:
                    raise Unavailable(
                        f"the image download answered {response.status_code}", account=account
                    )
                data, cut = await read_body(response, max_bytes)
            if cut:
                raise MediaRefused(
                    f"an image download is larger than {max_bytes} bytes", account=account
                )
            return bytes(data)
    except httpx.InvalidURL as exc:
        raise MediaRefused("a media link is not a valid URL", account=account) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout("the image download timed out", account=account) from exc
    except (httpx.HTTPError, zlib.error) as exc:
        raise Unavailable(
            f"the image download failed: {type(exc).__name__}", account=account
        ) from exc
    raise MediaRefused(f"a media link redirected more than {MAX_REDIRECTS} times", account=account)


@contextlib.asynccontextmanager
async def _get(http: httpx.AsyncClient, hop: Hop) -> AsyncIterator[httpx.Response]:
    """One hop's answer, asked once more if the connection failed before it answered: a kept
    connection the host closed as the request went (RFC 9112 §9.3.1: a client may retry an
    idempotent request then). Failing, the download would fail its job, whose retry asks the
    upstream for new pictures."""
    request = http.build_request("GET", hop.url, headers=hop.headers, extensions=hop.extensions)
    try:
        response = await http.send(request, stream=True)
    except _CLOSED_UNANSWERED:
        response = await http.send(request, stream=True)
    try:
        yield response
    finally:
        await response.aclose()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, _host(url), url.port or default


def _host(url: httpx.URL) -> str:
    """The host as DNS sees it: ASCII (IDNA), lower case, without a trailing dot."""
    return url.raw_host.decode("ascii").lower().rstrip(".")


async def _public_address(host: str, port: int, account: str | None) -> IPAddress:
    """The address to connect to for ``host``, if every address it resolves to is public."""
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unavailable(f"media host {host} did not resolve", account=account) from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in answers]
    if not addresses:
        raise Unavailable(f"media host {host} did not resolve", account=account)
    # One internal answer is enough to refuse: a host that mixes them is probing us.
    for address in addresses:
        if not is_public(address):
            raise MediaRefused(
                f"media host {host} resolves to an internal address ({address})", account=account
            )
    return addresses[0]


@dataclass(frozen=True)
class Pictures:
    """How a road brings in the pictures it left on its media hosts: over ``http``, from
    ``hosts`` only, each bounded in bytes and pixels, all of a rendering within ``seconds``."""

    http: httpx.AsyncClient
    hosts: MediaHosts
    max_bytes: int
    max_pixels: int
    seconds: float

    async def one(self, made: Pending, link: str, account: str | None = None) -> RenderedImage:
        """``made``, downloaded from ``link`` and verified, with the seed and handle the
        answer gave it."""
        data, mime = await fetch_image(
            self.http,
            self.hosts,
            link,
            max_bytes=self.max_bytes,
            max_pixels=self.max_pixels,
            seconds=self.seconds,
            account=account,
        )
        return RenderedImage(data=data, mime=mime, seed=made.seed, handle=made.handle)

    async def every(self, rendering: Rendering, what: str) -> Rendering:
        """``rendering`` with every picture downloaded from its link (``Pending.source``)."""
        async with deadline(self.seconds, what):
            return await fetched(rendering, lambda made: self.one(made, made.source))
