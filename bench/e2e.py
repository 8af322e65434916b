"""What users wait for, end to end: ``python -m bench.e2e`` (``--help`` lists its options).

The bot runs as a process, as deployed (``python -m bot``, configured by environment, a fresh
SQLite store per run), against the fake Flow server and a fake chat platform: the Telegram Bot
API with Telegram's flood limits, or Discord's gateway and REST API with Discord's rate limits
(``bench.discord_launcher`` aims discord.py at it). The fakes run in this process and note when
they see what. Every user sends all of their commands at once, at the start: a burst, as after
an announcement, to a bot that has served a few jobs before (``warm_up``, not measured), as a
bot in service has. Per case it prints the median, min and max over the runs of:

- the makespan to the chat, from the first command sent to the last image received by the fake
  platform, beside the ideal (jobs × latency ÷ (capacity × accounts); when the capacity varies,
  the time its integral from the first command takes to cover the jobs) and their ratio;
- how busy the upstream was kept: the ideal over the time to its last successful answer (the
  makespan without what delivery adds after it), and the time to the first picture;
- the overhead from the upstream's answer leaving the fake Flow server to the platform receiving
  that job's image, p50/p95/p99 (a job's answer is found by the command it replies to, and the
  command by a number in the prompt the Flow server saw);
- the first response to each command (Telegram: the first message that shows it, a reply to
  it or a status message that lists its prompt, sent or edited; Discord: the interaction's
  callback), p50 and max, and on Discord the interactions acknowledged after their
  3 s (the fake answers those 10062 Unknown interaction, as Discord does);
- the platform calls per job (Bot API calls, or Discord REST calls), the 429s the platform and
  the upstream answered, and the bot process's peak RSS (sampled; a fresh process per run);
- how many of the upstream's capacity slots its successful calls held, on average from the first
  command to its last answer, as a share of its capacity then (``--trace``: second by second,
  with the 429s it answered), which is what the bot's own latency between calls costs;
- commands never answered, if any (nothing happened for 75 s and the job never reached the
  upstream: the command was dropped): a run with one is incomplete and has no makespan.

``--bot-root`` runs the bot of another checkout against these same fakes and this same
measure (a before/after on one harness). Every setting is the shipped default: no case needs
another (10 jobs per user is the queue cap).
Targets (issue 11): ratio ≥ 0.95 at fixed capacity (≥ 0.90 with 1,000 jobs or varying capacity),
2 accounts ≥ 1.9× one, overhead p99 ≤ 50 ms at 40 jobs and ≤ 100 ms at the 60-job burst, ≤ 2
calls per one-image job, peak RSS under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from bench.stats import percentile
from bot.core.policy import Limits, Tuning
from bot.core.service.progress import TYPICAL_AFTER
from tests.fakes.discord_server import FakeDiscordServer, RateLimits, RestCall
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import Call, FakeTelegramServer, FloodControl

ROOT = Path(__file__).resolve().parent.parent
IMAGE_SIZE = (64, 64)
POLL = 0.05  # how often the answers are counted and RSS sampled
# After the last image, calls still come (a board of waiting jobs removed once a chat's budget
# has rested, up to 3.3 s): counted until this quiet.
QUIET = 4.0
# With jobs unanswered and nothing happening for this long, nothing will: longer than the
# longest retry wait (BOT_RETRY_MAX_SECONDS, 60 s by default).
STALL = 75.0
JOB = re.compile(r"\bjob(\d+)\b")
# Jobs the bot serves before each run's commands (``warm_up``): as many as it needs to know the
# upstream's usual time.
WARM = TYPICAL_AFTER
TAG = re.compile(r"\bjob\d{5}\b")  # a command's prompt begins with its tag (``run_once``)
# Settings of the host that would reach the bot process and change what is measured.
HOST_SETTINGS = ("USEAPI_", "TELEGRAM_", "DISCORD_", "BOT_", "DATABASE_", "GEMINI_", "NBPRO_")


@dataclass(frozen=True)
class Case:
    name: str
    jobs: int
    users: int
    latency: float
    capacity: int
    accounts: int = 1
    phases: tuple[tuple[float, int], ...] = ()  # (seconds after the first command, capacity)
    unavailable: int = 0  # 503s the upstream answers before it serves

    def capacity_at(self, t: float) -> int:
        """The upstream's capacity per account ``t`` s after the first command."""
        return next((c for start, c in reversed(self.phases) if start <= t), self.capacity)

    def capacity_integral(self, start: float, end: float) -> float:
        """Slot-seconds one account offers over [start, end) s."""
        phases = self.phases or ((0.0, self.capacity),)
        edges = [p[0] for p in phases[1:]] + [math.inf]
        return sum(
            c * max(0.0, min(end, until) - max(start, since))
            for (since, c), until in zip(phases, edges, strict=True)
        )

    def ideal(self) -> float | None:
        """The makespan of C(t) × accounts slots, each job taking ``latency`` (None: no such
        bound worth quoting, the retries' waits are the point of the case)."""
        if self.unavailable:
            return None
        work = self.jobs * self.latency / self.accounts
        phases = self.phases or ((0.0, self.capacity),)
        for (start, capacity), end in zip(
            phases, [p[0] for p in phases[1:]] + [float("inf")], strict=True
        ):
            if capacity * (end - start) >= work:
                return start + work / capacity
            work -= capacity * (end - start)
        raise AssertionError("the last phase never ends")

    def describe(self) -> str:
        accounts = f"{self.accounts} account{'s' if self.accounts > 1 else ''}"
        if self.phases:
            steps = "→".join(str(c) for _, c in self.phases)
            at = "/".join(f"{s:g}" for s, _ in self.phases)
            capacity = f"capacity {steps} (from {at} s)"
        else:
            capacity = f"capacity {self.capacity}"
        text = (
            f"{self.jobs} one-image jobs from {self.users} users · {accounts} × {capacity} · "
            f"latency {self.latency:g} s"
        )
        return text + (f" · {self.unavailable} × 503, then success" if self.unavailable else "")


