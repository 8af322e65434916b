"""Attacks on the bot's HTTP listeners from outside: ``BOT_HTTP_LISTEN`` and
``BOT_PUBLIC_LISTEN``.

The public one faces the internet (a road fetches references from it), and ``/healthz``
answers anyone who reaches the private one. Each check writes to the store (and rolls back)
to know it is writable: a stranger asking a thousand times at once must not queue a thousand
writes ahead of the bot's own. And both run in the bot's process: a connection a stranger
opens and never finishes holds one of the file descriptors the bot needs for its chats, store
and upstreams."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from bot import listener, reference_links
from bot.core.monitoring import Health, Snapshot
from bot.observability import server
from bot.observability.metrics import Metrics
from bot.reference_links import ReferenceLinks


async def test_a_flood_of_health_checks_costs_one_store_write_at_a_time(
    make_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _told = await make_service()
    probe = service.store.probe_write
    writing = most = calls = 0

    async def counted() -> None:
        nonlocal writing, most, calls
        calls += 1
        writing += 1
        most = max(most, writing)
        try:
            await probe()
            await asyncio.sleep(0.05)  # a store under load
        finally:
            writing -= 1

    monkeypatch.setattr(service.store, "probe_write", counted)
    limits = httpx.Limits(max_connections=200)
    async with (
        server.serve(("127.0.0.1", 0), service, Metrics()) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http,
    ):
        answers = await asyncio.gather(*(http.get("/healthz", timeout=10) for _ in range(200)))
        assert {a.status_code for a in answers} == {200}
        assert most == 1
        assert calls <= 10
        # Asked again later, it checks again: a store that broke since is said at once.
        before = calls
        assert (await http.get("/healthz")).status_code == 200
        assert calls == before + 1


class Healthy:
    async def health(self) -> Health:
        return Health(store_writable=True, upstream_serving=True)

    def snapshot(self) -> Snapshot:
        return Snapshot()


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server hung up (its answer, if any, read to the end)."""
    await reader.read()
    return True


class NoPictures:
    async def picture(self, sha256: str) -> bytes | None:
        return None


def private() -> AbstractAsyncContextManager[int]:
    return server.serve(("127.0.0.1", 0), Healthy(), Metrics())


def public() -> AbstractAsyncContextManager[int]:
    return reference_links.serve(("127.0.0.1", 0), ReferenceLinks("", b"k" * 32), NoPictures())


@pytest.mark.parametrize(("listening", "path"), [(private, "/healthz"), (public, "/")])
async def test_connections_that_never_finish_a_request_are_bounded_and_cut(
    monkeypatch: pytest.MonkeyPatch,
    listening: Callable[[], AbstractAsyncContextManager[int]],
    path: str,
) -> None:
    monkeypatch.setattr(listener, "MAX_CONNECTIONS", 20)
    monkeypatch.setattr(listener, "CONNECTION_SECONDS", 3.0)
    async with listening() as port:
        slow = []
        for _ in range(30):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bot\r\n".encode())  # and never the end
            slow.append((reader, writer))
        hung_up = [asyncio.ensure_future(closed(reader)) for reader, _ in slow]
        # Those beyond the bound are hung up on at once,
        done, waiting = await asyncio.wait(hung_up, timeout=0.5)
        assert (len(done), len(waiting)) == (10, 20)
        # and the rest when their time is up: nothing stays open for ever.
        async with asyncio.timeout(10):
            await asyncio.gather(*waiting)
        for _, writer in slow:
            writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get(path)).status_code == (200 if listening is private else 404)


