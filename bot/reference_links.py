"""Users' pictures and characters' pictures for a road that fetches its references itself
(Wireflow: its image inputs are URLs, and it has no upload endpoint), at signed, short-lived
addresses under ``BOT_PUBLIC_URL``::

    {BOT_PUBLIC_URL}/references/{sha256}/{expires}/{signature}

``sha256`` is the id the store holds the picture by, ``expires`` a Unix time, ``signature`` the
HMAC-SHA256 of both under a key derived from ``WIREFLOW_API_KEY``. Derived, not drawn at random:
every process sharing the configuration, and the same process after a restart, checks a link
any of them made, so an execution resumed after a restart can still fetch its picture from
whichever process answers the public address; and nothing secret is stored to make that so.
The picture is read from the store (shared by every process), as admission checked and
re-encoded it — a user's upload, or a character's picture — never a file, never anything the path
names but that id. Only a link the bot signed names an id: looking among characters' pictures
too opens nothing to a guess, and a character deleted since is gone like any other picture.

``GET`` (and ``HEAD``) answers 200 with the picture and its type by content. Anything else —
forged, expired, another picture's id, a picture no longer held, a path of another shape — is
the same bare 404 as an unknown path, and only a valid signature gets the store read.

A link is a capability (whoever holds it may fetch that picture until it expires): it goes to
the road only, and is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from bot.core.images import sniff_mime

PREFIX = "/references"
# Wireflow fetches a reference when its node runs. One wait for an execution is bounded at
# 10 minutes, and a restart waits for it again, as long; an hour covers both with room for a
# slow restart or a queue at Wireflow, and a link that leaks is useless soon after.
LINK_SECONDS = 3600
_CONTEXT = b"nano-banana-bot reference links v1"
_HEX64 = "[0-9a-f]{64}"
ROUTE = f"{PREFIX}/{{sha256:{_HEX64}}}/{{expires:[0-9]{{1,12}}}}/{{signature:{_HEX64}}}"

log = logging.getLogger(__name__)


class PictureStore(Protocol):
    """Where the pictures are: the store."""

    async def picture(self, sha256: str) -> bytes | None:
        """A picture held by its content: a user's upload, or a character's picture."""
        ...


class ReferenceLinks:
    """Makes links (``bot.core.providers.Links``) and tells a genuine, live one."""

    def __init__(
        self,
        base_url: str,
        key: bytes,
        *,
        lifetime: int = LINK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base = base_url.rstrip("/") + PREFIX
        self._key = key
        self._lifetime = lifetime
        self._clock = clock  # wall-clock time: another process checks what this one signed

    @classmethod
    def keyed_by(cls, api_key: str, base_url: str) -> ReferenceLinks:
        """Links signed with a key derived from the road's own API key (``api_key``)."""
        key = hmac.new(api_key.encode(), _CONTEXT, hashlib.sha256).digest()
        return cls(base_url, key)

    def __repr__(self) -> str:
        return f"ReferenceLinks({self._base!r})"

    def link(self, sha256: str) -> str:
        expires = int(self._clock()) + self._lifetime
        return f"{self._base}/{sha256}/{expires}/{self._sign(sha256, expires)}"

    def valid(self, sha256: str, expires: int, signature: str) -> bool:
        """Signed here for this picture and this expiry, and not expired. The signature is
        compared in constant time, and always: a forged one costs what a genuine one does."""
        genuine = hmac.compare_digest(self._sign(sha256, expires), signature)
        return genuine and self._clock() <= expires

    def _sign(self, sha256: str, expires: int) -> str:
        message = f"{sha256}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def routes(links: ReferenceLinks, store: PictureStore) -> list[web.RouteDef]:
    """The one route that serves pictures (GET, and HEAD with it)."""
    return [web.get(ROUTE, _Pictures(links, store).serve)]


class _Pictures:
    def __init__(self, links: ReferenceLinks, store: PictureStore) -> None:
        self._links = links
        self._store = store

    async def serve(self, request: web.Request) -> web.Response:
        """The picture a live link names; a bare 404 for anything else."""
        sha256 = request.match_info["sha256"]
        if not self._links.valid(
            sha256, int(request.match_info["expires"]), request.match_info["signature"]
        ):
            # Anyone who reaches the public address can ask: at INFO, a flood of logs.
            log.debug("a reference link was refused: forged, expired or for another picture")
            raise web.HTTPNotFound()
        try:
            data = await self._store.picture(sha256)
        except Exception:
            log.exception("a reference picture could not be read from the store")
            raise web.HTTPServiceUnavailable() from None
        if data is None:
            log.info("a reference link named a picture no longer held")
            raise web.HTTPNotFound()
        log.info("served a reference picture (%d bytes)", len(data))
        return web.Response(
            body=data,
            headers={
                "Content-Type": sniff_mime(data),
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