def cases(quick: bool) -> list[Case]:
    """Issue 11's table, plus capacity varying while jobs run."""
    return [
        Case("one-account", jobs=40, users=10, latency=1.0, capacity=4),
        Case("two-accounts", jobs=40, users=10, latency=1.0, capacity=4, accounts=2),
        Case("burst-60", jobs=60, users=30, latency=0.5, capacity=20),
        Case(
            "queue-1000",
            jobs=200 if quick else 1000,
            users=20 if quick else 100,
            latency=0.3,
            capacity=4,
        ),
        Case("retry-503", jobs=1, users=1, latency=1.0, capacity=4, unavailable=3),
        Case(
            "varying",
            jobs=100 if quick else 200,
            users=25 if quick else 50,
            latency=1.0,
            capacity=4,
            phases=((0.0, 4), (5.0, 12), (10.0, 6)) if quick else ((0.0, 4), (10.0, 12), (20.0, 6)),
        ),
    ]


# -- the chat platforms --------------------------------------------------------------------


class Platform(Protocol):
    """A fake chat platform as the benchmark drives and reads it."""

    name: str
    module: str  # what ``python -m`` runs as the bot
    calls_name: str

    def env(self) -> dict[str, str]: ...

    async def ready(self) -> None:
        """Until the bot can take commands and deliver answers."""

    async def send(self, user: int, prompt: str) -> Hashable:
        """A user's command for one image; returns what the answer will be matched by."""

    def images(self) -> dict[Hashable, float]:
        """When each command's image arrived (first successful delivery)."""

    def failures(self) -> int:
        """Answers that are a failure sentence instead of an image."""

    def first_responses(self) -> dict[Hashable, float]:
        """When each command got its first response (any, accepted by the platform)."""

    def late(self) -> int:
        """Commands answered too late to count (Discord's 3 s): the user saw a failure."""

    def calls(self, since: float) -> tuple[Counter[str], Counter[str]]:
        """The bot's calls since ``since`` by kind, and those the platform refused with 429."""


