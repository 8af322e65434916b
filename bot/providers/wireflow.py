"""``WireflowClient``: Wireflow's asynchronous workflow API over httpx.

The only code that knows this wire format. A render is a two-node workflow (a text input feeding a
Nano Banana generation node) sent to ``POST /api/v1/workflows/{id}/execute``, which answers 201
at once with the execution's id; ``GET /api/v1/workflows/executions/{id}/poll`` is asked, 1 s
after, then every 1.5 × longer up to 10 s, until COMPLETED (the node's output holds the image
URL) or FAILED. One execution makes one image: ``count`` images are ``count`` executions.
Reference images are URLs Wireflow fetches: images it made, and users' pictures as the core's
signed links to our stored copies (there is no upload endpoint).

``submit`` and ``resume`` are the two halves the core persists between (``Resumable``). Every
execute carries an ``Idempotency-Key`` derived from ``ImageRequest.job_key``, so submitting again
after a crash replays the first answer (same execution) instead of paying twice. Requests are
paced below the plan's limits: executions per minute (10 on every plan) and requests per minute
(polls included), so a 429 is the exception, not the pacing.

    201 on execute                           the execution ids
    COMPLETED                                the image's URL (the handle a later render can take
                                             as a reference); ``fetch`` downloads it from the
                                             media hosts (a link or picture breaking the media
                                             rules: MediaRefused)
    FAILED naming a safety/policy block      ModerationError
    FAILED otherwise, RUNNING past
      ``stale_after`` with FAILED details    ExecutionFailed: submit again under a new key
    400                                      InvalidRequestError
    401, 403                                 AuthError
    402                                      InsufficientCredits (.required, .available)
    404 on execute or workflow               AccountNotFound (the configured workflow)
    404 on poll                              ExecutionLost: submit again
    429 "daily" / otherwise                  QuotaExhausted / Throttled (Retry-After)
    500 and other 5xx                        Unavailable
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import httpx

from bot.core.models_table import ModelOffer, ModelTable
from bot.core.providers import (
    ImageRequest,
    Pending,
    ProviderLimits,
    ProviderProfile,
    ReferenceMode,
    Rendering,
    Submission,
    unfit,
)
from bot.core.upstream import (
    ExecutionLost,
    InvalidRequestError,
    MediaRefused,
    Unavailable,
)
from bot.providers.http import Answer, UpstreamClient, deadline, exchange, new_http, retry_after
from bot.providers.media import MediaHosts, Pictures, new_media_http
from bot.providers.plumbing import RateGate, Timeouts, fan_out
from bot.providers.wireflow_messages import RUNNING, error_for, graph, idempotency_key, outcome

NAME = "wireflow"
DEFAULT_BASE_URL = "https://www.wireflow.ai"
API = "/api/v1"
# Generated images are served from this CDN (the docs' examples); results on other hosts are
# refused rather than fetched.
DEFAULT_MEDIA_HOSTS = ("cdn.atomu.ai", "*.wireflow.ai")

# Requests per minute (every call but executes, polls included) and executions per minute (the
# same 10 on every plan), from the rate-limits page. The concurrency is what the polls fit in
# (``Polling.per_minute``), set by the client. Executions per day (free 50, starter 200, pro
# 1,000) are the upstream's to count, with what others spent on the key: its 429 "daily" is
# ``QuotaExhausted``, an operator incident that holds the road out (``service.accounts``).
PLANS: Mapping[str, ProviderLimits] = {
    "free": ProviderLimits(requests_per_minute=10, submits_per_minute=10),
    "starter": ProviderLimits(requests_per_minute=20, submits_per_minute=10),
    "pro": ProviderLimits(requests_per_minute=60, submits_per_minute=10),
    "enterprise": ProviderLimits(requests_per_minute=200, submits_per_minute=10),
}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Polling:
    """Seconds: the first poll after ``first``, each wait ``factor`` × longer up to ``cap``; an
    execution RUNNING for ``stale_after`` has its details checked (it may have failed silently)."""

    first: float = 1.0
    factor: float = 1.5
    cap: float = 10.0
    stale_after: float = 60.0
    timeout: float = 600.0  # end-to-end bound of one resume

    def waits(self) -> Iterator[float]:
        wait = self.first
        while True:
            yield wait
            wait = min(wait * self.factor, self.cap)

    def per_minute(self) -> int:
        """Polls one execution makes in its first minute, its busiest (9 with the defaults:
        at 1, 2.5, 4.75 … 50.8 s; 6 a minute after that)."""
        due = itertools.accumulate(self.waits())
        return sum(1 for _ in itertools.takewhile(lambda at: at <= 60.0, due))


class WireflowClient(UpstreamClient):
    """Wireflow as an ``ImageProvider`` and ``Resumable``; ``async with WireflowClient(...)``."""

    def __init__(
        self,
        api_key: str,
        workflow_id: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        plan: str = "free",
        media_hosts: Iterable[str] = DEFAULT_MEDIA_HOSTS,
        timeouts: Timeouts | None = None,
        polling: Polling | None = None,
        window: float = 60.0,
        models: tuple[ModelOffer, ...] | None = None,
        max_image_bytes: int = 50 * 2**20,
        max_image_pixels: int = 50_000_000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._polling = polling or Polling()
        self._sleep = sleep  # how a poll waits its turn (tests count the waits, not time them)
        plan_limits = PLANS[plan]
        # Polls spend the requests per minute: run only as many executions as their polls fit.
        polls = self._polling.per_minute()
        limits = replace(
            plan_limits,
            concurrency=max(1, (plan_limits.requests_per_minute or polls) // max(1, polls)),
        )
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._workflow = workflow_id
        self._api = base_url.rstrip("/") + API
        self._timeouts = timeouts or Timeouts()
        self._hosts = MediaHosts(media_hosts, base_url)
        if models is None:
            models = ModelTable.builtin().offers(NAME)
        # Its image inputs are URLs: its own results', or a link to a user's picture we serve.
        self._profile = ProviderProfile(NAME, ReferenceMode.HANDLE, limits, models, links=True)
        self._submits = RateGate(limits.submits_per_minute or 1_000_000, window)
        self._requests = RateGate(limits.requests_per_minute or 1_000_000, window)
        self._http = new_http(read=self._timeouts.request, connect=self._timeouts.connect)
        self._media = new_media_http(read=self._timeouts.download, connect=self._timeouts.connect)
        self._clients = (self._http, self._media)
        self._pictures = Pictures(
            self._media, self._hosts, max_image_bytes, max_image_pixels, self._timeouts.download
        )

    def __repr__(self) -> str:
        return f"WireflowClient(api={self._api!r}, workflow={self._workflow!r})"

    @property
    def profile(self) -> ProviderProfile:
        return self._profile

    async def generate(self, request: ImageRequest) -> Rendering:
        """Submit and wait in one go (the core persists between ``submit`` and ``resume``); the
        images' URLs, for ``fetch``."""
        if not request.job_key:
            request = replace(request, job_key=uuid.uuid4().hex)
        return await self.resume(await self.submit(request))

    async def submit(self, request: ImageRequest) -> Submission:
        """Start ``request.count`` executions; the same ``job_key`` always gives the same ones."""
        if not request.job_key:
            raise ValueError("submit needs a job_key: it is what makes a resubmission safe")
        await self._refuse_unfit(request)
        ids: list[str] = []
        async with deadline(self._timeouts.total, "the Wireflow submission"):
            for index in range(request.count):
                ids.append(await self._execute(request, f"{request.job_key}:{index}"))
        return Submission(provider=NAME, execution_ids=tuple(ids))

    async def resume(self, submission: Submission) -> Rendering:
        """Wait for submitted executions (again, after a restart): their images' URLs."""
        ids = submission.execution_ids

        async def one(index: int) -> Pending:
            url = await self._await(ids[index])
            return Pending(url, handle=url)

        async with deadline(self._polling.timeout, "the Wireflow execution"):
            images, refused = await fan_out(len(ids), one)
        if not images:
            raise refused[0]
        return Rendering(
            provider=NAME,
            images=tuple(images),
            withheld=len(refused),
            withheld_reason=refused[0].detail if refused else None,
            trace=ids,
        )

    async def fetch(self, rendering: Rendering) -> Rendering:
        """Each image from its URL, on the media hosts only, bounded and verified."""
        return await self._pictures.every(rendering, "the Wireflow downloads")

    async def check(self) -> str:
        """The key works and the configured workflow exists (``GET /workflows/{id}``)."""
        async with deadline(self._timeouts.request, "the Wireflow check"):
            await self._call("GET", f"/workflows/{quote(self._workflow, safe='')}")
        return f"{NAME}: key accepted; workflow {self._workflow} found"

    async def _refuse_unfit(self, request: ImageRequest) -> None:
        """Bad input is refused here, with no upstream call; a handle must be an image Wireflow
        made (a link on its media hosts), never an address of someone else's; a link (the
        core's, to our copy of a user's picture) must be a web address."""
        offer = self._profile.offer_for_wire(request.model)
        if offer is None:
            raise InvalidRequestError(f"{NAME} has no node for {request.model}")
        reason = unfit(self._profile, offer, request)
        if reason is not None:
            raise InvalidRequestError(reason)
        for ref in request.references:
            if ref.link is not None:
                if not ref.link.startswith(("https://", "http://")):
                    raise InvalidRequestError(f"{NAME} fetches pictures only from web addresses")
                continue
            try:
                await self._hosts.hop(httpx.URL(ref.handle or ""), account=None)
            except (MediaRefused, httpx.InvalidURL) as exc:
                raise InvalidRequestError(f"{NAME} takes only references it made itself") from exc

    async def _execute(self, request: ImageRequest, key: str) -> str:
        await self._submits.wait()
        answer = await self._send(
            "POST",
            f"/workflows/{quote(self._workflow, safe='')}/execute",
            json=graph(request),
            headers={"Idempotency-Key": idempotency_key(key)},
        )
        if answer.status not in (200, 201):
            raise error_for(answer)
        runs = answer.body.get("executionRuns") if isinstance(answer.body, dict) else None
        first = runs[0] if isinstance(runs, list) and runs else None
        run_id = first.get("id") if isinstance(first, dict) else None
        if not isinstance(run_id, str) or not run_id:
            raise Unavailable("the execute answer named no execution")
        return run_id

    async def _await(self, execution_id: str) -> str:
        """Poll one execution with backoff until it ends; the image URL it produced."""
        started = time.monotonic()
        checked = started
        path = f"/workflows/executions/{quote(execution_id, safe='')}"
        waits = self._polling.waits()
        while True:
            await self._sleep(next(waits))
            state = await self._poll_once(f"{path}/poll", execution_id)
            if state is None:
                continue  # throttled: the wait is already behind us
            status = state.get("status")
            if status not in RUNNING:
                return outcome(state, execution_id)
            now = time.monotonic()
            if now - checked >= self._polling.stale_after:
                checked = now
                details = await self._poll_once(path, execution_id)
                if details is not None and details.get("status") not in RUNNING:
                    return outcome(details, execution_id)

    async def _poll_once(self, path: str, execution_id: str) -> dict[str, Any] | None:
        """One poll; None after sitting out a 429, so the loop simply asks again."""
        answer = await self._send("GET", path)
        if answer.status == 429:
            await self._sleep(retry_after(answer.headers) or self._polling.cap)
            return None
        if answer.status == 404:
            raise ExecutionLost(f"execution {execution_id} is unknown to Wireflow", status=404)
        if answer.status != 200:
            raise error_for(answer)
        if not isinstance(answer.body, dict):
            raise Unavailable(f"polling {execution_id} answered something other than an object")
        return answer.body

    async def _call(self, method: str, path: str) -> dict[str, Any]:
        answer = await self._send(method, path)
        if answer.status != 200:
            raise error_for(answer)
        if not isinstance(answer.body, dict):
            raise Unavailable(f"{method} {path} answered something other than an object")
        return answer.body

    async def _send(self, method: str, path: str, **kwargs: Any) -> Answer:
        if method != "POST":
            await self._requests.wait()
        headers = {**self._auth, **kwargs.pop("headers", {})}
        answer = await exchange(
            self._http,
            method,
            self._api + path,
            what=f"{method} {path}",
            max_bytes=1024 * 1024,
            headers=headers,
            **kwargs,
        )
        log.debug(
            "%s %s → %d (X-Request-Id %s)",
            method,
            path,
            answer.status,
            answer.headers.get("x-request-id", "-"),
        )
        return answer
