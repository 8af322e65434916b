"""Attacks on the public listener (``BOT_PUBLIC_LISTEN``): the one address of the bot's that
the internet reaches (Wireflow fetches users' pictures there, at ``BOT_PUBLIC_URL``).

It serves the pictures live links name, and nothing else: ``/healthz`` and ``/metrics`` (which
name the upstream accounts' e-mails and the store) answer on the private listener
(``BOT_HTTP_LISTEN``) alone, which serves no picture; so no reverse-proxy rule, however wrong,
can show them to the internet. The bot runs as ``python -m bot`` wires it (``app.open_service``
from the settings), and requests go over real sockets, raw where a client would tidy the path.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import app
from bot.config import Settings
from bot.core.domain import GenerationRequest, Upload
from bot.core.people import Owner
from bot.reference_links import LINK_SECONDS, ReferenceLinks
from tests.conftest import image_bytes
from tests.e2e.bot_process import free_port

WIREFLOW_KEY = "wf-secret-key"


@dataclass
class Listeners:
    private: int
    public: int
    link: str  # a genuine, live link to ``picture``, as the bot makes them
    picture: bytes

    async def raw(self, port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request exactly as written: status, headers (lower-cased names), body (none
        for HEAD, whatever its length says)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            await writer.drain()
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
                status_line, *lines = head.decode("latin-1").strip().split("\r\n")
                headers = {
                    k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)
                }
                length = 0 if request.startswith(b"HEAD ") else headers.get("content-length", 0)
                body = await reader.readexactly(int(length))
        finally:
            writer.close()
        return int(status_line.split()[1]), headers, body

    async def ask(
        self, port: int, target: str, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        request = f"{method} {target} HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n"
        return await self.raw(port, request.encode() + b"Content-Length: 0\r\n\r\n")

    @property
    def link_path(self) -> str:
        return "/references/" + self.link.split("/references/", 1)[1]


@pytest.fixture
async def listeners(tmp_path: Path) -> AsyncIterator[Listeners]:
    private, public = free_port(), free_port()
    public_url = f"http://127.0.0.1:{public}"
    settings = Settings.from_env(
        {
            "WIREFLOW_API_KEY": WIREFLOW_KEY,
            "WIREFLOW_WORKFLOW_ID": "wf-1",
            "WIREFLOW_BASE_URL": "http://127.0.0.1:9",  # never called here
            "DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3",
            "BOT_HTTP_LISTEN": f"127.0.0.1:{private}",
            "BOT_PUBLIC_LISTEN": f"127.0.0.1:{public}",
            "BOT_PUBLIC_URL": public_url,
        },
        env_file=None,
    )
    async with app.open_service(settings) as (service, _):
        picture = image_bytes("PNG", color="orange")
        sha = hashlib.sha256(picture).hexdigest()
        upload = (Upload(sha, "image/png"),)
        request = GenerationRequest("a fox", "nano-banana-2", "1:1", 1, 5, upload)
        owner = Owner("telegram", "7", "7")
        await service.store.add_job(owner, request, {sha: picture}, day="2026-11-26")
        link = ReferenceLinks.keyed_by(WIREFLOW_KEY, public_url).link(sha)
        yield Listeners(private, public, link, picture)


# Each path a proxy rule, a client or an attacker might turn into /metrics or /healthz.
DISGUISES = [
    "/{name}",
    "/{name}/",
    "//{name}",
    "/{name}?format=prometheus",
    "/{NAME}",
    "/references/../{name}",
    "/references/%2e%2e/{name}",
    "/references/..%2f{name}",
    "/%2f{name}",
    "/./{name}",
    "http://bot/{name}",
]


async def bare_404(listeners: Listeners) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = await listeners.ask(listeners.public, "/no-such-path")
    assert status == 404
    return status, headers, body


def shown(answer: tuple[int, dict[str, str], bytes]) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = answer
    return status, {k: v for k, v in headers.items() if k != "date"}, body


async def test_the_public_listener_does_not_serve_metrics(listeners: Listeners) -> None:
    status, _, body = await listeners.ask(listeners.private, "/metrics")
    assert status == 200
    assert b"nanobanana_" in body  # what a stranger must never read
    unknown = shown(await bare_404(listeners))
    for disguise in DISGUISES:
        target = disguise.format(name="metrics", NAME="METRICS")
        for method in ("GET", "HEAD"):
            answer = await listeners.ask(listeners.public, target, method)
            assert answer[0] == 404, (method, target)
            assert b"nanobanana_" not in answer[2]
            assert b"process_" not in answer[2]
            if method == "GET":
                assert shown(answer) == unknown, target


async def test_the_public_listener_does_not_serve_healthz(listeners: Listeners) -> None:
    status, _, body = await listeners.ask(listeners.private, "/healthz")
    assert status in (200, 503)
    assert b"store_writable" in body
    unknown = shown(await bare_404(listeners))
    for disguise in DISGUISES:
        target = disguise.format(name="healthz", NAME="HEALTHZ")
        answer = await listeners.ask(listeners.public, target)
        assert shown(answer) == unknown, target
        assert b"store_writable" not in answer[2]


async def test_the_private_listener_no_longer_serves_references(listeners: Listeners) -> None:
    status, headers, body = await listeners.ask(listeners.public, listeners.link_path)
    assert (status, headers["content-type"], body) == (200, "image/png", listeners.picture)
    for method in ("GET", "HEAD"):
        status, headers, body = await listeners.ask(listeners.private, listeners.link_path, method)
        assert status == 404, method
        assert listeners.picture not in body
        assert not headers.get("content-type", "").startswith("image/")


async def test_a_path_that_climbs_out_of_references_reaches_no_file_on_the_public_listener(
    listeners: Listeners,
) -> None:
    unknown = shown(await bare_404(listeners))
    sha, expires, signature = listeners.link_path.split("/")[2:]
    for target in (
        "/references/../bot.sqlite3",
        "/references/%2e%2e/%2e%2e/bot.sqlite3",
        "/references/..%2f..%2fbot.sqlite3",
        f"/references/{sha}/{expires}/{signature}/../../../bot.sqlite3",
        f"/references/{sha}/{expires}/{signature}/extra",
        f"/references/{sha}/{expires}/{signature}/",
        f"/references/{sha}%00/{expires}/{signature}",
        f"/references/{sha.upper()}/{expires}/{signature}",
        f"/x/references/{sha}/{expires}/{signature}",
        "/references/",
        "/",
        "/favicon.ico",
        "/.env",
    ):
        answer = await listeners.ask(listeners.public, target)
        assert shown(answer) == unknown, target
        assert b"SQLite format" not in answer[2]


async def test_every_other_method_gets_the_same_bare_404_on_the_public_listener(
    listeners: Listeners,
) -> None:
    """Not a 405 with an ``Allow`` list: the public listener tells a stranger nothing about
    what it serves."""
    unknown = shown(await bare_404(listeners))
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        for target in (listeners.link_path, "/metrics", "/healthz", "/"):
            answer = await listeners.ask(listeners.public, target, method)
            assert shown(answer) == unknown, (method, target)
            assert "allow" not in answer[1]
    status, _, body = await listeners.ask(listeners.public, listeners.link_path)
    assert (status, body) == (200, listeners.picture)


async def test_the_public_listener_names_no_server_software(listeners: Listeners) -> None:
    """No ``Server: Python/3.x aiohttp/3.y`` to pick exploits by, on any answer it gives:
    the picture, a 404, and the 400s aiohttp writes for requests it can't parse."""
    answers = [
        await listeners.ask(listeners.public, listeners.link_path),
        await listeners.ask(listeners.public, listeners.link_path, "HEAD"),
        await listeners.ask(listeners.public, "/metrics"),
        await listeners.ask(listeners.public, "/metrics", "POST"),
        await listeners.raw(listeners.public, b"GARBAGE\r\n\r\n"),
        await listeners.raw(listeners.public, b"GET / HTTP/1.1\r\nHost: bot\r\nBad Header\r\n\r\n"),
        await listeners.raw(
            listeners.public, f"GET /{'a' * 100_000} HTTP/1.1\r\nHost: bot\r\n\r\n".encode()
        ),
    ]
    statuses = [status for status, _, _ in answers]
    assert statuses[:4] == [200, 200, 404, 404]
    assert all(status in (400, 414, 431) for status in statuses[4:]), statuses
    for _, headers, body in answers:
        assert "server" not in headers
        assert b"aiohttp" not in body.lower()
        assert b"python" not in body.lower()


