"""What an attacker could try through the connections the bot keeps to media hosts.

A kept connection was verified (TLS) for one host name at one checked address. Each test tries
to make it serve something else: another host name at the same address, the same host name
after DNS moved or turned internal, a redirect, a flood of host names, a cut or padded answer.
The media host is a local TLS server (``FakeMediaHost``) that tells which host name each
connection was opened for (SNI) and which Host each of its requests named.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import trustme

from bot.core.upstream import MediaRefused, Unavailable
from bot.providers import media
from bot.providers.media_pools import HOST_POOLS
from tests.fakes.media_host import PICTURE, FakeMediaHost, answer, picture, resolve_as

API = "https://api.flow.test/v1"  # the API origin: trusted as it is, never resolved here


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def http(trusting: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    async with media.new_media_http(read=5, connect=5, tls=trusting) as client:
        yield client


@pytest.fixture(autouse=True)
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake media hosts live on loopback addresses; here those count as the internet."""
    monkeypatch.setattr(media, "is_public", lambda ip: ip.is_loopback)


async def fetch(
    http: httpx.AsyncClient,
    link: str,
    *,
    hosts: Sequence[str] = ("*.example",),
    base: str = API,
    max_bytes: int = 2**20,
) -> bytes:
    data, _ = await media.fetch_image(
        http,
        media.MediaHosts(hosts, base),
        link,
        max_bytes=max_bytes,
        max_pixels=10**6,
        seconds=5,
    )
    return data


def carried(host: FakeMediaHost) -> list[tuple[str | None, list[str]]]:
    """Each connection's TLS name and the host names its requests named, in order."""
    return [(c.sni, [h.rsplit(":", 1)[0] for h, _ in c.requests]) for c in host.connections]


async def test_a_connection_verified_for_one_host_never_carries_another_at_its_address(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"a.example": ["127.0.0.1"], "b.example": ["127.0.0.1"]})
    async with FakeMediaHost(ca, ["a.example", "b.example"]) as host:
        for name in "ababa":
            await fetch(http, f"https://{name}.example:{host.port}/{name}.png")
    # Kept and used again, each only for the host name it was opened for.
    assert carried(host) == [("a.example", ["a.example"] * 3), ("b.example", ["b.example"] * 2)]


async def test_a_host_its_address_cannot_prove_is_refused_though_a_proven_one_is_kept_there(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    # b.example points at a server whose certificate names only a.example: reusing a.example's
    # open connection would skip the one check that b.example is who it says.
    resolve_as(monkeypatch, {"a.example": ["127.0.0.1"], "b.example": ["127.0.0.1"]})
    async with FakeMediaHost(ca, ["a.example"]) as host:
        assert await fetch(http, f"https://a.example:{host.port}/a.png") == picture()
        with pytest.raises(Unavailable):
            await fetch(http, f"https://b.example:{host.port}/b.png")
        assert await fetch(http, f"https://a.example:{host.port}/a.png") == picture()
    assert carried(host) == [("a.example", ["a.example"] * 2)]
    assert host.handshakes == ["a.example", "b.example"]  # b.example's own, failed


async def test_a_new_dns_answer_is_reached_on_a_new_connection_not_the_kept_one(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"a.example": ["127.0.0.2", "127.0.0.3", "127.0.0.2"]})
    async with (
        FakeMediaHost(ca, ["a.example"], "127.0.0.2") as first,
        FakeMediaHost(ca, ["a.example"], "127.0.0.3", first.port) as second,
    ):
        for _ in range(3):
            await fetch(http, f"https://a.example:{first.port}/a.png")
    # Back at the first address, checked again: its connection serves again, nothing else does.
    assert carried(first) == [("a.example", ["a.example"] * 2)]
    assert carried(second) == [("a.example", ["a.example"])]


async def test_a_host_that_turns_internal_is_refused_though_a_connection_to_it_is_kept(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = resolve_as(monkeypatch, {"a.example": ["127.0.0.2", "10.0.0.1"]})
    async with FakeMediaHost(ca, ["a.example"], "127.0.0.2") as host:
        await fetch(http, f"https://a.example:{host.port}/a.png")
        with pytest.raises(MediaRefused):
            await fetch(http, f"https://a.example:{host.port}/a.png")
    assert asked == ["a.example", "a.example"]  # every link is checked, kept connection or not
    assert carried(host) == [("a.example", ["a.example"])]


async def test_a_redirect_to_another_host_goes_on_a_connection_of_its_own(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"a.example": ["127.0.0.1"], "b.example": ["127.0.0.1"]})
    async with FakeMediaHost(ca, ["a.example", "b.example"]) as host:
        await fetch(http, f"https://b.example:{host.port}/b.png")
        host.answer("/moved.png", answer(302, Location=f"https://b.example:{host.port}/b.png"))
        assert await fetch(http, f"https://a.example:{host.port}/moved.png") == picture()
    assert carried(host) == [("b.example", ["b.example"] * 2), ("a.example", ["a.example"])]


