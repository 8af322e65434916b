"""A real local HTTP server that behaves like Wireflow's workflow API.

What wireflow.ai/docs/api documents (Overview, Executions, Errors, Rate limits) and the seed
adds: ``POST /api/v1/workflows/{id}/execute`` answers 201 at once with ``executionRuns``;
``GET …/executions/{id}/poll`` says RUNNING, then COMPLETED (the generation node's output holds
the image URL) or FAILED; ``GET …/executions/{id}`` is the full record. Bearer ``sk-`` keys;
``{"error": …}`` bodies; 402 with ``requiredCredits``/``availableCredits``/``breakdown``; 429 with
``Retry-After`` (relative seconds) and ``retryAfter`` (a Unix time) in the body; ``X-Request-Id``
and ``X-RateLimit-*`` on every answer. Executions per minute (10 on every plan), requests per
minute for everything else (polls included) and executions per day follow the plan.
``Idempotency-Key`` replays the first 201 for 24 hours.

Chosen here where the docs are silent (and said so): only 201 answers are stored for replay, a
replay counts against no limit, a daily limit answers 429 naming "daily", node types other than
``generate:nano_banana_pro`` follow its naming, reference images are ``image1``… params.

Reference images are URLs, fetched the way the real service must fetch them: an image this server
made is read from its own CDN; any other http(s) URL is fetched over the network when the
execution runs (``fetch_delay`` seconds after it starts), without the caller's key, and must
answer 200 with a picture Pillow opens, else the execution ends FAILED "could not load imageN".
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from io import BytesIO
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.flow_server import CLIENT_GONE, Recorded

JSON = dict[str, Any]

API = "/api/v1"
DEFAULT_KEY = "sk-test-wireflow"
DEFAULT_WORKFLOW = "cm1wireflowtest"
TEN = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
EDGE = {"1K": 64, "2K": 128, "4K": 256}
IDEMPOTENCY_TTL = 24 * 3600.0
MAX_FETCH_BYTES = 30 * 2**20
ENDPOINTS = frozenset({"execute", "poll", "details", "workflow"})


@dataclass(frozen=True)
class NodeSpec:
    sizes: frozenset[str]
    max_images: int
    credits: dict[str, int]


NODES = {
    "generate:nano_banana": NodeSpec(frozenset({"1K"}), 3, {"1K": 4}),
    "generate:nano_banana_2": NodeSpec(frozenset(EDGE), 14, {"1K": 7, "2K": 7, "4K": 7}),
    "generate:nano_banana_pro": NodeSpec(frozenset(EDGE), 14, {"1K": 13, "2K": 13, "4K": 24}),
}
PLANS = {  # requests per minute, executions per minute, executions per day
    "free": (10, 10, 50),
    "starter": (20, 10, 200),
    "pro": (60, 10, 1000),
    "enterprise": (200, 10, None),
}


@dataclass
class Execution:
    id: str
    workflow: str
    node_type: str
    size: str
    ratio: str
    started: float  # monotonic
    ready_at: float
    error: str | None = None  # FAILED with this error once ready
    silent: bool = False  # poll keeps saying RUNNING; the details show the failure
    url: str | None = None
    loading: bool = False  # its reference URLs are still being fetched


@dataclass(frozen=True)
class Fetched:
    """One reference URL this server fetched: what it answered (``status`` 0: no answer)."""

    url: str
    status: int
    content_type: str
    data: bytes


@dataclass
class _Failure:
    status: int
    body: JSON | None
    retry_after: float | None


@dataclass
class _Stored:
    status: int
    body: JSON
    at: float


@dataclass
class _Window:
    limit: int | None
    stamps: deque[float] = field(default_factory=deque)


class ApiError(Exception):
    def __init__(self, status: int, body: JSON | str, *, retry_after: float | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body: JSON = {"error": body} if isinstance(body, str) else body
        self.retry_after = retry_after


RECORD = web.RequestKey("wireflow_record", Recorded)


class FakeWireflowServer:
    """Wireflow on ``127.0.0.1:<free port>``; point the client at ``base_url``.

    Switches (constructor keywords, also attributes you may change while it runs):

    - ``api_key``; ``workflows``: ids that exist; ``plan``: "free", "starter", "pro" or
      "enterprise" (its per-minute and daily limits, over ``window`` seconds).
    - ``credits``: balance (None: unlimited); an execution costs its node's credits (402 when
      short, with the docs' body).
    - ``latency``: seconds an execution stays RUNNING.
    - ``media_root``: where image URLs point (default: this server's ``/cdn``).
    - ``expired``: the key answers 401 "API key has expired".
    - ``fetch_delay``: seconds after an execution starts before it fetches its reference URLs;
      ``fetching``: an ``asyncio.Event``, set; clear it to hold every fetch until it is set.

    One-shot: ``fail_next`` (an HTTP status on an endpoint), ``fail_next_execution`` (the next
    execution ends FAILED), ``silent_next`` (the next execution fails silently: poll says
    RUNNING for ever, the details say FAILED), ``stall_next`` (an HTTP answer held back).
    ``forget`` drops an execution (poll 404); ``advance_clock`` ages stored idempotency keys.
    Records: ``requests``, ``executions``, ``poll_times`` (by execution id), ``executed``,
    ``replays``, ``throttled``, ``downloads``, ``fetched`` (reference URLs it fetched).
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        workflows: tuple[str, ...] = (DEFAULT_WORKFLOW,),
        plan: str = "free",
        credits: int | None = None,
        latency: float = 0.0,
        window: float = 60.0,
    ) -> None:
        self.api_key = api_key
        self.workflows = set(workflows)
        self.credits = credits
        self.latency = latency
        self.expired = False
        self.fetch_delay = 0.0
        self.fetching = asyncio.Event()
        self.fetching.set()
        self.fetched: list[Fetched] = []
        self.media_root = ""
        self.requests: list[Recorded] = []
        self.downloads: list[Recorded] = []
        self.executions: dict[str, Execution] = {}
        self.poll_times: dict[str, list[float]] = {}
        self.executed = 0
        self.replays = 0
        self.throttled = 0
        self.window = window
        self.set_plan(plan)
        self._day_count = 0
        self._failures: dict[str, deque[_Failure]] = {name: deque() for name in ENDPOINTS}
        self._stalls: dict[str, deque[float]] = {name: deque() for name in ENDPOINTS}
        self._answer_stalls: deque[float] = deque()
        self._outcomes: deque[tuple[str | None, bool]] = deque()
        self._idempotent: dict[str, _Stored] = {}
        self._clock_offset = 0.0
        self._media: dict[str, bytes] = {}
        self._loads: set[asyncio.Task[None]] = set()
        self._fetcher: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def set_plan(self, plan: str) -> None:
        rpm, epm, daily = PLANS[plan]
        self.plan = plan
        self._rpm = _Window(rpm)
        self._epm = _Window(epm)
        self._daily = daily

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(f"{API}/workflows/{{wid}}/execute", self._execute)
        app.router.add_get(f"{API}/workflows/executions/{{eid}}/poll", self._poll)
        app.router.add_get(f"{API}/workflows/executions/{{eid}}", self._details)
        app.router.add_get(f"{API}/workflows/{{wid}}", self._workflow)
        app.router.add_get("/cdn/{name}", self._download)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.media_root = self.media_root or self.base_url
        self._fetcher = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close(self) -> None:
        for load in self._loads:
            load.cancel()
        await asyncio.gather(*self._loads, return_exceptions=True)
        if self._fetcher is not None:
            await self._fetcher.close()
            self._fetcher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWireflowServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- switches --------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        endpoint: str = "execute",
        count: int = 1,
        body: JSON | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next ``count`` valid calls to ``endpoint`` answer ``status``."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}")
        self._failures[endpoint].extend(_Failure(status, body, retry_after) for _ in range(count))

    def fail_next_execution(self, error: str = "Generation failed", *, count: int = 1) -> None:
        self._outcomes.extend((error, False) for _ in range(count))

    def silent_next(self, error: str = "Node render timed out", *, count: int = 1) -> None:
        self._outcomes.extend((error, True) for _ in range(count))

    def stall_next(self, seconds: float, *, endpoint: str = "poll") -> None:
        self._stalls[endpoint].append(seconds)

    def stall_next_answer(self, seconds: float) -> None:
        """The next execution is made at once, its answer sent ``seconds`` later: a client that
        gives up meanwhile has started it without learning its id."""
        self._answer_stalls.append(seconds)

    def forget(self, execution_id: str) -> None:
        self.executions.pop(execution_id, None)

    def advance_clock(self, seconds: float) -> None:
        """Age stored idempotency keys by ``seconds`` (their 24 hours need not be waited)."""
        self._clock_offset += seconds

    def execute_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]

    # -- plumbing --------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        record = Recorded(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=parsed,
            body=body,
        )
        (self.downloads if request.path.startswith("/cdn/") else self.requests).append(record)
        request[RECORD] = record
        try:
            if request.path.startswith("/cdn/"):
                response = await handler(request)
            else:
                response = await self._api(request, handler)
        except asyncio.CancelledError:
            record.status = CLIENT_GONE
            raise
        record.status = response.status
        return response

    async def _api(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        window = self._epm if request.method == "POST" else self._rpm
        try:
            self._authorize(request)
            response = await handler(request)
        except ApiError as err:
            response = web.json_response(err.body, status=err.status)
            if err.retry_after is not None:
                response.headers["Retry-After"] = str(max(1, math.ceil(err.retry_after)))
        response.headers["X-Request-Id"] = f"req_{uuid.uuid4().hex[:16]}"
        if window.limit is not None:
            response.headers["X-RateLimit-Limit"] = str(window.limit)
            response.headers["X-RateLimit-Remaining"] = str(
                max(0, window.limit - len(window.stamps))
            )
            reset = window.stamps[0] + self.window if window.stamps else time.monotonic()
            response.headers["X-RateLimit-Reset"] = str(int(time.time() + reset - time.monotonic()))
        return response

    def _authorize(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization")
        if not auth:
            raise ApiError(401, "Missing Authorization header")
        if not auth.startswith("Bearer sk-"):
            raise ApiError(401, "Invalid API key format. Expected: Bearer sk-...")
        if auth != f"Bearer {self.api_key}":
            raise ApiError(401, "Invalid API key")
        if self.expired:
            raise ApiError(401, "API key has expired")

    def _take(self, window: _Window, message: str) -> None:
        """Count one call in ``window``; 429 with both retry hints once it is full."""
        now = time.monotonic()
        while window.stamps and now - window.stamps[0] >= self.window:
            window.stamps.popleft()
        if window.limit is not None and len(window.stamps) >= window.limit:
            self.throttled += 1
            wait = window.stamps[0] + self.window - now
            body = {"error": message, "retryAfter": int(time.time() + wait) + 1}
            raise ApiError(429, body, retry_after=wait)
        window.stamps.append(now)

    async def _inject(self, endpoint: str) -> None:
        if self._stalls[endpoint]:
            await asyncio.sleep(self._stalls[endpoint].popleft())
        if self._failures[endpoint]:
            failure = self._failures[endpoint].popleft()
            default = {
                400: "Bad request",
                401: "Invalid API key",
                402: "Insufficient credits",
                403: "Forbidden",
                404: "Not found",
                429: "Too many requests. Please try again later.",
                500: "Internal server error",
            }.get(failure.status, f"Injected HTTP {failure.status}")
            raise ApiError(failure.status, failure.body or default, retry_after=failure.retry_after)

    # -- executions ------------------------------------------------------------------------

    async def _execute(self, request: web.Request) -> web.Response:
        workflow = request.match_info["wid"]
        if workflow not in self.workflows:
            raise ApiError(404, "Workflow not found")
        key = request.headers.get("Idempotency-Key")
        now = time.monotonic() + self._clock_offset
        stored = self._idempotent.get(key) if key else None
        if stored is not None and now - stored.at < IDEMPOTENCY_TTL:
            self.replays += 1
            return self._created(stored.body)
        self._take(self._epm, "Too many workflow executions. Please try again later.")
        if self._daily is not None and self._day_count >= self._daily:
            self.throttled += 1
            raise ApiError(
                429,
                {
                    "error": "Daily execution limit reached. Upgrade your plan for more.",
                    "retryAfter": int(time.time()) + 3600,
                },
                retry_after=3600,
            )
        node_type, size, ratio, fetch = self._validate(request[RECORD].json)
        cost = NODES[node_type].credits[size]
        if self.credits is not None and self.credits < cost:
            raise ApiError(
                402,
                {
                    "error": f"Insufficient credits. Required: {cost}, Available: {self.credits}",
                    "insufficientCredits": True,
                    "requiredCredits": cost,
                    "availableCredits": self.credits,
                    "breakdown": [{"nodeId": "render", "nodeLabel": "Render", "credits": cost}],
                },
            )
        await self._inject("execute")
        if self.credits is not None:
            self.credits -= cost
        self._day_count += 1
        self.executed += 1
        started = time.monotonic()
        error, silent = self._outcomes.popleft() if self._outcomes else (None, False)
        execution = Execution(
            id=f"exec_{uuid.uuid4().hex[:12]}",
            workflow=workflow,
            node_type=node_type,
            size=size,
            ratio=ratio,
            started=started,
            ready_at=started + self.latency,
            error=error,
            silent=silent,
            loading=bool(fetch),
        )
        self.executions[execution.id] = execution
        if fetch:
            load = asyncio.create_task(self._load(execution, fetch))
            self._loads.add(load)
            load.add_done_callback(self._loads.discard)
        body = {
            "workflowId": workflow,
            "batchId": str(uuid.uuid4()),
            "executionRuns": [{**self._run(execution, poll=False), "runIndexInBatch": 0}],
        }
        if key:
            self._idempotent[key] = _Stored(201, body, now)
        if self._answer_stalls:
            await asyncio.sleep(self._answer_stalls.popleft())
        return self._created(body)

    def _created(self, body: JSON) -> web.Response:
        response = web.json_response(body, status=201)
        run_id = body["executionRuns"][0]["id"]
        response.headers["Location"] = f"{API}/workflows/executions/{run_id}"
        return response

    def _validate(self, payload: Any) -> tuple[str, str, str, dict[str, str]]:
        """The generation node's type, size and ratio, and the image inputs to fetch (by param
        name), or 400 the way the docs word it."""
        if not isinstance(payload, dict) or "nodes" not in payload or "edges" not in payload:
            raise ApiError(400, "Missing required fields: nodes, edges")
        unknown = set(payload) - {
            "nodes",
            "edges",
            "targetNodeId",
            "triggerData",
            "iteratorConfigs",
        }
        if unknown:
            raise ApiError(400, f"Unknown field: {sorted(unknown)[0]}")
        nodes, edges = payload["nodes"], payload["edges"]
        if not isinstance(nodes, list) or not nodes:
            raise ApiError(400, "At least one node must be provided")
        if not isinstance(edges, list):
            raise ApiError(400, "edges must be an array")
        if not all(isinstance(n, dict) and isinstance(n.get("id"), str) for n in nodes):
            raise ApiError(400, "All nodes must have an id")
        by_id = {n["id"]: n for n in nodes}
        renders = [n for n in nodes if _data(n).get("nodeType") in NODES]
        for node in nodes:
            kind = _data(node).get("nodeType")
            if kind != "input:text" and kind not in NODES:
                raise ApiError(400, f"Unknown node type: {kind}")
        if len(renders) != 1:
            raise ApiError(400, "Exactly one generation node is expected")
        render = renders[0]
        params = _data(render).get("params") or {}
        kind = _data(render)["nodeType"]
        spec = NODES[kind]
        size = params.get("resolution", "1K")
        if size not in spec.sizes:
            raise ApiError(400, f"Node {render['id']}: unsupported resolution {size!r}")
        ratio = params.get("aspect_ratio", "1:1")
        if ratio not in TEN:
            raise ApiError(400, f"Node {render['id']}: unsupported aspect_ratio {ratio!r}")
        images = [k for k in params if k.startswith("image")]
        if len(images) > spec.max_images:
            raise ApiError(400, f"Node {render['id']}: at most {spec.max_images} images")
        fetch = {}
        for name in images:
            url = params[name]
            if self._holds(url):
                continue
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ApiError(400, f"Node {render['id']}: could not load {name}")
            if url.startswith(f"{self.media_root}/cdn/"):
                raise ApiError(400, f"Node {render['id']}: could not load {name}")
            fetch[name] = url
        fed = False
        for edge in edges:
            if (
                not isinstance(edge, dict)
                or edge.get("source") not in by_id
                or edge.get("target") not in by_id
            ):
                raise ApiError(400, "Edges must connect existing nodes")
            source = by_id[edge["source"]]
            if edge["target"] == render["id"] and edge.get("targetHandle") == "in-prompt":
                if (
                    _data(source).get("nodeType") != "input:text"
                    or edge.get("sourceHandle") != "out-prompt"
                ):
                    raise ApiError(400, "in-prompt must come from a text input's out-prompt")
                if not str((_data(source).get("params") or {}).get("prompt", "")).strip():
                    raise ApiError(400, f"Node {source['id']} has an empty prompt")
                fed = True
        if not fed and not str(params.get("prompt", "")).strip():
            raise ApiError(400, f"Node {render['id']} is missing a prompt")
        return kind, size, ratio, fetch

    async def _load(self, execution: Execution, fetch: dict[str, str]) -> None:
        """Fetch an execution's reference URLs when it runs; one that fails fails it."""
        await asyncio.sleep(self.fetch_delay)
        await self.fetching.wait()
        for name, url in fetch.items():
            got = await self._fetch(url)
            self.fetched.append(got)
            if got.status != 200 or not _is_picture(got.data):
                execution.error = execution.error or (
                    f"Node render: could not load {name} (HTTP {got.status})"
                )
        execution.ready_at = max(execution.ready_at, time.monotonic())
        execution.loading = False

    async def _fetch(self, url: str) -> Fetched:
        assert self._fetcher is not None
        try:
            async with self._fetcher.get(url, allow_redirects=False) as answer:
                data = await answer.content.read(MAX_FETCH_BYTES)
                return Fetched(url, answer.status, answer.headers.get("Content-Type", ""), data)
        except (aiohttp.ClientError, TimeoutError):
            return Fetched(url, 0, "", b"")

    def _holds(self, url: Any) -> bool:
        prefix = f"{self.media_root}/cdn/"
        return isinstance(url, str) and url.startswith(prefix) and url[len(prefix) :] in self._media

    def _state(self, execution: Execution, *, poll: bool) -> str:
        if (
            execution.loading
            or time.monotonic() < execution.ready_at
            or (poll and execution.silent)
        ):
            return "RUNNING"
        return "FAILED" if execution.error else "COMPLETED"

    def _run(self, execution: Execution, *, poll: bool) -> JSON:
        status = self._state(execution, poll=poll)
        render: JSON = {"nodeId": "render", "status": status}
        if status == "COMPLETED":
            if execution.url is None:
                name = f"{uuid.uuid4().hex}.png"
                self._media[name] = _picture(execution.ratio, execution.size)
                execution.url = f"{self.media_root}/cdn/{name}"
            render["output"] = {"images": [{"url": execution.url}]}
        elif status == "FAILED":
            render["error"] = execution.error
        return {
            "id": execution.id,
            "startTime": _iso(execution.started),
            "endTime": None if status == "RUNNING" else _iso(execution.ready_at),
            "status": status,
            "error": execution.error if status == "FAILED" else None,
            "nodeRuns": [{"nodeId": "prompt", "status": "COMPLETED"}, render],
        }

    def _known(self, request: web.Request) -> Execution:
        execution = self.executions.get(request.match_info["eid"])
        if execution is None:
            raise ApiError(404, "Execution not found")
        return execution

    async def _poll(self, request: web.Request) -> web.Response:
        self._take(self._rpm, "Too many requests. Please try again later.")
        self.poll_times.setdefault(request.match_info["eid"], []).append(time.monotonic())
        execution = self._known(request)
        await self._inject("poll")
        run = self._run(execution, poll=True)
        return web.json_response(
            {
                "status": run["status"],
                "error": run["error"],
                "nodeResults": {"nodeRuns": run["nodeRuns"]},
            }
        )

    async def _details(self, request: web.Request) -> web.Response:
        self._take(self._rpm, "Too many requests. Please try again later.")
        execution = self._known(request)
        await self._inject("details")
        return web.json_response(self._run(execution, poll=False))

    async def _workflow(self, request: web.Request) -> web.Response:
        self._take(self._rpm, "Too many requests. Please try again later.")
        workflow = request.match_info["wid"]
        if workflow not in self.workflows:
            raise ApiError(404, "Workflow not found")
        await self._inject("workflow")
        return web.json_response(
            {"data": {"id": workflow, "name": "Nano Banana", "isActive": True}}
        )

    async def _download(self, request: web.Request) -> web.Response:
        data = self._media.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="Not found")
        return web.Response(body=data, content_type="image/png")


def _data(node: Any) -> JSON:
    data = node.get("data") if isinstance(node, dict) else None
    return data if isinstance(data, dict) else {}


def _is_picture(data: bytes) -> bool:
    try:
        with Image.open(BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError):
        return False
    return True


def _iso(monotonic: float) -> str:
    wall = time.time() - (time.monotonic() - monotonic)
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(wall))


def _picture(ratio: str, size: str) -> bytes:
    edge = EDGE[size]
    width, height = (int(x) for x in ratio.split(":"))
    dims = (
        (edge, max(1, edge * height // width))
        if width >= height
        else (
            max(1, edge * width // height),
            edge,
        )
    )
    out = BytesIO()
    colour = (random.randrange(256), random.randrange(256), random.randrange(256))
    Image.new("RGB", dims, colour).save(out, "PNG")
    return out.getvalue()
