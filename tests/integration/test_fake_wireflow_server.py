"""Self-tests of the fake Wireflow server, spoken to with plain httpx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from io import BytesIO
from typing import Any

import httpx
import pytest
from aiohttp import web
from PIL import Image

from tests.fakes.wireflow_server import DEFAULT_KEY, DEFAULT_WORKFLOW, FakeWireflowServer

AUTH = {"Authorization": f"Bearer {DEFAULT_KEY}"}
EXECUTE = f"/api/v1/workflows/{DEFAULT_WORKFLOW}/execute"


def graph(node: str = "generate:nano_banana_pro", **params: Any) -> dict[str, Any]:
    params = {"resolution": "1K", "aspect_ratio": "1:1", **params}
    return {
        "nodes": [
            {
                "id": "p",
                "type": "basedNode",
                "data": {"nodeType": "input:text", "params": {"prompt": "a cat"}},
            },
            {"id": "g", "type": "basedNode", "data": {"nodeType": node, "params": params}},
        ],
        "edges": [
            {
                "source": "p",
                "target": "g",
                "sourceHandle": "out-prompt",
                "targetHandle": "in-prompt",
            }
        ],
    }


@pytest.fixture
async def wireflow() -> AsyncIterator[FakeWireflowServer]:
    async with FakeWireflowServer() as server:
        yield server


@pytest.fixture
async def http(wireflow: FakeWireflowServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=wireflow.base_url, headers=AUTH) as client:
        yield client


async def run_id(http: httpx.AsyncClient, **headers: str) -> str:
    answer = await http.post(EXECUTE, json=graph(), headers=headers)
    assert answer.status_code == 201, answer.text
    value: str = answer.json()["executionRuns"][0]["id"]
    return value


async def test_keys_in_each_documented_failure(wireflow: FakeWireflowServer) -> None:
    async with httpx.AsyncClient(base_url=wireflow.base_url) as plain:
        answers = [
            await plain.post(EXECUTE, json=graph()),
            await plain.post(EXECUTE, json=graph(), headers={"Authorization": "Token abc"}),
            await plain.post(EXECUTE, json=graph(), headers={"Authorization": "Bearer sk-no"}),
        ]
        wireflow.expired = True
        answers.append(await plain.post(EXECUTE, json=graph(), headers=AUTH))
    assert [a.json()["error"] for a in answers] == [
        "Missing Authorization header",
        "Invalid API key format. Expected: Bearer sk-...",
        "Invalid API key",
        "API key has expired",
    ]
    assert {a.status_code for a in answers} == {401}
    assert all(a.headers["x-request-id"].startswith("req_") for a in answers)


async def test_execute_poll_details_and_download(
    http: httpx.AsyncClient, wireflow: FakeWireflowServer
) -> None:
    wireflow.latency = 0.2
    answer = await http.post(EXECUTE, json=graph(resolution="2K", aspect_ratio="16:9"))
    assert answer.status_code == 201
    body = answer.json()
    run = body["executionRuns"][0]
    assert (body["workflowId"], run["status"], run["endTime"]) == (
        DEFAULT_WORKFLOW,
        "RUNNING",
        None,
    )
    assert answer.headers["location"] == f"/api/v1/workflows/executions/{run['id']}"
    assert answer.headers["x-ratelimit-limit"] == "10"
    assert int(answer.headers["x-ratelimit-reset"]) >= int(time.time())
    poll = f"/api/v1/workflows/executions/{run['id']}/poll"
    assert (await http.get(poll)).json()["status"] == "RUNNING"
    await asyncio.sleep(0.25)
    done = (await http.get(poll)).json()
    assert done["status"] == "COMPLETED"
    render = done["nodeResults"]["nodeRuns"][-1]
    url = render["output"]["images"][0]["url"]
    details = (await http.get(f"/api/v1/workflows/executions/{run['id']}")).json()
    assert details["nodeRuns"][-1]["output"]["images"][0]["url"] == url
    assert details["endTime"] is not None
    picture = await http.get(url)
    assert Image.open(BytesIO(picture.content)).size == (128, 72)
    assert len(wireflow.poll_times[run["id"]]) == 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"nodes": []}, "Missing required fields: nodes, edges"),
        ({"nodes": [], "edges": []}, "At least one node must be provided"),
        ({"nodes": [{"data": {}}], "edges": []}, "All nodes must have an id"),
        ({**graph(), "extra": 1}, "Unknown field: extra"),
        (graph("generate:flux_9"), "Unknown node type: generate:flux_9"),
        (graph(resolution="8K"), "unsupported resolution '8K'"),
        (graph("generate:nano_banana", resolution="2K"), "unsupported resolution '2K'"),
        (graph(aspect_ratio="1:8"), "unsupported aspect_ratio"),
        (graph(image1="file:///etc/passwd"), "could not load image1"),
        (graph(image2="/cdn/not-made-here.png"), "could not load image2"),
        ({**graph(), "edges": []}, "missing a prompt"),
        ({**graph(), "edges": [{"source": "p", "target": "nowhere"}]}, "existing nodes"),
    ],
)
async def test_execute_validation(
    http: httpx.AsyncClient, wireflow: FakeWireflowServer, payload: Any, message: str
) -> None:
    answer = await http.post(EXECUTE, json=payload)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert wireflow.executed == 0


async def finished(http: httpx.AsyncClient, run: str) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            state: dict[str, Any] = (
                await http.get(f"/api/v1/workflows/executions/{run}/poll")
            ).json()
            if state["status"] != "RUNNING":
                return state
            await asyncio.sleep(0.05)


async def test_reference_urls_are_fetched_when_the_execution_runs(
    http: httpx.AsyncClient, wireflow: FakeWireflowServer
) -> None:
    """Like the real service: a URL it didn't make is fetched (no key sent) when the node
    runs, and one that doesn't answer with a picture fails the execution."""
    picture = BytesIO()
    Image.new("RGB", (8, 8), "red").save(picture, "PNG")
    asked: list[web.Request] = []

    async def answer(request: web.Request) -> web.Response:
        asked.append(request)
        if request.match_info["name"] == "cat.png":
            return web.Response(body=picture.getvalue(), content_type="image/png")
        if request.match_info["name"] == "text.png":
            return web.Response(text="not a picture")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/pics/{name}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    root = f"http://127.0.0.1:{runner.addresses[0][1]}/pics"
    try:
        wireflow.set_plan("enterprise")  # room for the polls
        wireflow.fetch_delay = 0.2
        good = await http.post(EXECUTE, json=graph(image1=f"{root}/cat.png"))
        assert good.status_code == 201
        run = good.json()["executionRuns"][0]["id"]
        assert wireflow.fetched == []  # not yet: when the node runs
        assert (await finished(http, run))["status"] == "COMPLETED"
        assert [(f.url, f.status, f.data) for f in wireflow.fetched] == [
            (f"{root}/cat.png", 200, picture.getvalue())
        ]
        assert "authorization" not in {k.lower() for k in asked[0].headers}
        wireflow.fetch_delay = 0
        for name, status in (("gone.png", 404), ("text.png", 200)):
            bad = await http.post(EXECUTE, json=graph(image1=f"{root}/{name}"))
            state = await finished(http, bad.json()["executionRuns"][0]["id"])
            assert (state["status"], state["error"]) == (
                "FAILED",
                f"Node render: could not load image1 (HTTP {status})",
            )
    finally:
        await runner.cleanup()