class Telegram:
    name = "telegram"
    module = "bot"
    calls_name = "Bot API calls"
    token = "123:ABC-fake-token"
    first_user = 1000  # a private chat's id is its user's id
    answers = frozenset({"sendPhoto", "sendDocument", "sendMediaGroup", "editMessageMedia"})

    def __init__(self, server: FakeTelegramServer) -> None:
        self.tg = server
        self.asked: dict[tuple[int, str], Hashable] = {}  # (chat, the prompt's tag) → command

    @staticmethod
    def fake(limited: bool) -> FakeTelegramServer:
        return FakeTelegramServer(token=Telegram.token, flood=FloodControl() if limited else None)

    @staticmethod
    def limits(limited: bool) -> str:
        if not limited:
            return "Telegram flood limits OFF: the fake accepts any rate"
        f = FloodControl()
        return (
            f"Telegram flood limits on: {f.overall_per_second:g}/s overall, "
            f"{f.chat_per_second:g}/s per chat (burst {f.chat_burst}), "
            f"{f.group_per_minute:g}/min per group; sends and edits count"
        )

    def env(self) -> dict[str, str]:
        return {"TELEGRAM_TOKEN": self.token, "TELEGRAM_API_URL": self.tg.root}

    async def ready(self) -> None:
        # Polling starts by making sure no webhook is set.
        await self.tg.wait_for("deleteWebhook", timeout=60)

    async def send(self, user: int, prompt: str) -> Hashable:
        chat = self.first_user + user
        update = await self.tg.post_message(chat, chat, f"/imagine {prompt} --count 1")
        key = (chat, update["message"]["message_id"])
        self.asked[(chat, prompt.split()[0])] = key
        return key

    def images(self) -> dict[Hashable, float]:
        found: dict[Hashable, float] = {}
        for call in self.tg.calls:
            if call.method in self.answers and call.error is None:
                chat = call.params["chat_id"]
                found.setdefault((chat, self._answered(chat, call)), call.at)
        return found

    def _answered(self, chat: int, call: Call) -> int | None:
        """The command an answer answers: the message it replies to, or for a status message
        that became the answer (editMessageMedia), the one the status message replied to."""
        if call.method != "editMessageMedia":
            return (call.params.get("reply_parameters") or {}).get("message_id")
        status = self.tg.message(chat, call.params["message_id"]) or {}
        return (status.get("reply_to_message") or {}).get("message_id")

    def first_responses(self) -> dict[Hashable, float]:
        found: dict[Hashable, float] = {}
        for call in self.tg.calls:
            if call.error is not None or "chat_id" not in call.params:
                continue
            chat = call.params["chat_id"]
            replied = (call.params.get("reply_parameters") or {}).get("message_id")
            if replied is not None:
                found.setdefault((chat, replied), call.at)
            if call.method in ("sendMessage", "editMessageText"):  # a list of waiting jobs
                for tag in TAG.findall(str(call.params.get("text", ""))):
                    if (command := self.asked.get((chat, tag))) is not None:
                        found.setdefault(command, call.at)
        return found

    def late(self) -> int:
        return 0  # Telegram has no deadline for an answer

    def failures(self) -> int:
        return sum(
            1
            for c in self.tg.calls
            if c.method in ("editMessageText", "sendMessage")
            and c.error is None
            and str(c.params.get("text", "")).startswith("❌")
        )

    def calls(self, since: float) -> tuple[Counter[str], Counter[str]]:
        made = [c for c in self.tg.calls if c.at >= since and c.method != "getUpdates"]
        refused = [c for c in made if (c.error or "").startswith("Too Many Requests")]
        return Counter(c.method for c in made), Counter(c.method for c in refused)


