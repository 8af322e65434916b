"""Connections to media hosts, kept for the host name they were opened for and nothing else.

A media link is fetched at the address that was checked for its host (``MediaHosts.hop``): the
URL names that address and the request carries the host name as its ``sni_hostname``
extension. httpcore pools connections by URL origin alone (scheme, address, port) and reads
``sni_hostname`` only when it opens a connection, so one shared pool would hand a connection
whose certificate was verified for one host name to another host name's request at the same
address. Here each host name has a pool of its own: a kept connection serves only the host name
it was verified for, at the address it was opened to (a new checked address is a new origin,
hence a new connection). Links on the API's own origin (no ``sni_hostname``) share one pool,
keyed by origin as any client's.

At most ``HOST_POOLS`` host names keep connections; the least recently used idle one is closed
when another is needed, and every one when the client closes.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx

HOST_POOLS = 8  # Flow uses two or three media hosts; a wildcard must not mean unbounded pools


@dataclass
class _Pool:
    transport: httpx.AsyncHTTPTransport
    busy: int = 0  # requests whose response is not closed yet: never closed under them


class MediaTransport(httpx.AsyncBaseTransport):
    """An httpx transport keeping connections per host name (the request's ``sni_hostname``)."""

    def __init__(self, limits: httpx.Limits, tls: ssl.SSLContext | None = None) -> None:
        self._limits = limits
        # One TLS context for every pool: certifi's roots are read once, not per host name.
        self._tls = tls or httpx.create_ssl_context(trust_env=False)
        self._pools: OrderedDict[str | None, _Pool] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = request.extensions.get("sni_hostname")
        pool = self._pools.pop(name, None) or _Pool(self._new_transport())
        self._pools[name] = pool  # the most recently used last
        pool.busy += 1
        try:
            await self._trim()
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            await self._release(pool)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        stream = _Released(response.stream, lambda: self._release(pool))
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=stream,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            await pool.transport.aclose()

    def _new_transport(self) -> httpx.AsyncHTTPTransport:
        # No proxy and no environment: the address checked must be the address reached.
        return httpx.AsyncHTTPTransport(verify=self._tls, limits=self._limits, trust_env=False)

    async def _release(self, pool: _Pool) -> None:
        pool.busy -= 1
        await self._trim()

    async def _trim(self) -> None:
        """Close the least recently used idle pools beyond ``HOST_POOLS``."""
        excess = len(self._pools) - HOST_POOLS
        idle = [name for name, pool in self._pools.items() if not pool.busy][: max(excess, 0)]
        # Taken out before the first await: a request arriving meanwhile opens a new pool
        # rather than finding one being closed.
        closing = [self._pools.pop(name) for name in idle]
        if closing:  # closed even if this request is cancelled meanwhile: no socket left open
            await asyncio.shield(asyncio.gather(*(pool.transport.aclose() for pool in closing)))


class _Released(httpx.AsyncByteStream):
    """A response body that tells its pool when it is closed (read to the end or not)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], Awaitable[None]]):
        self._stream = stream
        self._release: Callable[[], Awaitable[None]] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        release, self._release = self._release, None
        try:
            await self._stream.aclose()
        finally:
            if release is not None:
                await release()