async def test_unknown_workflow_and_execution(http: httpx.AsyncClient) -> None:
    missing = await http.post("/api/v1/workflows/nope/execute", json=graph())
    assert (missing.status_code, missing.json()) == (404, {"error": "Workflow not found"})
    lost = await http.get("/api/v1/workflows/executions/exec_nope/poll")
    assert (lost.status_code, lost.json()) == (404, {"error": "Execution not found"})


async def test_credits_402_body(http: httpx.AsyncClient, wireflow: FakeWireflowServer) -> None:
    wireflow.credits = 20
    await run_id(http)
    short = await http.post(EXECUTE, json=graph())
    assert short.status_code == 402
    assert short.json() == {
        "error": "Insufficient credits. Required: 13, Available: 7",
        "insufficientCredits": True,
        "requiredCredits": 13,
        "availableCredits": 7,
        "breakdown": [{"nodeId": "render", "nodeLabel": "Render", "credits": 13}],
    }


async def test_executions_per_minute_and_requests_per_minute(
    http: httpx.AsyncClient, wireflow: FakeWireflowServer
) -> None:
    wireflow.window = 0.5
    ids = [await run_id(http) for _ in range(10)]
    refused = await http.post(EXECUTE, json=graph())
    assert refused.status_code == 429
    assert refused.json()["error"] == "Too many workflow executions. Please try again later."
    assert refused.json()["retryAfter"] > time.time()  # absolute, unlike the header
    assert refused.headers["retry-after"] == "1"
    polls = [await http.get(f"/api/v1/workflows/executions/{i}/poll") for i in ids]
    extra = await http.get(f"/api/v1/workflows/executions/{ids[0]}/poll")
    assert [p.status_code for p in polls] == [200] * 10
    assert extra.status_code == 429
    assert extra.json()["error"] == "Too many requests. Please try again later."
    await asyncio.sleep(0.5)
    assert (await http.post(EXECUTE, json=graph())).status_code == 201
    assert wireflow.throttled == 2