class Discord:
    name = "discord"
    module = "bench.discord_launcher"
    calls_name = "REST calls"
    first_user = 10_000
    # on_ready, which lets answers out, comes guild_ready_timeout (2 s) after GUILD_CREATE.
    settle = 3.0

    def __init__(self, server: FakeDiscordServer) -> None:
        self.dc = server

    @staticmethod
    def fake(limited: bool) -> FakeDiscordServer:
        return FakeDiscordServer(rate_limits=RateLimits() if limited else None)

    @staticmethod
    def limits(limited: bool) -> str:
        if not limited:
            return "Discord rate limits OFF: the fake accepts any rate"
        r = RateLimits()
        return (
            f"Discord rate limits on: {r.global_per_second}/s global (bot token), "
            f"{r.channel_messages[0]} per {r.channel_messages[1]:g} s per channel route, "
            f"{r.interaction_webhook[0]} per {r.interaction_webhook[1]:g} s per interaction token"
        )

    def env(self) -> dict[str, str]:
        return {
            "DISCORD_TOKEN": "bench-token",
            "BENCH_DISCORD_API": self.dc.api_base,
            "BENCH_DISCORD_GATEWAY": self.dc.gateway_url,
        }

    async def ready(self) -> None:
        await self.dc.wait_ready(timeout=60)
        await asyncio.sleep(self.settle)

    async def send(self, user: int, prompt: str) -> Hashable:
        options = {"prompt": prompt, "count": 1}
        command = await self.dc.slash_command("imagine", options, user_id=self.first_user + user)
        return command.token

    def images(self) -> dict[Hashable, float]:
        found: dict[Hashable, float] = {}
        for call in self.dc.calls:
            if _is_image_answer(call):
                found.setdefault(call.path.split("/")[3], call.at)
        return found

    def first_responses(self) -> dict[Hashable, float]:
        found: dict[Hashable, float] = {}
        for call in self.dc.calls:
            if call.path.startswith("/interactions/") and call.status in (200, 204):
                found.setdefault(call.path.split("/")[3], call.at)
        return found

    def late(self) -> int:
        return len(self.dc.late_callbacks)

    def failures(self) -> int:
        return sum(
            1
            for c in self.dc.calls
            if c.path.startswith("/webhooks/")
            and c.method in ("PATCH", "POST")
            and c.status == 200
            and str((c.json or {}).get("content", "")).startswith("❌")
        )

    def calls(self, since: float) -> tuple[Counter[str], Counter[str]]:
        made = [c for c in self.dc.calls if c.at >= since and not c.path.startswith("/attach")]
        refused = [c for c in made if c.status == 429]
        return Counter(map(_kind, made)), Counter(map(_kind, refused))


def _kind(call: RestCall) -> str:
    return f"{call.method} {_route(call.path)}"


def _is_image_answer(call: RestCall) -> bool:
    """The interaction's response edited into its answer: the image, as a file."""
    original = call.path.startswith("/webhooks/") and call.path.endswith("/messages/@original")
    return original and call.method == "PATCH" and call.status == 200 and bool(call.files)


def _route(path: str) -> str:
    """A REST path without its ids and tokens: what kind of call it is."""
    if path.startswith("/interactions/"):
        return "interaction callback"
    if path.startswith("/webhooks/"):
        parts = path.split("/")
        return "interaction " + ("/".join(parts[4:]) if len(parts) > 4 else "followup")
    return re.sub(r"/\d+", "/{id}", path)


@contextlib.asynccontextmanager
async def platform(kind: str, limited: bool) -> AsyncIterator[Platform]:
    if kind == "telegram":
        async with Telegram.fake(limited) as tg:
            yield Telegram(tg)
    else:
        async with Discord.fake(limited) as dc:
            yield Discord(dc)


# -- one run -------------------------------------------------------------------------------


@dataclass
class Run:
    makespan: float | None  # None when not every job got its image
    answered: int
    failed: int
    lost: int  # unanswered jobs that never reached the upstream: their command was dropped
    last_image: float  # s after the first command, complete or not
    first_image: float  # s after the first command
    last_served: float | None  # the upstream's last successful answer, s (None: not all were)
    overheads: list[float]  # seconds, one per answered job
    calls: Counter[str]
    refused: Counter[str]  # the calls the platform answered 429
    upstream_429s: int
    peak_rss: int
    ready_rss: int
    cpu: float  # the bot's CPU seconds (user + system) from ready to the end of the run
    media_connections: float  # connections the bot opened per picture download
    load: tuple[float, float]  # 1-minute load average before and after
    attempts: list[float] = field(default_factory=list)  # upstream answers, s after the first
    held: list[tuple[float, float]] = field(default_factory=list)  # successful calls, s
    throttles: list[float] = field(default_factory=list)  # the upstream's 429s, s
    responses: list[float] = field(default_factory=list)  # command → first response, s
    late: int = 0  # commands the platform forgot before the bot acknowledged them

    def utilisation(self, case: Case, start: float, end: float) -> float | None:
        """Capacity slots held by successful calls ÷ capacity, over [start, end) s."""
        capacity = case.capacity_integral(start, end) * case.accounts
        held = sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.held)
        return held / capacity if capacity else None


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0

    def sample(self) -> int:
        try:
            rss = self.process.memory_info().rss
        except psutil.Error:  # the process is gone: the peak stays what it was
            return 0
        self.peak = max(self.peak, rss)
        return rss

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(POLL)

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)