async def test_a_public_address_without_the_public_listener_is_refused_at_start(
    tmp_path: Path,
) -> None:
    """An operator whose proxy forwarded ``/references/`` to ``BOT_HTTP_LISTEN`` learns at
    start, in one sentence, which setting to add: not from users whose pictures fail."""
    from bot.config import ConfigError

    with pytest.raises(ConfigError) as refused:
        Settings.from_env(
            {
                "WIREFLOW_API_KEY": WIREFLOW_KEY,
                "WIREFLOW_WORKFLOW_ID": "wf-1",
                "BOT_HTTP_LISTEN": "127.0.0.1:8080",
                "BOT_PUBLIC_URL": "https://bot.example.org",
            },
            env_file=None,
        )
    assert str(refused.value) == (
        "BOT_PUBLIC_URL is set but BOT_PUBLIC_LISTEN is not: set BOT_PUBLIC_LISTEN to the "
        "host:port your proxy forwards https://bot.example.org to (the pictures "
        "are served there alone; BOT_HTTP_LISTEN keeps /healthz and /metrics and serves no "
        "picture)"
    )


async def test_the_public_listener_can_not_share_the_private_listeners_address() -> None:
    from bot.config import ConfigError

    with pytest.raises(ConfigError) as refused:
        Settings.from_env(
            {
                "WIREFLOW_API_KEY": WIREFLOW_KEY,
                "WIREFLOW_WORKFLOW_ID": "wf-1",
                "BOT_HTTP_LISTEN": "0.0.0.0:8080",
                "BOT_PUBLIC_LISTEN": "0.0.0.0:8080",
                "BOT_PUBLIC_URL": "https://bot.example.org",
            },
            env_file=None,
        )
    assert str(refused.value) == (
        "BOT_PUBLIC_LISTEN must not be BOT_HTTP_LISTEN's address: give it a port of its own, "
        "which is all your proxy reaches (/healthz and /metrics stay on BOT_HTTP_LISTEN)"
    )


