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

They are served on a listener of their own, ``BOT_PUBLIC_LISTEN`` (``serve``), which serves
nothing else: ``GET`` (and ``HEAD``) of a live link answers 200 with the picture and its type by
content. Anything else — forged, expired, another picture's id, a picture no longer held, a
path of another shape, another method, ``/healthz`` or ``/metrics`` — is the same bare 404, no
answer names the server's software, and only a valid signature gets the store read.

A link is a capability (whoever holds it may fetch that picture until it expires): it goes to
the road only, and is never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from bot.core.images import sniff_mime
from bot.listener import listening

PREFIX = "/references"
# Wireflow fetches a reference when its node runs. One wait for an execution is bounded at
# 10 minutes, and a restart waits for it again, as long; an hour covers both with room for a
# slow restart or a queue at Wireflow, and a link that leaks is useless soon after.
LINK_SECONDS = 3600
_CONTEXT = b"nano-banana-bot reference links v1"
_HEX64 = "[0-9a-f]{64}"
_LINK = re.compile(f"{PREFIX}/({_HEX64})/([0-9]{{1,12}})/({_HEX64})")

log = logging.getLogger(__name__)


class _Unparsed(logging.Filter):
    """aiohttp reports each request it can't parse (and answered 400) with its traceback, at
    ERROR: on the public listener anyone could write those, as fast as they can connect. Only
    at DEBUG here, where they are a diagnosis; any other report (a bug: a 500) stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        unparsed = record.exc_info is not None and isinstance(
            record.exc_info[1], HttpProcessingError
        )
        return not unparsed or log.isEnabledFor(logging.DEBUG)


# The public listener's own server logger (aiohttp's is "aiohttp.server"), with that filter.
_SERVER_LOG = logging.getLogger(f"{__name__}.server")
_SERVER_LOG.addFilter(_Unparsed())


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


@asynccontextmanager
async def serve(
    listen: tuple[str, int], links: ReferenceLinks, store: PictureStore
) -> AsyncIterator[int]:
    """``BOT_PUBLIC_LISTEN``: the pictures live links name, until the block ends; yields the
    port. aiohttp's low-level server, not an application: no router to answer 405 with an
    ``Allow`` list, or to serve a route added for something else."""
    server = web.Server(
        _Pictures(links, store).serve,
        request_factory=_anonymous,
        access_log=None,
        logger=_SERVER_LOG,
    )
    runner = web.ServerRunner(server, handle_signals=False)
    async with listening(
        runner, "BOT_PUBLIC_LISTEN", listen, "pictures by link", public=True
    ) as port:
        yield port


class _Anonymous(web.BaseRequest):
    """A request whose answer names no server software. aiohttp adds ``Server: Python/3.x
    aiohttp/3.y`` to every answer, the 400s it writes itself for requests it can't parse too;
    each answer passes this hook once its headers are made, before they are sent."""

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        response.headers.popall(hdrs.SERVER, None)


def _anonymous(
    message: RawRequestMessage,
    payload: StreamReader,
    protocol: RequestHandler,
    writer: AbstractStreamWriter,
    task: asyncio.Task[None],
) -> web.BaseRequest:
    return _Anonymous(message, payload, protocol, writer, task, asyncio.get_running_loop())


def _not_found() -> web.Response:
    return web.Response(status=404, text="Not Found")


class _Pictures:
    def __init__(self, links: ReferenceLinks, store: PictureStore) -> None:
        self._links = links
        self._store = store

    async def serve(self, request: web.BaseRequest) -> web.Response:
        """The picture a live link names; the same bare 404 for anything else."""
        link = (
            _LINK.fullmatch(request.path)
            if request.method in (hdrs.METH_GET, hdrs.METH_HEAD)
            else None
        )
        if link is None:
            return _not_found()
        sha256, expires, signature = link.groups()
        if not self._links.valid(sha256, int(expires), signature):
            # Anyone who reaches the public address can ask: at INFO, a flood of logs.
            log.debug("a reference link was refused: forged, expired or for another picture")
            return _not_found()
        try:
            data = await self._store.picture(sha256)
        except Exception:
            log.exception("a reference picture could not be read from the store")
            return web.Response(status=503, text="Service Unavailable")
        if data is None:
            log.info("a reference link named a picture no longer held")
            return _not_found()
        log.info("served a reference picture (%d bytes)", len(data))
        return web.Response(
            body=data,
            headers={
                "Content-Type": sniff_mime(data),
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