@contextlib.asynccontextmanager
async def bot_process(
    chat: Platform, flow: FakeFlowServer, tmp: Path, log: Path, root: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot`` (or its Discord launcher) in ``tmp``, stopped with SIGTERM afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(HOST_SETTINGS)}
    env.update(
        PYTHONPATH=str(root),
        USEAPI_TOKEN="test-token",
        USEAPI_BASE_URL=flow.base_url,
        DATABASE_URL=f"sqlite:///{tmp / 'bot.sqlite3'}",
        **chat.env(),
    )
    with log.open("wb") as out:
        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            chat.module,
            cwd=tmp,  # no .env of the developer's is read
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        yield bot
    finally:
        if bot.returncode is None:
            bot.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(bot.wait(), 20)
            except TimeoutError:
                bot.kill()
                await bot.wait()


async def until_ready(chat: Platform, bot: asyncio.subprocess.Process, log: Path) -> None:
    ready = asyncio.ensure_future(chat.ready())
    exited = asyncio.ensure_future(bot.wait())
    await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
    exited.cancel()
    if not ready.done():
        ready.cancel()
        tail = log.read_text(errors="replace")[-2000:]  # noqa: ASYNC240 - failing anyway
        raise RuntimeError(f"the bot exited with {bot.returncode} before it was ready:\n{tail}")
    ready.result()


async def warm_up(chat: Platform, case: Case) -> None:
    """``WARM`` jobs one after another from a user outside the case, each until its image:
    the bot meets the burst as one that has served (it knows how long the upstream takes),
    not as one just started. One at a time: they prove no capacity, so the accounts' limits
    are where they start."""
    for i in range(WARM):
        key = await chat.send(case.users, f"warm{i} a lighthouse at dawn")
        end = time.monotonic() + 60
        while key not in chat.images():
            if time.monotonic() > end:
                raise RuntimeError(f"warm-up job {i} was not answered within 60 s")
            await asyncio.sleep(POLL)


async def follow_phases(
    flow: FakeFlowServer, accounts: Sequence[str], phases: Sequence[tuple[float, int]], t0: float
) -> None:
    """Set each account's capacity on the schedule, its clock starting at the first command."""
    for start, capacity in phases:
        await asyncio.sleep(max(0.0, t0 + start - time.monotonic()))
        for account in accounts:
            flow.set_capacity(account, capacity)


async def quiet(count: Callable[[], int], *, quiet_for: float, at_most: float) -> None:
    """Until ``count()`` hasn't changed for ``quiet_for`` seconds (at most ``at_most``)."""
    end = time.monotonic() + at_most
    last, since = count(), time.monotonic()
    while time.monotonic() < end and time.monotonic() - since < quiet_for:
        await asyncio.sleep(POLL)
        if (now := count()) != last:
            last, since = now, time.monotonic()


async def run_once(
    case: Case, kind: str, limited: bool, logs: Path | None, label: str, root: Path
) -> Run:
    accounts = [f"bench{i}@example.com" for i in range(case.accounts)]
    capacity = case.phases[0][1] if case.phases else case.capacity
    load_before = os.getloadavg()[0]
    async with (
        FakeFlowServer(
            accounts=accounts, latency=case.latency, capacity=capacity, image_size=IMAGE_SIZE
        ) as flow,
        platform(kind, limited) as chat,
    ):
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmpdir:
            tmp = Path(tmpdir)
            log = (logs / f"{label}.log") if logs else tmp / "bot.log"
            async with bot_process(chat, flow, tmp, log, root) as bot:
                await until_ready(chat, bot, log)
                await warm_up(chat, case)
                flow.reset_records()
                if case.unavailable:
                    flow.fail_next(503, count=case.unavailable)
                rss = RssSampler(bot.pid)
                ready_rss = rss.sample()
                ready_cpu = rss.cpu()
                sampler = asyncio.create_task(rss.run())
                t0 = time.monotonic()
                schedule = asyncio.create_task(follow_phases(flow, accounts, case.phases, t0))
                keys: dict[Hashable, int] = {}
                sent_at: dict[Hashable, float] = {}
                for i in range(case.jobs):
                    at = time.monotonic()
                    key = await chat.send(i % case.users, f"job{i:05d} a lighthouse at dusk")
                    keys[key], sent_at[key] = i, at
                images = await answers(chat, flow, keys, bot, t0, case)
                await quiet(lambda: sum(chat.calls(t0)[0].values()), quiet_for=QUIET, at_most=10)
                cpu = rss.cpu() - ready_cpu
                sampler.cancel()
                schedule.cancel()
    answered = _answer_times(flow)
    downloads = flow.fife_requests()
    calls, refused = chat.calls(t0)
    last = max(images.values(), default=t0) - t0
    served = max(answered.values(), default=t0) - t0
    unanswered = set(keys.values()) - {keys[k] for k in images}
    responded = chat.first_responses()
    return Run(
        makespan=last if len(images) == case.jobs else None,
        answered=len(images),
        failed=chat.failures(),
        lost=len(unanswered - _reached(flow)),
        last_image=last,
        first_image=min(images.values(), default=t0) - t0,
        last_served=served if len(answered) == case.jobs else None,
        overheads=[at - answered[keys[k]] for k, at in images.items() if keys[k] in answered],
        calls=calls,
        refused=refused,
        upstream_429s=flow.throttled,
        peak_rss=rss.peak,
        ready_rss=ready_rss,
        cpu=cpu,
        media_connections=len({r.peer for r in downloads}) / max(1, len(downloads)),
        load=(load_before, os.getloadavg()[0]),
        attempts=sorted(r.answered_at - t0 for r in flow.images_requests() if r.answered_at),
        held=[
            (r.arrived_at - t0, r.answered_at - t0)
            for r in flow.images_requests()
            if r.status == 200 and r.answered_at
        ],
        throttles=[r.arrived_at - t0 for r in flow.images_requests() if r.status == 429],
        responses=[responded[k] - sent_at[k] for k in keys if k in responded],
        late=chat.late(),
    )


