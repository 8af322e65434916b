"""Picture downloads from a media host over TLS: ``python -m bench.media_downloads [--pictures N]``.

The fake Flow server serves its pictures from the API's own origin over plain http, so the e2e
benchmark never meets a media host's TLS. Here the bot's media client (``new_media_http``:
checked address, pinned connection, SNI) fetches pictures from a local TLS media host
(``tests/fakes/media_host.py``, a test CA's certificate), one link after another and four at
a time, keeping connections per host name (as shipped) or opening one per picture (the same
transport keeping none: what the bot did before). The media host runs on its own event loop in
another thread; "loop CPU" is the CPU time of the thread running the bot's event loop (the
picture check, in a worker thread as in the bot, is not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO

import httpx
import pytest
import trustme
from PIL import Image

from bot.providers import media
from bot.providers.media_pools import MediaTransport
from tests.fakes.media_host import FakeMediaHost, answer

NAME = "media.example"


def photo() -> bytes:
    """A 1024×1024 JPEG of about the size Flow sends."""
    out = BytesIO()
    Image.effect_noise((1024, 1024), 40).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


@contextmanager
def media_host(ca: trustme.CA, body: bytes) -> Iterator[FakeMediaHost]:
    """A ``FakeMediaHost`` serving ``body`` at /p.jpg, on its own loop in another thread."""
    loop = asyncio.new_event_loop()
    host = FakeMediaHost(ca, [NAME])
    host.answer("/p.jpg", answer(200, body, Content_Type="image/jpeg"))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(host.__aenter__(), loop).result()
    try:
        yield host
    finally:
        asyncio.run_coroutine_threadsafe(host.__aexit__(None, None, None), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def client(kept: bool, trusting: ssl.SSLContext) -> httpx.AsyncClient:
    if kept:
        return media.new_media_http(read=10, connect=10, tls=trusting)
    none_kept = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    return httpx.AsyncClient(
        transport=MediaTransport(none_kept, trusting), trust_env=False, timeout=10
    )


async def run(
    host: FakeMediaHost, kept: bool, trusting: ssl.SSLContext, n: int, at_once: int
) -> tuple[float, float, float]:
    """Connections opened per picture, wall and loop CPU milliseconds per picture."""
    hosts = media.MediaHosts([NAME], "https://api.flow.test")
    link = f"https://{NAME}:{host.port}/p.jpg"
    opened = len(host.connections)
    gate = asyncio.Semaphore(at_once)

    async def one() -> None:
        async with gate:
            await media.fetch_image(
                http, hosts, link, max_bytes=50 * 2**20, max_pixels=50_000_000, seconds=30
            )

    async with client(kept, trusting) as http:
        await one()  # warm: the TLS context, the first connection
        wall, cpu = time.perf_counter(), time.thread_time()
        await asyncio.gather(*(one() for _ in range(n)))
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return (len(host.connections) - opened - 1) / n, wall * 1000 / n, cpu * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=300, help="per measurement (300)")
    parser.add_argument("--runs", type=int, default=3, help="median of this many (3)")
    args = parser.parse_args()
    ca = trustme.CA()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    small = BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(small, "PNG")
    print(f"{args.pictures} downloads per run, medians of {args.runs} runs")
    print(
        f"{'picture':<12}{'at once':>8}  {'connections':<26}{'opened/pic':>11}{'ms/pic':>8}"
        f"{'loop CPU ms/pic':>17}"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(media, "is_public", lambda ip: ip.is_loopback)
        for label, body in (("64×64 PNG", small.getvalue()), ("1024² JPEG", photo())):
            with media_host(ca, body) as host:
                for at_once in (1, 4):
                    for kept in (False, True):
                        figures = [
                            asyncio.run(resolved(host, kept, trusting, args.pictures, at_once))
                            for _ in range(args.runs)
                        ]
                        per, ms, cpu = (statistics.median(f[i] for f in figures) for i in range(3))
                        how = "kept per host name" if kept else "one per picture (before)"
                        print(
                            f"{label:<12}{at_once:>8}  {how:<26}{per:>11.2f}{ms:>8.2f}{cpu:>17.2f}"
                        )


async def resolved(
    host: FakeMediaHost, kept: bool, trusting: ssl.SSLContext, n: int, at_once: int
) -> tuple[float, float, float]:
    """``run``, with the media host's name resolving to its loopback address."""
    loop = asyncio.get_running_loop()

    async def getaddrinfo(name: object, port: object, *args: object, **kwargs: object) -> object:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host.address, port))]

    loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign,assignment]
    return await run(host, kept, trusting, n, at_once)


if __name__ == "__main__":
    main()
