"""The reference links (``bot.reference_links``): what someone who sees or guesses one tries.

A link is served by the bot's real public listener (``reference_links.serve``) from a real store;
requests go over a real socket, raw where an HTTP client would tidy the path first. Every
refusal must be the same bare 404 an unknown path gets, and only a genuine, live link may make
the store be read.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bot import reference_links
from bot.core.character_records import CharacterImage
from bot.core.domain import GenerationRequest, Upload
from bot.core.people import Owner, UserKey
from bot.reference_links import LINK_SECONDS, ReferenceLinks
from bot.store import open_store
from tests.conftest import AnyStore, image_bytes

KEY = hashlib.sha256(b"test reference links").digest()
CAROLS_OWNER = UserKey("discord", "8")
NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class CountingStore:
    """The store, with every read of a picture counted."""

    store: AnyStore
    reads: list[str] = field(default_factory=list)

    async def picture(self, sha256: str) -> bytes | None:
        self.reads.append(sha256)
        return await self.store.picture(sha256)


@dataclass
class Served:
    links: ReferenceLinks
    clock: Clock
    store: CountingStore
    port: int
    http: httpx.AsyncClient
    cat: tuple[str, bytes]  # a user's picture held for a job: sha256, bytes
    dog: tuple[str, bytes]
    carol: tuple[str, bytes]  # another user's character's picture
    carol_id: int

    def link(self, picture: tuple[str, bytes]) -> str:
        return self.links.link(picture[0])

    async def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request exactly as written (no client tidies its path): status, headers, body."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(request)
            await writer.drain()
            async with asyncio.timeout(5):  # the answer must come without the rest of a body
                head = await reader.readuntil(b"\r\n\r\n")
                status_line, *lines = head.decode("latin-1").strip().split("\r\n")
                headers = {
                    k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)
                }
                body = await reader.readexactly(int(headers.get("content-length", 0)))
        finally:
            writer.close()
        return int(status_line.split()[1]), headers, body

    async def raw_get(self, target: str) -> tuple[int, dict[str, str], bytes]:
        return await self.raw(
            f"GET {target} HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n".encode()
        )


def job(sha256: str) -> GenerationRequest:
    return GenerationRequest("a fox", "nano-banana-2", "1:1", 1, 5, (Upload(sha256, "image/png"),))


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with open_store(f"sqlite:///{tmp_path}/bot.sqlite3") as store:
        pictures = []
        for data in (image_bytes("PNG", color="orange"), image_bytes("JPEG", color="brown")):
            sha = hashlib.sha256(data).hexdigest()
            owner = Owner("telegram", "7", "7")
            await store.add_job(owner, job(sha), {sha: data}, day="2026-11-26")
            pictures.append((sha, data))
        face = image_bytes("PNG", color="pink")
        carol = (hashlib.sha256(face).hexdigest(), face)
        made = await store.add_character(
            CAROLS_OWNER,
            "Carol",
            "jo@example.com",
            "char-1",
            [CharacterImage(carol[0], "image/png", face)],
        )
        assert made is not None
        clock = Clock()
        counting = CountingStore(store)
        # The server checks links by the key alone; they are made with its address below.
        checker = ReferenceLinks("", KEY, clock=clock)
        async with reference_links.serve(("127.0.0.1", 0), checker, counting) as port:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base) as http:
                links = ReferenceLinks(base, KEY, clock=clock)
                yield Served(
                    links, clock, counting, port, http, pictures[0], pictures[1], carol, made.id
                )


def swap(link: str, part: int, value: str) -> str:
    """``link`` with one of its last three path parts (0 id, 1 expiry, 2 signature) replaced."""
    head, *parts = link.rsplit("/", 3)
    parts[part] = value
    return "/".join([head, *parts])


async def bare_404(served: Served) -> httpx.Response:
    """What a path the server doesn't know gets: the refusal every refused link must match."""
    return await served.http.get("/no-such-path")