async def answers(
    chat: Platform,
    flow: FakeFlowServer,
    keys: dict[Hashable, int],
    bot: asyncio.subprocess.Process,
    t0: float,
    case: Case,
) -> dict[Hashable, float]:
    """Each command's image arrival, once every job is answered or nothing happened for
    ``STALL`` seconds (then nothing more will: the unanswered commands were dropped)."""
    deadline = t0 + 120 + 10 * (case.ideal() or 30)
    activity, changed, polls = -1, time.monotonic(), 0
    images: dict[Hashable, float] = {}
    while bot.returncode is None and time.monotonic() < deadline:
        images = {k: at for k, at in chat.images().items() if k in keys}
        if len(images) + chat.failures() >= case.jobs:
            break
        polls += 1
        if polls % 20 == 0:  # once a second: this scans every call
            now = len(flow.requests) + sum(chat.calls(t0)[0].values())
            if now != activity:
                activity, changed = now, time.monotonic()
            if time.monotonic() - changed > STALL:
                break
        await asyncio.sleep(POLL)
    return images


def _reached(flow: FakeFlowServer) -> set[int]:
    """The job numbers the upstream was asked for, whatever it answered."""
    prompts = (str((r.json or {}).get("prompt", "")) for r in flow.images_requests())
    return {int(m[1]) for p in prompts if (m := JOB.search(p))}


def _answer_times(flow: FakeFlowServer) -> dict[int, float]:
    """When the upstream's successful answer for each job number left the fake Flow server."""
    times: dict[int, float] = {}
    for request in flow.images_requests():
        prompt = str((request.json or {}).get("prompt", ""))
        if request.status == 200 and (m := JOB.search(prompt)):
            times[int(m[1])] = request.answered_at
    return times


# -- the report ----------------------------------------------------------------------------


def _row(name: str, values: Sequence[float], fmt: str) -> str:
    if not values:
        return f"  {name:<34}{'—':>10}"
    cells = (statistics.median(values), min(values), max(values))
    return f"  {name:<34}" + "".join(f"{format(v, fmt):>10}" for v in cells)


@dataclass
class Summary:
    kind: str
    case: Case
    makespan: float | None
    ratio: float | None
    busy: float | None  # ideal ÷ time to the upstream's last answer
    first: float
    p50: float
    p95: float
    p99: float
    calls: float
    refused: float  # the platform's 429s
    upstream_429s: float
    lost: float
    rss: float


