"""Self-tests of the fake Google Flow server, spoken to with plain httpx."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image

from tests.fakes.flow_server import FakeFlowServer

AUTH = {"Authorization": "Bearer test-token", "User-Agent": "nano-banana-bot-tests/1.0"}
ALICE, BOB = "alice@example.com", "bob@example.com"


def png(size: tuple[int, int] = (30, 20)) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def decode(b64: str) -> Image.Image:
    return Image.open(BytesIO(base64.b64decode(b64)), formats=["JPEG"])


@pytest.fixture
async def flow() -> AsyncIterator[FakeFlowServer]:
    async with FakeFlowServer(accounts=[ALICE, BOB]) as server:
        yield server


@pytest.fixture
async def client(flow: FakeFlowServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=flow.base_url, headers=AUTH) as http:
        yield http


async def upload(client: httpx.AsyncClient, account: str = ALICE) -> str:
    response = await client.post(
        f"/assets/{account.replace('@', '%40')}",
        content=png(),
        headers={"Content-Type": "image/png"},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert (answer["width"], answer["height"], answer["email"]) == (30, 20, "al***@example.com")
    media_id: str = answer["mediaGenerationId"]["mediaGenerationId"]
    return media_id


async def test_token_and_user_agent_are_checked(flow: FakeFlowServer) -> None:
    async with httpx.AsyncClient(base_url=flow.base_url) as plain:
        bad_token = await plain.get("/accounts", headers=AUTH | {"Authorization": "Bearer x"})
        assert (bad_token.status_code, bad_token.json()) == (401, {"error": "Unauthorized"})
        default_agent = await plain.get("/accounts", headers={"Authorization": "Bearer test-token"})
        assert (default_agent.status_code, default_agent.json()) == (403, {"error": "Forbidden"})
        accounts = await plain.get("/accounts", headers=AUTH)
    assert set(accounts.json()) == {ALICE, BOB}
    assert accounts.json()[ALICE]["health"] == "OK"
    assert [r.status for r in flow.requests] == [401, 403, 200]
    assert flow.requests[0].headers["authorization"] == "Bearer x"


@pytest.mark.parametrize("shape", ["media-url", "media-inline", "panels"])
async def test_generate_with_reference_in_each_shape(
    flow: FakeFlowServer, client: httpx.AsyncClient, shape: Any
) -> None:
    flow.shape = shape
    ref = await upload(client)
    response = await client.post(
        "/images",
        json={"prompt": "a cat @reference_1", "model": "nano-banana-pro", "count": 2, "seed": 5}
        | {"reference_1": ref, "aspectRatio": "auto"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    if shape == "panels":
        images = answer["imagePanels"][0]["generatedImages"]
        assert images[0]["mediaGenerationId"]["mediaGenerationId"].startswith("user:1-email:")
    else:
        images = [m["image"]["generatedImage"] for m in answer["media"]]
    assert [i["seed"] for i in images] == [5, 6]
    assert images[0]["aspectRatio"] == "IMAGE_ASPECT_RATIO_LANDSCAPE"  # from the 30x20 reference
    if shape == "media-url":
        downloads = [await client.get(i["fifeUrl"]) for i in images]
        blobs = [d.content for d in downloads]
        job = (await client.get(f"/jobs/{answer['jobId']}")).json()
        assert job["status"] == "completed"
        assert job["response"] == answer
    else:
        blobs = [base64.b64decode(i["encodedImage"]) for i in images]
    assert len(set(blobs)) == 2
    assert Image.open(BytesIO(blobs[0])).size == (64, 48)
    assert flow.images_requests()[0].account == ALICE
    assert flow.generated == 2


async def test_fife_signature_and_failure_switch(
    flow: FakeFlowServer, client: httpx.AsyncClient
) -> None:
    answer = (await client.post("/images", json={"prompt": "x", "count": 1, "email": BOB})).json()
    url = answer["media"][0]["image"]["generatedImage"]["fifeUrl"]
    async with httpx.AsyncClient() as anonymous:  # signed URLs need neither token nor UA
        assert (await anonymous.get(url)).headers["content-type"] == "image/jpeg"
        assert (await anonymous.get(url.split("?")[0] + "?sig=forged")).status_code == 403
        flow.fife_status = 410
        assert (await anonymous.get(url)).status_code == 410
    assert [r.status for r in flow.fife_requests()] == [200, 403, 410]


async def test_validation_and_ownership(flow: FakeFlowServer, client: httpx.AsyncClient) -> None:
    async def error(body: dict[str, Any]) -> tuple[int, Any]:
        response = await client.post("/images", json=body)
        return response.status_code, response.json()["error"]

    ref = await upload(client)
    mislabelled = await client.post(
        "/assets/alice%40example.com", content=png(), headers={"Content-Type": "image/jpeg"}
    )
    assert mislabelled.status_code == 400
    assert (await error({"prompt": "x"}))[1].startswith("email is required")
    assert (await error({"prompt": "", "email": ALICE}))[0] == 400
    assert (await error({"prompt": "x", "email": ALICE, "count": 5}))[0] == 400
    assert (await error({"prompt": "x", "email": ALICE, "aspectRatio": "auto"}))[0] == 400
    assert (await error({"prompt": "x", "email": "eve@example.com"}))[0] == 404
    assert await error({"prompt": "x", "email": BOB, "reference_1": ref}) == (
        403,
        f"Unauthorized access to user:1 detected in reference {ref}",
    )
    character = await client.post(
        "/characters", json={"imageReference_1": ref, "displayName": "Tom"}
    )
    assert character.json()["displayName"] == "Tom"
    body = {"prompt": "x", "count": 1, "character_1": character.json()["character"]}
    assert (await client.post("/images", json=body)).status_code == 200  # account from owner
    assert flow.requests[-1].account == ALICE
    assert await error(body | {"model": "imagen-4"}) == (
        400,
        "Model imagen-4 does not support character_1",
    )
    flow.set_health(ALICE, "Session expired")
    assert (await error(body))[0] == 596


async def test_fields_the_api_does_not_take_are_refused(
    flow: FakeFlowServer, client: httpx.AsyncClient
) -> None:
    """A misspelt field is refused, not ignored and replaced by the API's default."""
    cases = [
        ("/images", {"prompt": "x", "email": ALICE, "aspect_ratio": "1:1"}, '"aspect_ratio"'),
        ("/images", {"prompt": "x", "email": ALICE, "n": 2}, '"n"'),
        ("/images", {"prompt": "x", "email": ALICE, "reference_11": "r"}, "reference_11"),
        ("/images/upscale", {"mediaGenerationId": "m", "size": "2k"}, '"size"'),
        ("/characters", {"name": "Tom", "reference_1": "r"}, '"name"'),
    ]
    for path, body, named in cases:
        response = await client.post(path, json=body)
        assert response.status_code == 400, (path, body)
        assert named in response.json()["error"]
    assert flow.generated == 0


