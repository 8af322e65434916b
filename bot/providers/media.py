"""Fetching a provider's generated image by URL, contained.

Providers that answer with URLs (nano-banana-pro.net, Wireflow, Flow's ``fifeUrl``) hand us an
address we did not choose. ``fetch_image`` fetches it only from the provider's media hosts (every
redirect hop checked), with no credentials, bounded in bytes and in pixels, verified as an image
by its content, and within a deadline. It is written for Flow's ``_download`` to use as well.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from PIL import Image, UnidentifiedImageError

from bot.core.upstream import Unavailable
from bot.providers.plumbing import deadline, transport

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class MediaPolicy:
    """Where a provider's images may come from, and how large they may be.

    ``hosts`` are exact host names, or ``.example.com`` for that domain and its subdomains.
    """

    hosts: frozenset[str]
    schemes: frozenset[str] = frozenset({"https"})
    max_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 40_000_000  # a 4K 21:9 render is about 17 million
    max_redirects: int = 3
    timeout: float = 60.0

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in self.schemes or not host or parts.username or parts.password:
            return False
        return any(
            host == allowed or (allowed.startswith(".") and host.endswith(allowed))
            for allowed in self.hosts
        )


def policy_for(
    base_url: str, hosts: frozenset[str], *, max_bytes: int, timeout: float
) -> MediaPolicy:
    """A policy whose scheme follows the API's own: https in production, http only against a
    local fake that is itself served over http."""
    scheme = urlsplit(base_url).scheme or "https"
    return MediaPolicy(
        frozenset(h.lower() for h in hosts),
        frozenset({scheme}),
        max_bytes=max_bytes,
        timeout=timeout,
    )


async def fetch_image(
    http: httpx.AsyncClient, url: str, policy: MediaPolicy, *, account: str | None = None
) -> tuple[bytes, str]:
    """The image at ``url`` and its MIME type (from its content), or ``Unavailable``."""
    async with deadline(policy.timeout, "the image download", account=account):
        data = await _get(http, url, policy, account)
    return data, await asyncio.to_thread(verify_image, data, policy.max_pixels, account)


async def _get(
    http: httpx.AsyncClient, url: str, policy: MediaPolicy, account: str | None
) -> bytes:
    for _ in range(policy.max_redirects + 1):
        if not policy.allows(url):
            raise Unavailable(
                f"an image URL points outside the provider's media hosts ({_where(url)})",
                account=account,
            )
        async with (
            transport("the image download", account=account),
            # No Authorization header: the URL is public or signed, and on another host.
            http.stream("GET", url, headers={"Accept": "image/*"}, follow_redirects=False) as reply,
        ):
            if reply.status_code in REDIRECTS and "location" in reply.headers:
                url = urljoin(url, reply.headers["location"])
                continue
            if reply.status_code != 200:
                raise Unavailable(
                    f"the image download answered {reply.status_code}", account=account
                )
            declared = reply.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > policy.max_bytes:
                raise Unavailable("the image is larger than allowed", account=account)
            chunks: list[bytes] = []
            size = 0
            async for chunk in reply.aiter_bytes():
                size += len(chunk)
                if size > policy.max_bytes:
                    raise Unavailable("the image is larger than allowed", account=account)
                chunks.append(chunk)
            return b"".join(chunks)
    raise Unavailable("the image download redirected too many times", account=account)


def verify_image(data: bytes, max_pixels: int, account: str | None = None) -> str:
    """The MIME type if ``data`` is a PNG, JPEG or WebP within ``max_pixels``; else ``Unavailable``.

    CPU-bound for large pictures: call it in a worker thread.
    """
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise Unavailable(
                    f"the image has too many pixels ({width}x{height})", account=account
                )
            image.verify()
            return FORMATS[image.format or ""]
    except Unavailable:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
        SyntaxError,
        KeyError,
    ) as exc:
        raise Unavailable("the download is not a PNG, JPEG or WebP image", account=account) from exc


def _where(url: str) -> str:
    """Scheme and host only: signed query strings stay out of logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"