def same_refusal(answer: httpx.Response, unknown: httpx.Response) -> bool:
    def shown(r: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
        return r.status_code, r.content, {k: v for k, v in r.headers.items() if k != "date"}

    return shown(answer) == shown(unknown)


async def test_a_genuine_link_serves_the_picture_as_stored_and_nothing_more(
    served: Served,
) -> None:
    for (sha, data), kind in ((served.cat, "image/png"), (served.dog, "image/jpeg")):
        answer = await served.http.get(served.link((sha, data)))
        assert answer.status_code == 200
        assert answer.content == data
        assert answer.headers["content-type"] == kind
        assert answer.headers["cache-control"] == "private, no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in answer.headers


async def test_a_forged_signature_gets_a_bare_404_without_reading_the_store(
    served: Served,
) -> None:
    link = served.link(served.cat)
    signature = link.rsplit("/", 1)[1]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    other_key = ReferenceLinks("", b"another bot's key").link(served.cat[0]).rsplit("/", 1)[1]
    unknown = await bare_404(served)
    for forged in (flipped, "0" * 64, other_key, signature.upper(), signature[:-2]):
        answer = await served.http.get(swap(link, 2, forged))
        assert same_refusal(answer, unknown), forged
    assert served.store.reads == []


async def test_an_expired_link_gets_a_bare_404(served: Served) -> None:
    link = served.link(served.cat)
    served.clock.now += LINK_SECONDS
    assert (await served.http.get(link)).status_code == 200  # its last second
    served.clock.now += 1
    assert same_refusal(await served.http.get(link), await bare_404(served))
    later = int(NOW) + 10 * LINK_SECONDS
    assert same_refusal(await served.http.get(swap(link, 1, str(later))), await bare_404(served))


async def test_a_signature_for_one_picture_fetches_no_other(served: Served) -> None:
    """Another picture's id under this link's valid signature: that picture isn't served."""
    link = served.link(served.cat)
    answer = await served.http.get(swap(link, 0, served.dog[0]))
    assert same_refusal(answer, await bare_404(served))
    assert served.dog[1] not in answer.content
    assert served.store.reads == []


async def test_a_signed_link_for_a_users_picture_fetches_no_characters_picture(
    served: Served,
) -> None:
    """Characters' pictures are served too, by their id: a link for a user's reference, its
    signature kept and a character's id put in, is refused like any forgery, unread."""
    link = served.link(served.cat)
    answer = await served.http.get(swap(link, 0, served.carol[0]))
    assert same_refusal(answer, await bare_404(served))
    assert served.carol[1] not in answer.content
    assert served.store.reads == []


async def test_a_link_to_a_characters_picture_gets_the_same_404_once_it_is_deleted(
    served: Served,
) -> None:
    """The link the bot made for a job drawing Carol serves her picture; once her owner
    deletes her, the same link gets the bare 404 of a path that never existed."""
    link = served.link(served.carol)
    answer = await served.http.get(link)
    assert (answer.status_code, answer.content) == (200, served.carol[1])
    assert await served.store.store.delete_character(CAROLS_OWNER, served.carol_id)
    assert same_refusal(await served.http.get(link), await bare_404(served))
    assert served.store.reads == [served.carol[0]] * 2


async def test_a_genuine_link_to_a_picture_no_longer_held_gets_the_same_404(
    served: Served,
) -> None:
    """Its job ended and the picture was dropped: nothing tells that apart from a forgery."""
    gone = hashlib.sha256(b"a picture nobody holds").hexdigest()
    answer = await served.http.get(served.links.link(gone))
    assert same_refusal(answer, await bare_404(served))
    assert served.store.reads == [gone]


@pytest.mark.parametrize(
    "target",
    [
        "/references/../bot.sqlite3",
        "/references/%2e%2e/%2e%2e/bot.sqlite3",
        "/references/..%2f..%2fbot.sqlite3",
        "/references/%2E%2E%5C%2E%2E%5Cbot.sqlite3",
        "/references/{sha}/../../bot.sqlite3",
        "/references/{sha}/{expires}/{signature}/../../../bot.sqlite3",
        "/references/{sha}/{expires}/{signature}/extra",
        "/references/{sha}%00/{expires}/{signature}",
        "/references/{sha}.png/{expires}/{signature}",
        "/references/{SHA}/{expires}/{signature}",
        "/references//etc/passwd",
        "/references/",
        "//references/{sha}/{expires}/{signature}",
    ],
)
async def test_a_path_that_is_not_exactly_a_link_reaches_no_file(
    served: Served, target: str
) -> None:
    link = served.link(served.cat)
    _, _, _, _, sha, expires, signature = link.split("/")
    path = target.format(sha=sha, SHA=sha.upper(), expires=expires, signature=signature)
    status, headers, body = await served.raw_get(path)
    assert status in (400, 404), path
    assert b"SQLite format" not in body
    assert served.cat[1] not in body
    assert not headers.get("content-type", "").startswith("image/")
    assert served.store.reads == []


async def test_head_gets_the_headers_alone_and_the_same_refusal(served: Served) -> None:
    link = served.link(served.cat)
    answer = await served.http.head(link)
    assert answer.status_code == 200
    assert answer.content == b""
    assert int(answer.headers["content-length"]) == len(served.cat[1])
    forged = await served.http.head(swap(link, 2, "1" * 64))
    unknown = await served.http.head("/no-such-path")
    assert (forged.status_code, forged.content) == (unknown.status_code, b"") == (404, b"")


async def test_a_range_request_gets_the_whole_picture_or_the_same_refusal(served: Served) -> None:
    """No partial answers to probe with: a range is ignored, a forged one refused as any."""
    link = served.link(served.cat)
    for ranges in ("bytes=0-3", "bytes=-1", "bytes=0-0,5-9,100000000-", "bytes=99999999-"):
        answer = await served.http.get(link, headers={"Range": ranges})
        assert (answer.status_code, answer.content) == (200, served.cat[1])
        assert "content-range" not in answer.headers
        forged = await served.http.get(swap(link, 2, "2" * 64), headers={"Range": ranges})
        assert same_refusal(forged, await bare_404(served))


async def test_a_huge_request_is_refused_and_the_server_keeps_serving(served: Served) -> None:
    link = served.link(served.cat)
    long_path = "/references/" + "a" * 100_000
    status, _, _ = await served.raw_get(long_path)
    assert status in (400, 414)
    huge_header = f"GET {link} HTTP/1.1\r\nHost: bot\r\nX-Pad: {'b' * 100_000}\r\n\r\n"
    status, _, _ = await served.raw(huge_header.encode())
    assert status in (400, 431)
    many = "".join(f"X-H{i}: {i}\r\n" for i in range(10_000))
    status, _, _ = await served.raw(f"GET {link} HTTP/1.1\r\nHost: bot\r\n{many}\r\n".encode())
    assert status in (400, 431)
    # A body nobody asked for, announced at 10 MB: answered at once, never read into memory.
    body_head = (
        f"GET {swap(link, 2, '3' * 64)} HTTP/1.1\r\nHost: bot\r\nContent-Length: 10485760\r\n"
        "Connection: close\r\n\r\n"
    )
    status, _, _ = await served.raw(body_head.encode() + b"x" * 65_536)
    assert status == 404
    assert served.store.reads == []
    post = await served.http.post(link, content=b"x" * 1000)
    assert same_refusal(post, await bare_404(served))
    answer = await served.http.get(link)
    assert (answer.status_code, answer.content) == (200, served.cat[1])


async def test_a_signature_is_compared_in_constant_time_and_before_the_store(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing can't be measured honestly on a shared machine (an HMAC costs far more than the
    compare it would time), so the test holds the property by construction: every request
    with a well-formed link is judged by ``hmac.compare_digest`` — forged, expired, genuine —
    and a refused one never reaches the store, so whether a picture exists can't be timed."""
    compared: list[tuple[str, str]] = []
    real: Callable[[str, str], bool] = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    link = served.link(served.cat)
    guesses = [swap(link, 2, c * 64) for c in "0123456789abcdef"]
    for guess in guesses:
        assert (await served.http.get(guess)).status_code == 404
    served.clock.now += LINK_SECONDS + 1
    assert (await served.http.get(link)).status_code == 404
    served.clock.now = NOW
    assert (await served.http.get(link)).status_code == 200
    assert len(compared) == len(guesses) + 2
    assert served.store.reads == [served.cat[0]]  # the genuine, live one alone


@pytest.mark.parametrize("status", [400, 402, 404, 429, 500])
def test_a_refusal_quoting_a_link_keeps_it_out_of_what_users_admins_and_logs_read(
    status: int,
) -> None:
    """Wireflow names the image input it could not use, link and all: its detail is what a
    refusal tells the user (in a group, where everyone reads it), what admins are alerted
    with and what is logged, and the link fetches that picture for an hour."""
    from bot.providers.http import Answer
    from bot.providers.wireflow_messages import error_for

    link = f"https://bot.example/references/{'a' * 64}/1900000000/{'b' * 64}"
    body = {"error": f"image1: could not fetch {link} (403)"}
    error = error_for(Answer(status, httpx.Headers(), body))
    assert "references/" not in error.detail
    assert "b" * 64 not in str(error)
    assert error.detail == "image1: could not fetch ‹link› (403)"


def test_a_megabyte_of_one_word_from_the_upstream_is_searched_for_links_in_linear_time() -> None:
    """Looking back from each "/references/" for where its address begins, a regular
    expression took about n² steps over a word with no space: an hour of the bot's loop for
    the megabyte an answer may hold. Every link in it is still found."""
    from bot.providers.wireflow_messages import unlinked

    link = f"https://bot.example/references/{'a' * 64}/1900000000/{'b' * 64}"
    word = "x" * 500_000
    text = f"{word}/references/{word}{link}:{link[:-9]} and {link[:40]}"
    assert unlinked(text) == "‹link›‹link›‹link› and ‹link›"  # cut short ones too
