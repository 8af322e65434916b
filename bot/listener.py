"""The bot's HTTP listeners, each on aiohttp's server with the same bounds: ``BOT_HTTP_LISTEN``
(``/healthz`` and ``/metrics``, for the operator's machine) and ``BOT_PUBLIC_LISTEN`` (users'
pictures behind signed links, for the internet). Two listeners, not two paths on one: what the
internet may reach is decided by which port a proxy forwards to, not by a proxy rule's path.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from bot.env import ConfigError

# aiohttp waits without end for a request a client began and never finished, and for the first
# one on a connection: each such connection holds a file descriptor of the bot's process, which
# its chats, store and upstreams need. At most this many at once on each listener (Prometheus,
# a health check and a road fetching references need a handful), each for at most this many
# seconds (a reference is at most 20 MB).
MAX_CONNECTIONS = 256
CONNECTION_SECONDS = 60.0
# On a listener facing the internet, at most this many from one address (an IPv6 one's /64,
# which one host is given): else one host holding the rest unfinished, again each time they
# are cut, shuts everyone out.
PER_ADDRESS = 32
NETWORK = 48  # an IPv6 site's prefix (RFC 6177: a /48 to a site, a /56 at home)
log = logging.getLogger(__name__)


@asynccontextmanager
async def listening(
    runner: web.BaseRunner,
    setting: str,
    listen: tuple[str, int],
    serves: str,
    *,
    public: bool = False,
) -> AsyncIterator[int]:
    """``runner``'s server on ``listen`` (``setting``'s address) until the block ends; yields
    the port (``listen``'s, or the one picked for 0). ``serves`` says what, for the log;
    ``public``: it faces the internet (``PER_ADDRESS``)."""
    await runner.setup()
    host, port = listen
    assert runner.server is not None  # set up
    guarded = _Guarded.factory(runner.server, per_address=public)
    try:
        listener = await asyncio.get_running_loop().create_server(guarded, host, port)
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"{setting} {host}:{port} can't be listened on ({exc.strerror}): "
            "choose a free port, or an address of this machine"
        ) from None
    bound = int(listener.sockets[0].getsockname()[1])
    log.info("serving %s on %s:%d (%s)", serves, host, bound, setting)
    try:
        yield bound
    finally:
        listener.close()
        await runner.cleanup()  # closes the connections still open
        await listener.wait_closed()


class _Guarded(asyncio.Protocol):
    """aiohttp's handler of one connection, unless ``MAX_CONNECTIONS`` are open, or (where
    ``peers`` are counted) ``PER_ADDRESS`` from its address: then the connection is dropped
    unread. Where peers are counted, a connection finding all ``MAX_CONNECTIONS`` taken takes
    the place of the oldest of the network holding most (an address; for IPv6 its /48, which
    one site is given), if that holds more than its own would: else a few addresses, eight of
    32, held them all, or one site's 256 /64s one each. Closed after ``CONNECTION_SECONDS``
    whatever it is doing."""

    def __init__(
        self,
        inner: asyncio.Protocol,
        live: set[_Guarded],
        peers: dict[str, list[_Guarded]] | None,
    ) -> None:
        self._inner = inner
        self._live = live
        self._peers = peers  # address → its connections open, the oldest first
        self._peer = ""
        self._network = ""
        self._opened = 0.0
        self._transport: asyncio.BaseTransport | None = None
        self._deadline: asyncio.TimerHandle | None = None

    @classmethod
    def factory(
        cls, handler: Callable[[], asyncio.Protocol], *, per_address: bool
    ) -> Callable[[], _Guarded]:
        live: set[_Guarded] = set()
        peers: dict[str, list[_Guarded]] | None = {} if per_address else None
        return lambda: cls(handler(), live, peers)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peername = transport.get_extra_info("peername")
        peer, network = _address(peername), _address(peername, ipv6_prefix=NETWORK)
        held = [] if self._peers is None else self._peers.get(peer, [])
        if len(held) >= PER_ADDRESS:
            transport.close()  # before making room: refused, it takes no one's place
            return
        if len(self._live) >= MAX_CONNECTIONS:
            self._make_room(network)
        if len(self._live) >= MAX_CONNECTIONS:
            transport.close()
            return
        loop = asyncio.get_running_loop()
        self._live.add(self)
        self._transport = transport
        self._opened = loop.time()
        if self._peers is not None:
            self._peer, self._network = peer, network
            self._peers[peer] = [*held, self]
        self._deadline = loop.call_later(CONNECTION_SECONDS, transport.close)
        self._inner.connection_made(transport)

    def _make_room(self, network: str) -> None:
        """Close the oldest connection of the network holding most, if it holds more than
        ``network`` would with this one."""
        if not self._peers:
            return
        networks: dict[str, list[_Guarded]] = {}
        for held in self._peers.values():
            networks.setdefault(held[0]._network, []).extend(held)
        most = max(networks.values(), key=len)
        if len(most) > len(networks.get(network, [])) + 1:
            oldest = min(most, key=lambda connection: connection._opened)
            oldest._forget()
            assert oldest._transport is not None  # counted once made
            oldest._transport.close()

    def _forget(self) -> None:
        """No longer counted (its ``connection_lost`` comes later)."""
        self._live.discard(self)
        if self._peers is not None:
            left = [c for c in self._peers.pop(self._peer, []) if c is not self]
            if left:
                self._peers[self._peer] = left

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return  # dropped unread: aiohttp never saw it
        self._forget()
        if self._deadline is not None:
            self._deadline.cancel()
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def _address(peername: object, ipv6_prefix: int = 64) -> str:
    """Whose connection: its IP address (an IPv6 one's /64, which one host is given; or
    ``ipv6_prefix``)."""
    host = peername[0] if isinstance(peername, tuple) and peername else peername
    try:
        address = ipaddress.ip_address(str(host).partition("%")[0])
    except ValueError:
        return str(host)  # not an IP socket: one peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)