async def test_defaults_the_api_fills_in(flow: FakeFlowServer, client: httpx.AsyncClient) -> None:
    """What the API does with a request that leaves fields out (the bot never relies on it)."""
    ref = await upload(client)
    plain = (await client.post("/images", json={"prompt": "x", "email": ALICE})).json()
    images = [m["image"]["generatedImage"] for m in plain["media"]]
    assert len(images) == 4
    assert {i["modelNameType"] for i in images} == {"GEM_PIX_2_LITE"}
    assert {i["aspectRatio"] for i in images} == {"IMAGE_ASPECT_RATIO_LANDSCAPE"}
    with_ref = (await client.post("/images", json={"prompt": "x", "reference_1": ref})).json()
    assert with_ref["media"][0]["image"]["generatedImage"]["modelNameType"] == "GEM_PIX_2"


async def test_capacity_throttles_concurrent_requests(
    flow: FakeFlowServer, client: httpx.AsyncClient
) -> None:
    flow.latency, flow.retry_after = 0.2, 2
    flow.set_capacity(ALICE, 2)
    body = {"prompt": "x", "count": 1, "email": ALICE}
    responses = await asyncio.gather(*(client.post("/images", json=body) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 429, 429]
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.headers["retry-after"] == "2"
    reason = throttled.json()["error"]["details"][0]["reason"]
    assert reason == "PUBLIC_ERROR_USER_REQUESTS_THROTTLED"
    assert (flow.peak, flow.peak_total, flow.throttled) == ({ALICE: 2}, 2, 2)
    assert flow.in_flight == {ALICE: 0}


async def test_each_answer_notes_when_it_left(
    flow: FakeFlowServer, client: httpx.AsyncClient
) -> None:
    flow.latency = 0.2
    flow.set_capacity(ALICE, 1)
    body = {"prompt": "x", "count": 1, "email": ALICE}
    sent = time.monotonic()
    responses = await asyncio.gather(*(client.post("/images", json=body) for _ in range(2)))
    received = time.monotonic()
    assert sorted(r.status_code for r in responses) == [200, 429]
    served, refused = sorted(flow.images_requests(), key=lambda r: r.status)
    # The refusal leaves at once, the image after the latency; each before the client has it.
    assert sent <= refused.answered_at < served.answered_at <= received
    assert served.answered_at - sent >= 0.2


async def test_injected_failures_and_disconnect(
    flow: FakeFlowServer, client: httpx.AsyncClient
) -> None:
    body = {"prompt": "x", "count": 1, "email": ALICE}
    flow.fail_next(503, retry_after=0.5)
    flow.fail_next_captcha()
    flow.empty_next()
    first = await client.post("/images", json=body)
    assert first.json()["error"]["status"] == "UNAVAILABLE"
    assert first.headers["retry-after"] == "0.5"
    second = await client.post("/images", json=body)
    assert second.status_code == 403
    assert second.json()["error"].startswith("captcha")
    assert (await client.post("/images", json=body)).json()["media"] == []
    assert (await client.post("/images", json=body)).status_code == 200
    assert flow.generated == 1

    flow.stall_next(30)
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/images", json=body, timeout=0.2)
    for _ in range(100):  # the server notices the hang-up on its next loop turns
        if flow.in_flight[ALICE] == 0:
            break
        await asyncio.sleep(0.01)
    assert flow.in_flight[ALICE] == 0
    assert flow.images_requests()[-1].status == 499


async def test_upscale_rules(client: httpx.AsyncClient, flow: FakeFlowServer) -> None:
    async def generate(model: str) -> str:
        body = {"prompt": "x", "count": 1, "email": ALICE, "model": model}
        answer = (await client.post("/images", json=body)).json()
        media_id: str = answer["media"][0]["image"]["generatedImage"]["mediaGenerationId"]
        return media_id

    lite, banana = await generate("imagen-4"), await generate("nano-banana")
    refused = await client.post("/images/upscale", json={"mediaGenerationId": lite})
    assert refused.json()["error"].startswith("Upscale is only supported")
    upscaled = await client.post("/images/upscale", json={"mediaGenerationId": banana})
    assert decode(upscaled.json()["encodedImage"]).size == (128, 96)
    flow.paid = {ALICE: False}
    four_k = {"mediaGenerationId": banana, "resolution": "4k"}
    assert (await client.post("/images/upscale", json=four_k)).status_code == 400
    flow.paid = True
    upscaled = await client.post("/images/upscale", json=four_k)
    assert decode(upscaled.json()["encodedImage"]).size == (256, 192)
    flow.fail_next(500, endpoint="upscale")
    assert (await client.post("/images/upscale", json=four_k)).status_code == 500


async def test_held_generations_answer_only_when_released(
    flow: FakeFlowServer, client: httpx.AsyncClient
) -> None:
    flow.hold()
    asked = asyncio.create_task(client.post("/images", json={"prompt": "x", "email": ALICE}))
    async with asyncio.timeout(5):
        while not flow.held:  # noqa: ASYNC110 - the fake's own record, no event to wait on
            await asyncio.sleep(0.01)
    assert not asked.done()
    assert flow.in_flight[ALICE] == 1  # it keeps its capacity slot while held
    flow.release()
    assert (await asked).status_code == 200
    assert flow.held == []


async def test_characters_and_markers_are_checked_as_the_api_does(
    flow: FakeFlowServer, client: httpx.AsyncClient
) -> None:
    """character_1…7 share the ten references' budget, live on their account, and every
    @reference_n / @character_n marker needs its parameter (google-flow-api.md)."""
    ref = await upload(client)
    made = await client.post("/characters", json={"imageReference_1": ref, "displayName": "Tom"})
    character = made.json()["character"]
    base = {"email": ALICE, "count": 1, "model": "nano-banana-2"}

    async def status(body: dict[str, Any]) -> tuple[int, str]:
        answer = await client.post("/images", json=base | body)
        return answer.status_code, answer.json().get(
            "error", ""
        ) if answer.status_code != 200 else ""

    ok = {"prompt": "@character_1 meets @reference_1", "character_1": character, "reference_1": ref}
    assert await status(ok) == (200, "")
    assert await status({"prompt": "@character_2 waves", "character_1": character}) == (
        400,
        "Prompt marker @character_2 has no matching character_2 parameter",
    )
    assert (await status({"prompt": "x", "character_8": character}))[0] == 400
    eleven = {f"reference_{i}": ref for i in range(1, 11)} | {"character_1": character}
    assert await status({"prompt": "x", **eleven}) == (
        400,
        "A maximum of 10 references and characters is supported",
    )
    assert (await status({"prompt": "x", "character_1": "user:1-character:unknown"}))[0] == 400
    assert (await status({"prompt": "x", "email": BOB, "character_1": character}))[0] == 403


async def test_a_character_is_deleted_with_the_documented_answers(
    flow: FakeFlowServer, client: httpx.AsyncClient
) -> None:
    """``DELETE /characters/{ref}``: 200 with the id echoed, then 404; a malformed id 400; one
    of another useapi user 403 (the vendor's page, June 2026)."""
    ref = await upload(client)
    made = await client.post("/characters", json={"imageReference_1": ref, "displayName": "Tom"})
    character, entity = made.json()["character"], made.json()["entityId"]
    path = f"/characters/{quote(character, safe='')}"

    gone = await client.delete(path)
    assert (gone.status_code, gone.json()) == (
        200,
        {"deleted": True, "entityId": entity, "character": character},
    )
    again = await client.delete(path)
    assert (again.status_code, again.json()) == (404, {"error": f"Character not found: {entity}"})
    used = await client.post(
        "/images", json={"prompt": "x", "email": ALICE, "count": 1, "character_1": character}
    )
    assert used.status_code == 400  # a deleted character can't be drawn
    bad = await client.delete("/characters/not-a-character")
    assert (bad.status_code, bad.json()) == (
        400,
        {"error": "Parameter character has incorrect format"},
    )
    theirs = character.replace("user:1-", "user:2-")
    other = await client.delete(f"/characters/{quote(theirs, safe='')}")
    assert other.status_code == 403
    assert other.json()["error"].startswith("Unauthorized access to user:2")
    assert flow.deleted_characters == [character]