async def test_the_api_origins_connections_never_carry_a_media_host_at_the_same_address(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"a.example": ["127.0.0.1"]})
    async with FakeMediaHost(ca, ["a.example", "127.0.0.1"]) as host:
        base = f"https://127.0.0.1:{host.port}/v1"
        for link in ("/v1/x.png", "/a.png", "/v1/y.png"):
            name = "a.example" if link == "/a.png" else "127.0.0.1"
            await fetch(http, f"https://{name}:{host.port}{link}", base=base)
    assert carried(host) == [(None, ["127.0.0.1"] * 2), ("a.example", ["a.example"])]


async def test_a_flood_of_host_names_keeps_few_connections_and_closing_keeps_none(
    trusting: ssl.SSLContext, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"n{i}.media.example" for i in range(3 * HOST_POOLS)]
    resolve_as(monkeypatch, {name: ["127.0.0.1"] for name in names})
    async with FakeMediaHost(ca, ["*.media.example"]) as host:
        http = media.new_media_http(read=5, connect=5, tls=trusting)
        for name in names:
            await fetch(http, f"https://{name}:{host.port}/p.png")
            await host.settled(open_at_most=HOST_POOLS)
        assert len(host.connections) == len(names)
        await http.aclose()
        await host.settled(open_at_most=0)


async def test_a_flood_of_host_names_never_closes_a_download_under_way(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"n{i}.media.example" for i in range(2 * HOST_POOLS)]
    resolve_as(monkeypatch, {name: ["127.0.0.1"] for name in names})
    async with FakeMediaHost(ca, ["*.media.example"]) as host:
        host.hold("/slow.png")
        slow = asyncio.create_task(fetch(http, f"https://{names[0]}:{host.port}/slow.png"))
        async with asyncio.timeout(5):
            while not host.connections or not host.connections[0].requests:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        for name in names[1:]:
            await fetch(http, f"https://{name}:{host.port}/p.png")
        host.release("/slow.png")
        assert await slow == picture()
        await host.settled(open_at_most=HOST_POOLS)


async def test_a_download_cut_at_the_bound_leaves_no_connection_to_reuse(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The unread rest of a cut answer would be read as the next link's answer.
    resolve_as(monkeypatch, {"a.example": ["127.0.0.1"]})
    async with FakeMediaHost(ca, ["a.example"]) as host:
        host.answer("/big.png", answer(200, picture((200, 0, 0)) + bytes(5000)))
        with pytest.raises(MediaRefused):
            await fetch(http, f"https://a.example:{host.port}/big.png", max_bytes=1000)
        assert await fetch(http, f"https://a.example:{host.port}/a.png") == picture()
        await host.settled(open_at_most=1)
    assert [len(c.requests) for c in host.connections] == [1, 1]
    assert not host.connections[0].open


async def test_an_answer_smuggled_after_a_picture_reaches_no_other_host(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"a.example": ["127.0.0.1"], "b.example": ["127.0.0.1"]})
    smuggled = answer(200, picture((255, 0, 0)), Content_Type="image/png")
    async with FakeMediaHost(ca, ["a.example", "b.example"]) as host:
        host.answer("/a.png", PICTURE + smuggled)
        assert await fetch(http, f"https://a.example:{host.port}/a.png") == picture()
        assert await fetch(http, f"https://b.example:{host.port}/b.png") == picture()
    assert carried(host) == [("a.example", ["a.example"]), ("b.example", ["b.example"])]


async def test_a_proxy_named_in_the_environment_is_never_used(
    trusting: ssl.SSLContext, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would connect wherever it resolves the name: not the address that was checked.
    proxied: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxied.append(1)
        writer.close()

    proxy = await asyncio.start_server(count, "127.0.0.1", 0)
    address = f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}"
    for variable in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(variable, address)
    resolve_as(monkeypatch, {"a.example": ["127.0.0.1"]})
    try:
        async with (
            FakeMediaHost(ca, ["a.example"]) as host,
            media.new_media_http(read=5, connect=5, tls=trusting) as http,
        ):
            assert await fetch(http, f"https://a.example:{host.port}/a.png") == picture()
    finally:
        proxy.close()
    assert proxied == []
    assert carried(host) == [("a.example", ["a.example"])]


async def test_a_kept_connection_closed_as_the_next_picture_is_asked_costs_one_more_request(
    http: httpx.AsyncClient, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not a whole new generation: a download that fails is the job's failure, and its retry
    # asks the upstream for new pictures.
    resolve_as(monkeypatch, {"a.example": ["127.0.0.1"]})
    async with FakeMediaHost(ca, ["a.example"]) as host:
        link = f"https://a.example:{host.port}/"
        assert await fetch(http, link + "1.png") == picture()
        host.hang_ups = 1
        assert await fetch(http, link + "2.png") == picture()
        assert [[p for _, p in c.requests] for c in host.connections] == [
            ["/1.png", "/2.png"],
            ["/2.png"],
        ]
        host.answer("/3.png", b"")  # once more, not forever: a host that hangs up has failed
        with pytest.raises(Unavailable):
            await fetch(http, link + "3.png")
        assert sum(p == "/3.png" for c in host.connections for _, p in c.requests) == 2
