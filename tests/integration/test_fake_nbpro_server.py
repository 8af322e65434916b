"""Self-tests of the fake nano-banana-pro.net server, spoken to with plain httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fakes.nbpro_server import DEFAULT_KEY, ENDPOINT, FakeNbproServer

AUTH = {"Authorization": f"Bearer {DEFAULT_KEY}"}


def png(size: tuple[int, int] = (20, 10)) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, (9, 9, 9)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def nbpro() -> AsyncIterator[FakeNbproServer]:
    async with FakeNbproServer() as server:
        yield server


@pytest.fixture
async def http(nbpro: FakeNbproServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=nbpro.base_url, headers=AUTH) as client:
        yield client


async def test_keys_and_plans(nbpro: FakeNbproServer) -> None:
    async with httpx.AsyncClient(base_url=nbpro.base_url) as plain:
        missing = await plain.post(ENDPOINT, json={"prompt": "x"})
        wrong = await plain.post(
            ENDPOINT, json={"prompt": "x"}, headers={"Authorization": "Bearer sk-x"}
        )
        nbpro.plan = "free"
        free = await plain.post(ENDPOINT, json={"prompt": "x"}, headers=AUTH)
    assert (missing.status_code, missing.json()) == (401, {"error": "Missing API key"})
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid API key"})
    assert free.status_code == 403
    assert "subscription" in free.json()["error"]


async def test_json_render_and_download(http: httpx.AsyncClient, nbpro: FakeNbproServer) -> None:
    answer = await http.post(
        ENDPOINT, json={"prompt": "a cat", "size": "2k", "aspectRatio": "16:9"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "nano-banana-2-2k"
    assert isinstance(body["created"], int)
    (image,) = body["images"]
    picture = await http.get(image["url"])
    assert picture.headers["content-type"] == "image/png"
    assert Image.open(BytesIO(picture.content)).size == (128, 72)
    assert nbpro.generated == 1
    assert nbpro.render_requests()[-1].json == {
        "prompt": "a cat",
        "size": "2k",
        "aspectRatio": "16:9",
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"size": "1k"}, "prompt is required"),
        ({"prompt": " "}, "prompt is required"),
        ({"prompt": "x" * 5001}, "at most 5000"),
        ({"prompt": "x", "size": "1K"}, "Invalid size"),
        ({"prompt": "x", "aspectRatio": "4:5"}, "Unsupported aspectRatio"),
        ({"prompt": "x", "seed": 3}, "Unknown parameter: seed"),
        ({"prompt": "x", "image": "https://elsewhere.example/cat.png"}, "Failed to download"),
        ({"prompt": "x", "image": [1]}, "URL or a list of URLs"),
    ],
)
async def test_json_validation(
    http: httpx.AsyncClient, nbpro: FakeNbproServer, payload: dict[str, Any], message: str
) -> None:
    response = await http.post(ENDPOINT, json=payload)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert nbpro.generated == 0


async def test_url_references_must_be_fetchable(http: httpx.AsyncClient) -> None:
    made = (await http.post(ENDPOINT, json={"prompt": "a cat"})).json()["images"][0]["url"]
    again = await http.post(ENDPOINT, json={"prompt": "again", "image": [made, made]})
    assert again.status_code == 200, again.text


async def test_multipart_uploads(http: httpx.AsyncClient, nbpro: FakeNbproServer) -> None:
    files = [
        ("image", ("a.png", png(), "image/png")),
        ("image", ("b.png", png((5, 5)), "image/png")),
    ]
    answer = await http.post(ENDPOINT, data={"prompt": "mix", "size": "1k"}, files=files)
    assert answer.status_code == 200, answer.text
    assert [u.filename for u in nbpro.uploads[-1]] == ["a.png", "b.png"]
    assert nbpro.uploads[-1][0].data == png()
    assert nbpro.render_requests()[-1].json == {"prompt": "mix", "size": "1k"}
    too_big = [("image", ("big.png", b"\x89PNG" + b"\0" * 2_500_000, "image/png"))]
    big = await http.post(ENDPOINT, data={"prompt": "x"}, files=too_big)
    assert (big.status_code, big.json()["error"]) == (400, "Image exceeds the 2.5MB limit")
    junk = await http.post(
        ENDPOINT, data={"prompt": "x"}, files=[("image", ("j.png", b"junk", "image/png"))]
    )
    assert junk.json()["error"] == "Invalid image file"
    many = [("image", (f"{i}.png", png(), "image/png")) for i in range(9)]
    assert (
        "plan allows 8"
        in (await http.post(ENDPOINT, data={"prompt": "x"}, files=many)).json()["error"]
    )
    nbpro.plan = "pro"
    assert (await http.post(ENDPOINT, data={"prompt": "x"}, files=many)).status_code == 200
    odd = await http.post(
        ENDPOINT, data={"prompt": "x"}, files=[("mask", ("m.png", png(), "image/png"))]
    )
    assert odd.json()["error"] == "Unknown parameter: mask"
    form = await http.post(ENDPOINT, data={"prompt": "x"})  # urlencoded: neither documented form
    assert form.json()["error"].startswith("Content-Type must be")


async def test_concurrency_credits_and_switches(
    http: httpx.AsyncClient, nbpro: FakeNbproServer
) -> None:
    nbpro.latency = 0.2
    answers = await asyncio.gather(*(http.post(ENDPOINT, json={"prompt": "x"}) for _ in range(7)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429] * 2
    assert "plan allows 5" in next(a for a in answers if a.status_code == 429).json()["error"]
    assert (nbpro.peak, nbpro.throttled, nbpro.in_flight) == (5, 2, 0)
    nbpro.latency, nbpro.credits = 0, 6
    assert (await http.post(ENDPOINT, json={"prompt": "x", "size": "4k"})).status_code == 200
    short = await http.post(ENDPOINT, json={"prompt": "x", "size": "4k"})
    assert (short.status_code, short.json()) == (402, {"error": "Insufficient credits"})
    assert nbpro.credits == 1
    nbpro.credits = None
    nbpro.empty_next()
    nbpro.fail_next(500)
    nbpro.fail_next(429, retry_after=2)
    failed = await http.post(ENDPOINT, json={"prompt": "x"})  # injected failures come first
    assert (failed.status_code, failed.json()) == (500, {"error": "Generation failed"})
    busy = await http.post(ENDPOINT, json={"prompt": "x"})
    assert (busy.status_code, busy.headers["retry-after"]) == (429, "2")
    assert (await http.post(ENDPOINT, json={"prompt": "x"})).json()["images"] == []


async def test_download_switches(http: httpx.AsyncClient, nbpro: FakeNbproServer) -> None:
    url = (await http.post(ENDPOINT, json={"prompt": "x"})).json()["images"][0]["url"]
    nbpro.serve_next(b"not an image")
    assert (await http.get(url)).content == b"not an image"
    nbpro.redirect_next("https://elsewhere.example/x.png")
    redirected = await http.get(url)
    assert (redirected.status_code, redirected.headers["location"]) == (
        302,
        "https://elsewhere.example/x.png",
    )
    nbpro.media_status = 410
    assert (await http.get(url)).status_code == 410
    assert [d.status for d in nbpro.downloads] == [200, 302, 410]
