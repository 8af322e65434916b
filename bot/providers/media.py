"""Fetching a provider's generated image by URL, contained exactly as Flow's are.

Providers that answer with URLs (nano-banana-pro.net, Wireflow) hand us an address we did not
choose. ``fetch_image`` follows Flow's rules (``bot.flow.media``): only the provider's media hosts
(or its API's own origin), over https, at a public address that is pinned for the connection;
every redirect hop checked the same way; no credentials and no cookies; bounded in bytes before
it is read and in pixels before it is decoded; a whole PNG, JPEG or WebP by its content; all
within a deadline. It is Flow's ``_download`` made a function: when Flow joins the providers,
this module and ``bot.flow.media`` become one, here.
"""

from __future__ import annotations

import asyncio
import zlib

import httpx

from bot.core.upstream import MediaRefused, Unavailable, UpstreamTimeout
from bot.flow.client import USER_AGENT, _no_cookies, _read_body
from bot.flow.media import MediaHosts, verified_mime
from bot.providers.plumbing import Timeouts, deadline

MAX_REDIRECTS = 3  # per link; each hop obeys the same rules as the link


def new_media_http(timeouts: Timeouts, *, max_connections: int = 100) -> httpx.AsyncClient:
    """The client for media links, as Flow's: no proxy from the environment (the address checked
    must be the address reached), no pooled connections (a connection verified for one host
    name must not carry another's request), no cookies, and no compression to inflate."""
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"},
        timeout=httpx.Timeout(timeouts.download, connect=timeouts.connect),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0),
        follow_redirects=False,
        trust_env=False,
        cookies=_no_cookies(),
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
            async with http.stream(
                "GET", hop.url, headers=hop.headers, extensions=hop.extensions
            ) as response:
                if response.is_redirect:
                    url = url.join(response.headers["Location"])
                    continue
                if response.status_code != 200:
                    raise Unavailable(
                        f"the image download answered {response.status_code}", account=account
                    )
                data, cut = await _read_body(response, max_bytes)
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
