"""Self-tests of the fake Gemini API server, spoken to with plain httpx."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.fakes.gemini_server import DEFAULT_KEY, FakeGeminiServer

KEY = {"x-goog-api-key": DEFAULT_KEY}
PRO, FLASH, OLD = "gemini-3-pro-image", "gemini-3.1-flash-image", "gemini-2.5-flash-image"


def png(size: tuple[int, int] = (20, 10)) -> str:
    out = BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def body(prompt: str = "a cat", *images: str, **config: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": prompt}]
    parts += [{"inlineData": {"mimeType": "image/png", "data": d}} for d in images]
    generation: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    generation.update(config)
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": generation}


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGeminiServer]:
    async with FakeGeminiServer() as server:
        yield server


@pytest.fixture
async def http(gemini: FakeGeminiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gemini.base_url + "/v1beta", headers=KEY) as client:
        yield client


async def generate(http: httpx.AsyncClient, model: str, payload: Any) -> httpx.Response:
    return await http.post(f"/models/{model}:generateContent", json=payload)


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == response.status_code
    return error


async def test_keys_missing_wrong_and_in_the_query(gemini: FakeGeminiServer) -> None:
    async with httpx.AsyncClient(base_url=gemini.base_url + "/v1beta") as plain:
        missing = await plain.get(f"/models/{PRO}")
        wrong = await plain.get(f"/models/{PRO}", headers={"x-goog-api-key": "nope"})
        by_query = await plain.get(f"/models/{PRO}", params={"key": DEFAULT_KEY})
    assert (missing.status_code, error_of(missing)["status"]) == (403, "PERMISSION_DENIED")
    assert "unregistered callers" in error_of(missing)["message"]
    assert (wrong.status_code, error_of(wrong)["status"]) == (400, "INVALID_ARGUMENT")
    assert error_of(wrong)["details"][0]["reason"] == "API_KEY_INVALID"
    assert by_query.json()["name"] == f"models/{PRO}"
    assert gemini.requests[-1].path.endswith(f"key={DEFAULT_KEY}")


async def test_models_listed_and_retired_ones_not_found(http: httpx.AsyncClient) -> None:
    listed = (await http.get("/models")).json()["models"]
    assert {m["name"] for m in listed} == {f"models/{m}" for m in (PRO, FLASH, OLD)}
    for retired in ("gemini-3-pro-image-preview", "imagen-4"):
        info = await http.get(f"/models/{retired}")
        call = await generate(http, retired, body())
        assert info.status_code == call.status_code == 404
        assert "is not found for API version v1beta" in error_of(call)["message"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"contents": [], "generationConfig": {}}, "contents is not specified"),
        ({**body(), "extra": 1}, 'Unknown name "extra"'),
        (body(imageConfig={"aspectRatio": "1:1", "quality": "hd"}), 'Unknown name "quality"'),
        (body(imageConfig={"imageSize": "1k"}), "Unsupported image size '1k'"),
        (body(imageConfig={"aspectRatio": "1:8"}), "Unsupported aspect ratio '1:8'"),
        (body(candidateCount=2), "Multiple candidates"),
        (body(responseModalities=["TEXT"]), "response modalities: text"),
        (body(seed=2**31), "TYPE_INT32"),
        (body("x", "%%not base64%%"), "Base64 decoding failed"),
        (body("x", base64.b64encode(b"not a picture").decode()), "Unable to process input image"),
        (body("x", *[png()] * 15), "Too many images"),
    ],
)
async def test_requests_are_validated_as_google_does(
    http: httpx.AsyncClient, gemini: FakeGeminiServer, payload: Any, message: str
) -> None:
    response = await generate(http, PRO, payload)
    assert response.status_code == 400, response.text
    assert error_of(response)["status"] == "INVALID_ARGUMENT"
    assert message in error_of(response)["message"]
    assert gemini.generated == 0


async def test_each_model_has_its_own_ratios_sizes_and_reference_count(
    http: httpx.AsyncClient,
) -> None:
    assert (await generate(http, FLASH, body(imageConfig={"aspectRatio": "1:8"}))).is_success
    assert (await generate(http, FLASH, body(imageConfig={"imageSize": "512"}))).is_success
    assert (await generate(http, OLD, body(imageConfig={"imageSize": "2K"}))).status_code == 400
    assert (await generate(http, OLD, body("x", *[png()] * 4))).status_code == 400
    assert (await generate(http, OLD, body("x", *[png()] * 3))).is_success
    # Proto-JSON's snake_case names are accepted too.
    snake = {
        "contents": [
            {"parts": [{"text": "x"}, {"inline_data": {"mime_type": "image/png", "data": png()}}]}
        ],
        "generation_config": {"image_config": {"aspect_ratio": "4:5", "image_size": "4K"}},
    }
    answer = await generate(http, PRO, snake)
    assert answer.is_success, answer.text


async def test_answer_shapes_sizes_and_seeds(
    http: httpx.AsyncClient, gemini: FakeGeminiServer
) -> None:
    config: dict[str, Any] = {
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
        "seed": 42,
    }
    first = (await generate(http, PRO, body(**config))).json()
    again = (await generate(http, PRO, body(**config))).json()
    parts = first["candidates"][0]["content"]["parts"]
    assert first["candidates"][0]["finishReason"] == "STOP"
    assert [list(p) for p in parts] == [["inlineData", "thoughtSignature"]]
    data = base64.b64decode(parts[0]["inlineData"]["data"])
    assert Image.open(BytesIO(data)).size == (128, 72)
    assert data == base64.b64decode(
        again["candidates"][0]["content"]["parts"][0]["inlineData"]["data"]
    )
    gemini.shape = "text-and-image"
    parts = (await generate(http, PRO, body())).json()["candidates"][0]["content"]["parts"]
    assert "text" in parts[0]
    assert "inlineData" in parts[1]
    gemini.shape = "thoughts"
    parts = (await generate(http, PRO, body())).json()["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True
    assert "thought" not in parts[1]
    assert gemini.generated == 4


async def test_one_shot_blocks_and_empty_answers(
    http: httpx.AsyncClient, gemini: FakeGeminiServer
) -> None:
    gemini.block_prompt_next("PROHIBITED_CONTENT")
    gemini.finish_next("IMAGE_SAFETY", text="I can't draw that.")
    gemini.empty_next()
    blocked = (await generate(http, PRO, body())).json()
    assert blocked["promptFeedback"]["blockReason"] == "PROHIBITED_CONTENT"
    assert "candidates" not in blocked
    finished = (await generate(http, PRO, body())).json()["candidates"][0]
    assert finished["finishReason"] == "IMAGE_SAFETY"
    assert finished["content"]["parts"] == [{"text": "I can't draw that."}]
    assert "candidates" not in (await generate(http, PRO, body())).json()
    assert (await generate(http, PRO, body())).json()["candidates"][0]["finishReason"] == "STOP"


async def test_per_minute_and_per_day_quotas(gemini: FakeGeminiServer) -> None:
    gemini.rpm, gemini.window = 2, 0.5
    async with httpx.AsyncClient(base_url=gemini.base_url + "/v1beta", headers=KEY) as http:
        assert all([(await generate(http, PRO, body())).is_success for _ in range(2)])
        refused = await generate(http, PRO, body())
        # Another model has its own quota.
        assert (await generate(http, FLASH, body())).is_success
        await asyncio.sleep(0.55)
        assert (await generate(http, PRO, body())).is_success
        gemini.rpm, gemini.rpd = None, 3
        daily = await generate(http, PRO, body())
    error = error_of(refused)
    assert (refused.status_code, error["status"]) == (429, "RESOURCE_EXHAUSTED")
    quota = error["details"][0]["violations"][0]
    assert quota["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel"
    assert quota["quotaDimensions"]["model"] == PRO
    delay = next(d["retryDelay"] for d in error["details"] if "retryDelay" in d)
    assert 0 < float(delay.rstrip("s")) <= 0.5
    daily_error = error_of(daily)
    assert daily_error["details"][0]["violations"][0]["quotaId"].startswith(
        "GenerateRequestsPerDay"
    )
    assert not any("retryDelay" in d for d in daily_error["details"])
    assert gemini.throttled == 2


async def test_unpaid_projects_and_overload(gemini: FakeGeminiServer) -> None:
    gemini.paid = False
    async with httpx.AsyncClient(base_url=gemini.base_url + "/v1beta", headers=KEY) as http:
        unpaid = await generate(http, PRO, body())
        assert unpaid.status_code == 429
        assert "limit: 0" in error_of(unpaid)["message"]
        gemini.paid, gemini.capacity, gemini.latency = True, 1, 0.2
        answers = await asyncio.gather(*(generate(http, PRO, body()) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 503, 503]
    overloaded = next(a for a in answers if a.status_code == 503)
    assert error_of(overloaded)["status"] == "UNAVAILABLE"
    assert (gemini.peak, gemini.overloaded, gemini.in_flight) == (1, 2, 0)


async def test_injected_failures_answer_at_once(
    http: httpx.AsyncClient, gemini: FakeGeminiServer
) -> None:
    gemini.latency = 5
    gemini.fail_next(504)
    gemini.fail_next(500, retry_after=3)
    timed_out = await generate(http, PRO, body())
    internal = await generate(http, PRO, body())
    assert (timed_out.status_code, error_of(timed_out)["status"]) == (504, "DEADLINE_EXCEEDED")
    assert (internal.status_code, internal.headers["retry-after"]) == (500, "3")
    gemini.latency = 0
    gemini.stall_next(30)
    with pytest.raises(httpx.ReadTimeout):
        await http.post(f"/models/{PRO}:generateContent", json=body(), timeout=0.2)
    for _ in range(100):
        if gemini.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert gemini.in_flight == 0
    assert gemini.generate_requests()[-1].status == 499