def report(kind: str, case: Case, runs: list[Run], calls_name: str, trace: bool = False) -> Summary:
    done = [r for r in runs if r.makespan is not None]
    makespans = [r.makespan for r in done if r.makespan is not None]
    ideal = case.ideal()
    ratios = [ideal / m for m in makespans] if ideal else []
    served = [r.last_served for r in runs if r.last_served]
    busy = [ideal / t for t in served] if ideal else []
    overheads = {q: [percentile(r.overheads, q) * 1000 for r in runs] for q in (0.5, 0.95, 0.99)}
    per_job = [sum(r.calls.values()) / case.jobs for r in runs]
    mb = 2**20
    loads = ", ".join(f"{a:.1f}→{b:.1f}" for r in runs for a, b in [r.load])
    print(f"\n{kind} · {case.name}: {case.describe()} · {len(runs)} runs")
    print(f"  load average (1 min) before→after each run: {loads}")
    print(f"  {'':<34}{'median':>10}{'min':>10}{'max':>10}")
    if ideal is not None:
        print(f"  {'ideal makespan, s':<34}{ideal:>10.2f}")
    print(_row("makespan to the chat, s", makespans, ".2f"))
    if ratios:
        print(_row("ratio ideal/actual", ratios, ".3f"))
    if len(done) < len(runs):
        print(_row("last image, all runs (some lost), s", [r.last_image for r in runs], ".2f"))
    if busy:
        print(_row("upstream kept busy, ideal/its end", busy, ".3f"))
    used = [u for r in runs if r.last_served and (u := r.utilisation(case, 0.0, r.last_served))]
    print(_row("upstream slots held ÷ capacity", used, ".3f"))
    print(_row("first picture at, s", [r.first_image for r in runs], ".2f"))
    for q, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        print(_row(f"upstream answer → image {label}, ms", overheads[q], ".0f"))
    responses = [r for r in runs if r.responses]
    medians = [statistics.median(r.responses) * 1000 for r in responses]
    print(_row("first response p50, ms", medians, ".0f"))
    print(_row("first response max, ms", [max(r.responses) * 1000 for r in responses], ".0f"))
    print(_row("acknowledged too late (10062)", [r.late for r in runs], ".0f"))
    print(_row(f"{calls_name} per job", per_job, ".2f"))
    print(_row(f"429s from {kind}", [r.refused.total() for r in runs], ".0f"))
    print(_row("429s from the upstream", [r.upstream_429s for r in runs], ".0f"))
    print(_row("bot peak RSS, MB", [r.peak_rss / mb for r in runs], ".1f"))
    print(_row("bot RSS when ready, MB", [r.ready_rss / mb for r in runs], ".1f"))
    print(_row("bot CPU from ready to the end, s", [r.cpu for r in runs], ".2f"))
    print(_row("connections per picture download", [r.media_connections for r in runs], ".2f"))
    incomplete = [r for r in runs if r.makespan is None]
    if incomplete:
        print(
            f"  {len(incomplete)} run(s) incomplete: "
            + "; ".join(
                f"{r.answered} images (the last at {r.last_image:.1f} s), {r.failed} failure "
                f"messages, {r.lost} commands dropped unanswered (never sent upstream), "
                f"{case.jobs - r.answered - r.failed - r.lost} others unanswered"
                for r in incomplete
            )
        )
    if case.unavailable:
        for i, r in enumerate(runs, 1):
            at = ", ".join(f"{t:.1f}" for t in r.attempts)
            print(f"  run {i}: upstream answered at {at} s")
    if trace:
        for i, r in enumerate(runs, 1):
            print(f"  run {i}, second by second: capacity, slots held (mean), 429s, answers")
            for second in range(math.ceil(r.last_image)):
                use = r.utilisation(case, second, second + 1) or 0.0
                capacity = case.capacity_at(second) * case.accounts
                throttled = sum(1 for t in r.throttles if second <= t < second + 1)
                answered = sum(1 for _, b in r.held if second <= b < second + 1)
                print(
                    f"    {second:>4} s  {capacity:>3}  {use * capacity:>6.2f}  {throttled:>3}"
                    f"  {answered:>3}"
                )
    total = sum((r.calls for r in runs), Counter[str]())
    refused = sum((r.refused for r in runs), Counter[str]())
    n = case.jobs * len(runs)
    shares = ", ".join(
        f"{k} {v / n:.2f}" + (f" ({refused[k] / n:.2f} refused)" if refused[k] else "")
        for k, v in total.most_common()
    )
    print(f"  {calls_name} per job by kind, all runs: {shares}")
    return Summary(
        kind,
        case,
        statistics.median(makespans) if makespans else None,
        statistics.median(ratios) if ratios else None,
        statistics.median(busy) if busy else None,
        statistics.median(r.first_image for r in runs),
        statistics.median(overheads[0.5]),
        statistics.median(overheads[0.95]),
        statistics.median(overheads[0.99]),
        statistics.median(per_job),
        statistics.median(r.refused.total() for r in runs),
        statistics.median(r.upstream_429s for r in runs),
        statistics.median(r.lost for r in runs),
        statistics.median(r.peak_rss / mb for r in runs),
    )