async def test_a_stranger_sending_requests_that_cannot_be_parsed_writes_nothing_to_the_log(
    listeners: Listeners, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp logs each request it can't parse with its traceback, at ERROR: on the public
    listener anyone could fill the operator's disk with them, as fast as they can connect.
    Each is still answered 400; the report is there at DEBUG, for a diagnosis."""
    garbage = [
        b"GET / HTTP/1.1\r\nHost: bot\r\nBad Header\r\n\r\n",
        f"GET /{'a' * 10_000} HTTP/1.1\r\nHost: bot\r\n\r\n".encode(),
        b"GET / HTTP/1.1\r\nHost: bot\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/7.7\r\nHost: bot\r\n\r\n",
    ]
    caplog.set_level(logging.INFO)
    for request in garbage * 5:
        status, _, _ = await listeners.raw(listeners.public, request)
        assert status in (400, 414, 431, 505)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []
    caplog.set_level(logging.DEBUG)
    await listeners.raw(listeners.public, garbage[0])
    assert any("Error handling request" in r.getMessage() for r in caplog.records)


async def test_an_expired_link_or_one_whose_expiry_was_pushed_opens_nothing_by_get_or_head(
    listeners: Listeners,
) -> None:
    unknown = shown(await bare_404(listeners))
    sha, expires, signature = listeners.link_path.split("/")[2:]
    old = ReferenceLinks.keyed_by(WIREFLOW_KEY, "")
    old._clock = lambda: time.time() - 2 * LINK_SECONDS  # signed two hours ago: expired
    expired = old.link(sha)
    pushed = f"/references/{sha}/{int(expires) + LINK_SECONDS}/{signature}"
    padded = f"/references/{sha}/0{expires}/{signature}"  # the same expiry, written longer
    for method in ("GET", "HEAD"):
        for target in (expired, pushed):
            answer = await listeners.ask(listeners.public, target, method)
            assert shown(answer)[0] == 404, (method, target)
            assert listeners.picture not in answer[2]
        assert shown(await listeners.ask(listeners.public, expired)) == unknown
    status, _, body = await listeners.ask(listeners.public, padded)
    assert (status, body) == (200, listeners.picture)  # nothing gained: the same picture


async def test_what_a_stranger_adds_to_a_request_changes_nothing_a_link_serves(
    listeners: Listeners,
) -> None:
    """A Host, a proxy's forwarding or rewriting headers or a query opens nothing more; an
    encoded slash in a live link is that link, no other. (A Range: test_reference_links.)"""
    unknown = shown(await bare_404(listeners))
    path = listeners.link_path
    encoded = path.replace("/", "%2F").replace("%2Freferences", "/references", 1)
    extras = (
        "X-Host: localhost\r\n",
        "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: internal\r\n",
        "X-Original-URL: /metrics\r\nX-Rewrite-URL: /metrics\r\n",
    )
    for extra in extras:
        for target, genuine in ((path, True), (path + "?download=1", True), ("/metrics", False)):
            host = "Host: localhost:1" if "X-Host" in extra else "Host: bot"
            request = f"GET {target} HTTP/1.1\r\n{host}\r\n{extra}Connection: close\r\n\r\n"
            status, headers, body = await listeners.raw(listeners.public, request.encode())
            if genuine:  # the whole picture, or nothing
                assert (status, body) == (200, listeners.picture), (extra, target)
            else:
                assert shown((status, headers, body)) == unknown, (extra, target)
    answer = await listeners.ask(listeners.public, encoded)
    assert answer[0] in (200, 404)
    assert answer[2] in (listeners.picture, unknown[2])


async def test_a_request_heavy_with_headers_is_refused_before_it_costs_memory(
    listeners: Listeners,
) -> None:
    """Headers without end would hold as much a connection as is sent (each line may be
    8 KB): refused past aiohttp's 128 header lines, at most about 1 MB."""
    headers = "".join(f"X-{n}: {'a' * 100}\r\n" for n in range(200))
    request = f"GET / HTTP/1.1\r\nHost: bot\r\n{headers}\r\n".encode()
    status, _, _ = await listeners.raw(listeners.public, request)
    assert status in (400, 431)