async def test_daily_limit(http: httpx.AsyncClient, wireflow: FakeWireflowServer) -> None:
    wireflow.window = 0.01
    for _ in range(50):
        await run_id(http)
        await asyncio.sleep(0.011)
    refused = await http.post(EXECUTE, json=graph())
    assert refused.status_code == 429
    assert "Daily execution limit" in refused.json()["error"]
    wireflow.set_plan("enterprise")
    assert (await http.post(EXECUTE, json=graph())).status_code == 201


async def test_idempotency_key_replays_for_a_day(
    http: httpx.AsyncClient, wireflow: FakeWireflowServer
) -> None:
    first = await run_id(http, **{"Idempotency-Key": "job-7:0"})
    again = await run_id(http, **{"Idempotency-Key": "job-7:0"})
    other = await run_id(http, **{"Idempotency-Key": "job-7:1"})
    assert first == again != other
    assert (wireflow.executed, wireflow.replays) == (2, 1)
    wireflow.advance_clock(24 * 3600 + 1)
    assert await run_id(http, **{"Idempotency-Key": "job-7:0"}) not in (first, other)
    assert wireflow.executed == 3


async def test_failed_silent_and_forgotten_executions(
    http: httpx.AsyncClient, wireflow: FakeWireflowServer
) -> None:
    wireflow.fail_next_execution("Content blocked by safety filter")
    wireflow.silent_next()
    failed_id, silent_id, fine_id = [await run_id(http) for _ in range(3)]
    poll = "/api/v1/workflows/executions/{}/poll"
    state = (await http.get(poll.format(failed_id))).json()
    assert (state["status"], state["error"]) == ("FAILED", "Content blocked by safety filter")
    assert (await http.get(poll.format(silent_id))).json()["status"] == "RUNNING"
    details = (await http.get(f"/api/v1/workflows/executions/{silent_id}")).json()
    assert (details["status"], details["error"]) == ("FAILED", "Node render timed out")
    wireflow.forget(fine_id)
    assert (await http.get(poll.format(fine_id))).status_code == 404


async def test_injected_failures_and_stalls(
    http: httpx.AsyncClient, wireflow: FakeWireflowServer
) -> None:
    wireflow.fail_next(500)
    wireflow.fail_next(429, endpoint="poll", retry_after=2)
    assert (await http.post(EXECUTE, json=graph())).status_code == 500
    execution = await run_id(http)
    throttled = await http.get(f"/api/v1/workflows/executions/{execution}/poll")
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "2")
    wireflow.stall_next(5, endpoint="poll")
    with pytest.raises(httpx.ReadTimeout):
        await http.get(f"/api/v1/workflows/executions/{execution}/poll", timeout=0.2)
    assert (await http.get(f"/api/v1/workflows/{DEFAULT_WORKFLOW}")).json()["data"]["id"] == (
        DEFAULT_WORKFLOW
    )
