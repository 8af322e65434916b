"""A media host over TLS on a local address, and a DNS that says what a test wants.

``FakeMediaHost`` serves one picture at every path over HTTP/1.1 with keep-alive, under a
certificate from a test CA (trustme) for the names it is given, and records every connection:
the host name the client asked for in TLS (SNI), the requests it carried (Host header, path),
and whether it is still open; and every TLS handshake, failed ones too. A test makes a path
answer something else (``answer``), or wait (``hold``/``release``), or hang up on the next
requests that come on a kept connection (``hang_ups``: a server whose idle timeout fired as the
request came). ``resolve_as`` points host names at local addresses.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import pytest
import trustme
from PIL import Image


def picture(color: tuple[int, int, int] = (10, 200, 30)) -> bytes:
    out = BytesIO()
    Image.new("RGB", (40, 30), color).save(out, "PNG")
    return out.getvalue()


def answer(status: int, body: bytes = b"", **headers: str) -> bytes:
    """An HTTP/1.1 answer with its Content-Length."""
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


PICTURE = answer(200, picture(), Content_Type="image/png")


@dataclass
class Connection:
    """One connection the client opened: the name it asked for in TLS, what it carried."""

    sni: str | None
    requests: list[tuple[str, str]] = field(default_factory=list)  # (Host header, path)
    open: bool = True


class FakeMediaHost:
    """``async with FakeMediaHost(ca, ["a.example"]) as host:``, at ``host.address:host.port``."""

    def __init__(
        self, ca: trustme.CA, names: Sequence[str], address: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.address = address
        self.port = port
        self.connections: list[Connection] = []
        # path → the raw answer (default: ``picture()``); b"": the connection closes unanswered
        self.answers: dict[str, bytes] = {}
        self._held: dict[str, asyncio.Event] = {}
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*names).configure_cert(self._tls)
        self._sni: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()
        self._tls.sni_callback = self._named
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task[None]] = set()
        self.handshakes: list[str | None] = []  # the name of every TLS handshake, passed or not
        self.hang_ups = 0  # the next requests on a kept connection closed unanswered

    async def __aenter__(self) -> FakeMediaHost:
        self._server = await asyncio.start_server(
            self._serve, self.address, self.port, ssl=self._tls
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await asyncio.gather(*self._serving, return_exceptions=True)
        await self._server.wait_closed()

    def answer(self, path: str, raw: bytes) -> None:
        """``path`` answers ``raw`` (bytes on the wire, as they are) from now on."""
        self.answers[path] = raw

    def hold(self, path: str) -> None:
        """Requests for ``path`` wait, their connection busy, until ``release(path)``."""
        self._held[path] = asyncio.Event()

    def release(self, path: str) -> None:
        self._held.pop(path).set()

    def open_connections(self) -> int:
        return sum(c.open for c in self.connections)

    async def settled(self, open_at_most: int, timeout: float = 5.0) -> None:
        """Until at most ``open_at_most`` connections are open (a close arrives as an EOF)."""
        async with asyncio.timeout(timeout):
            while self.open_connections() > open_at_most:  # noqa: ASYNC110 - nothing to await
                await asyncio.sleep(0.01)

    def _named(self, tls: Any, name: str | None, context: ssl.SSLContext) -> None:
        self._sni[tls] = name
        self.handshakes.append(name)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self._sni.get(writer.get_extra_info("ssl_object")))
        self.connections.append(connection)
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                path = head[0].split(" ")[1]
                headers = dict(line.split(": ", 1) for line in head[1:] if line)
                connection.requests.append((headers.get("Host", ""), path))
                if self.hang_ups and len(connection.requests) > 1:
                    self.hang_ups -= 1
                    return
                if path in self._held:
                    await self._held[path].wait()
                raw = self.answers.get(path, PICTURE)
                if not raw:  # an answer of nothing: the connection closes unanswered
                    return
                writer.write(raw)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            connection.open = False
            self._writers.discard(writer)
            self._serving.discard(task)
            writer.close()


def resolve_as(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Make ``getaddrinfo`` answer ``answers[host]`` (one address per call, the last repeated).

    Returns the list of hosts asked, in order. Other hosts resolve as usual.
    """
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    asked: list[str] = []

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return await real(host, port, *args, **kwargs)
        asked.append(name)
        queue = answers[name]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, int(port or 443)))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return asked