async def test_one_host_holding_unfinished_connections_does_not_shut_out_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slowloris from one address: it opens as many connections as it is let, never
    finishes a request on any, and opens them again each time they are cut. (The private
    listener is the operator's: a health checker there may well ask from one address only.)"""
    monkeypatch.setattr(listener, "MAX_CONNECTIONS", 40)
    path = "/"
    async with public() as port:
        slow = []
        for _ in range(60):
            reader, writer = await connect(port, "127.0.0.1")
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bot\r\n".encode())
            slow.append((reader, writer))
        hung_up = [asyncio.ensure_future(closed(reader)) for reader, _ in slow]
        done, _ = await asyncio.wait(hung_up, timeout=0.5)
        assert len(done) == 60 - listener.PER_ADDRESS
        # Another host is answered at once, while the first holds all it was let.
        reader, writer = await connect(port, "127.0.0.2")
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n".encode())
        async with asyncio.timeout(5):
            answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 404")
        writer.close()
        for _, writer in slow:
            writer.close()
        await asyncio.gather(*hung_up)


async def test_a_few_hosts_holding_every_connection_together_do_not_shut_out_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The slowloris from a few addresses: two here, eight of 32 for the 256 the bot takes (an
    IPv6 /56, common at home, is 256 /64s). A newcomer takes the place of the oldest
    connection of the address holding most."""
    monkeypatch.setattr(listener, "MAX_CONNECTIONS", 40)
    path = "/"
    async with public() as port:
        slow = []
        for host in ("127.0.0.2", "127.0.0.3"):
            for _ in range(listener.PER_ADDRESS):
                reader, writer = await connect(port, host)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: bot\r\n".encode())
                slow.append((reader, writer))
        hung_up = [asyncio.ensure_future(closed(reader)) for reader, _ in slow]
        beyond = 2 * listener.PER_ADDRESS - 40  # 40 held in all
        async with asyncio.timeout(5):
            while sum(task.done() for task in hung_up) < beyond:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        reader, writer = await connect(port, "127.0.0.4")
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n".encode())
        async with asyncio.timeout(5):
            answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 404")
        # One connection of theirs gave it its place (the two shared the 40 meanwhile).
        async with asyncio.timeout(5):
            while sum(task.done() for task in hung_up) <= beyond:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert sum(task.done() for task in hung_up) == beyond + 1
        writer.close()
        for _, writer in slow:
            writer.close()
        await asyncio.gather(*hung_up)


class Peer(asyncio.Transport):
    """A connection's transport as the listener sees it: who, and whether it was closed."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.address, 5000, 0, 0) if name == "peername" else default

    def close(self) -> None:
        self.closed = True


async def test_one_sites_ipv6_networks_holding_a_connection_each_do_not_shut_out_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A site is given a /48 (a home a /56): 65,536 /64s, each under its own bound with one
    connection. They count as one network when a newcomer needs a place."""
    monkeypatch.setattr(listener, "MAX_CONNECTIONS", 40)
    connection = listener._Guarded.factory(asyncio.Protocol, per_address=True)
    site = [Peer(f"2001:db8:0:{n:x}::1") for n in range(40)]
    for peer in site:
        connection().connection_made(peer)
    assert not any(peer.closed for peer in site)
    newcomer = Peer("2001:db9::1")
    connection().connection_made(newcomer)
    assert not newcomer.closed
    assert [peer.closed for peer in site] == [True] + [False] * 39  # the site's oldest


async def test_an_address_at_its_own_bound_cuts_no_one_elses_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every place taken, a newcomer from an address holding its ``PER_ADDRESS`` already
    is refused: it takes no place, so it closes none (it cut the oldest of the network holding
    most, a site's reference on its way, and left the place empty)."""
    monkeypatch.setattr(listener, "MAX_CONNECTIONS", 14)
    monkeypatch.setattr(listener, "PER_ADDRESS", 4)
    connection = listener._Guarded.factory(asyncio.Protocol, per_address=True)
    site = [Peer(f"2001:db8:0:{n}::1") for n in (1, 2) for _ in range(4)]  # 8 in one /48
    attacker = [Peer("192.0.2.1") for _ in range(4)]
    others = [Peer("192.0.2.2") for _ in range(2)]
    for peer in [*site, *attacker, *others]:
        connection().connection_made(peer)
    assert not any(peer.closed for peer in [*site, *attacker, *others])  # all 14 places
    again = Peer("192.0.2.1")
    connection().connection_made(again)
    assert again.closed  # over its own bound
    assert not any(peer.closed for peer in site)


async def connect(port: int, host: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from ``host`` (any of 127/8 is this machine, on Linux)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("2001:db8:1:2::1", 5000, 0, 0), ("2001:db8:1:2:ffff::9", 5001, 0, 0)),
        (("::ffff:192.0.2.7", 5000, 0, 0), ("192.0.2.7", 5001)),
    ],
)
def test_one_ipv6_host_counts_as_one_address_whichever_of_its_addresses_it_uses(
    one: tuple[object, ...], other: tuple[object, ...]
) -> None:
    """An IPv6 host is given a /64: a bound per address would be none if each counted."""
    assert listener._address(one) == listener._address(other)
    assert listener._address(one) != listener._address(("2001:db8:1:3::1", 5000, 0, 0))