def print_summary(summaries: list[Summary]) -> None:
    header = (
        f"{'platform':<10}{'case':<14}{'jobs':>6}{'ideal s':>9}{'actual s':>10}{'ratio':>7}"
        f"{'busy':>7}{'first s':>8}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'calls/job':>10}{'pf 429':>7}{'up 429':>7}"
        f"{'lost':>5}{'RSS MB':>8}"
    )
    print(
        "\nMedians (actual and ratio over complete runs; busy: ideal ÷ the upstream's last "
        "answer; first: the first picture; pf 429 / up 429: the platform's and the "
        "upstream's 429s; lost: commands never answered)"
    )
    print(header + "\n" + "-" * len(header))
    for s in summaries:
        ideal = s.case.ideal()
        print(
            f"{s.kind:<10}{s.case.name:<14}{s.case.jobs:>6}"
            f"{'—' if ideal is None else format(ideal, '.2f'):>9}"
            f"{'—' if s.makespan is None else format(s.makespan, '.2f'):>10}"
            f"{'—' if s.ratio is None else format(s.ratio, '.3f'):>7}"
            f"{'—' if s.busy is None else format(s.busy, '.3f'):>7}{s.first:>8.2f}"
            f"{s.p50:>8.0f}{s.p95:>8.0f}{s.p99:>8.0f}{s.calls:>10.2f}{s.refused:>7.0f}"
            f"{s.upstream_429s:>7.0f}"
            f"{s.lost:>5.0f}{s.rss:>8.1f}"
        )
    by = {(s.kind, s.case.name): s for s in summaries}
    for kind in ("telegram", "discord"):
        one, two = by.get((kind, "one-account")), by.get((kind, "two-accounts"))
        if one and two and one.makespan and two.makespan:
            print(f"{kind}: 2 accounts vs 1, ×{one.makespan / two.makespan:.2f} (target ≥ 1.9)")


async def main(args: argparse.Namespace) -> None:
    chosen = [c for c in cases(args.quick) if not args.case or c.name in args.case]
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    kinds = [args.platform] if args.platform else ["telegram", "discord"]
    limits, tuning = Limits(), Tuning()
    if args.bot_root != ROOT:
        print(f"the bot from {args.bot_root}")
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"Python {sys.version.split()[0]}; bot settings: shipped defaults "
        f"(queued/user {limits.queued_per_user}, running/user {limits.running_per_user}, "
        f"account limit {tuning.account_min_concurrency}–{tuning.account_max_concurrency}, "
        f"retry {tuning.retry_min_seconds:g}–{tuning.retry_max_seconds:g} s)"
    )
    summaries = []
    for kind in kinds:
        limited = not args.no_platform_limits
        print(Telegram.limits(limited) if kind == "telegram" else Discord.limits(limited))
        for case in chosen:
            runs = []
            for i in range(args.runs):
                label = f"{kind}-{case.name}-{i + 1}"
                runs.append(await run_once(case, kind, limited, args.logs, label, args.bot_root))
            calls_name = Telegram.calls_name if kind == "telegram" else Discord.calls_name
            summaries.append(report(kind, case, runs, calls_name, args.trace))
            sys.stdout.flush()
    print_summary(summaries)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs in the long cases")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument(
        "--case",
        action="append",
        choices=[c.name for c in cases(False)],
        help="run only this case (repeatable)",
    )
    parser.add_argument("--platform", choices=["telegram", "discord"], help="default: both")
    parser.add_argument("--logs", type=Path, help="keep each run's bot log in this directory")
    parser.add_argument(
        "--bot-root",
        type=Path,
        default=ROOT,
        help="run the bot of this checkout (default: this one), e.g. an older one for a before",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="print each run's upstream use second by second (capacity, slots held, 429s)",
    )
    parser.add_argument(
        "--no-platform-limits",
        action="store_true",
        help="let the fake platform accept any rate (to see what its limits cost)",
    )
    asyncio.run(main(parser.parse_args()))
