"""A real local Discord for discord.py tests: REST API v10, gateway websocket and CDN.

The real ``discord.Client`` / ``commands.Bot`` logs in, connects, syncs its command tree,
receives injected interactions and answers them over real HTTP and a real websocket, so the
library's own parsing, rate-limit handling and error mapping are what the tests exercise.

Wire facts this fake relies on (read from discord.py 2.7.1, see the comments where used):

* REST goes to ``discord.http.Route.BASE`` (also used by the interaction webhook adapter).
  JSON is only parsed when the response ``content-type`` is exactly ``application/json``.
* A plain ``Client`` never calls ``GET /gateway/bot``: it connects straight to
  ``DiscordWebSocket.DEFAULT_GATEWAY`` and later to READY's ``resume_gateway_url``. Only
  ``AutoShardedClient`` asks ``/gateway/bot`` (and still dials DEFAULT_GATEWAY). So
  :meth:`FakeDiscordServer.patch_discord` patches DEFAULT_GATEWAY as well as Route.BASE.
* discord.py asks for ``compress=zlib-stream`` in the gateway query, but it only inflates
  BINARY frames; TEXT frames are read as plain JSON, which is what this fake sends.
* Interaction callbacks are posted with ``?with_response=1`` and discord.py reads
  ``data['interaction']`` from the answer, so they get a 200 JSON
  ``InteractionCallbackResponse`` (a bare 204 would crash the library).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import math
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote, urlsplit

import discord
import discord.asset
import discord.gateway
import discord.http
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

__all__ = [
    "FakeDiscordServer",
    "GatewayConnection",
    "InjectedInteraction",
    "RateLimits",
    "RestCall",
    "Upload",
]

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000
API_PREFIX = "/api/v10"

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Message flags (https://discord.com/developers/docs/resources/message#message-object-message-flags).
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15
THREAD = 11  # channel type of a public thread

# Permissions: a typical @everyone, and a bot role that can post images and embeds.
SEND_MESSAGES = 1 << 11
DEFAULT_EVERYONE_PERMISSIONS = (
    (1 << 6)  # ADD_REACTIONS
    | (1 << 10)  # VIEW_CHANNEL
    | (1 << 11)  # SEND_MESSAGES
    | (1 << 14)  # EMBED_LINKS
    | (1 << 15)  # ATTACH_FILES
    | (1 << 16)  # READ_MESSAGE_HISTORY
    | (1 << 31)  # USE_APPLICATION_COMMANDS
)
DEFAULT_APP_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | (1 << 13)  # + MANAGE_MESSAGES

# Discord's default per-file upload limit and its total request body limit (platforms.md).
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
DEFAULT_REQUEST_LIMIT = 25 * 1024 * 1024

# Option types (https://discord.com/developers/docs/interactions/application-commands).
OPT_SUB_COMMAND = 1
OPT_SUB_COMMAND_GROUP = 2
OPT_STRING = 3
OPT_INTEGER = 4
OPT_BOOLEAN = 5
OPT_USER = 6
OPT_NUMBER = 10
OPT_ATTACHMENT = 11

_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")

_ERROR_BODIES: dict[int, JSON] = {
    400: {"message": "Invalid Form Body", "code": 50035},
    401: {"message": "401: Unauthorized", "code": 0},
    403: {"message": "Missing Permissions", "code": 50013},
    404: {"message": "404: Not Found", "code": 0},
    413: {"message": "Request entity too large", "code": 40005},
    500: {"message": "500: Internal Server Error", "code": 0},
    502: {"message": "502: Bad Gateway", "code": 0},
    503: {"message": "503: Service Unavailable", "code": 0},
}

INVALID_WEBHOOK_TOKEN: JSON = {"message": "Invalid Webhook Token", "code": 50027}
ALREADY_ACKNOWLEDGED: JSON = {
    "message": "Interaction has already been acknowledged.",
    "code": 40060,
}
UNKNOWN_INTERACTION: JSON = {"message": "Unknown interaction", "code": 10062}
# Discord forgets an interaction not acknowledged within 3 s of its creation: a late callback
# answers 404/10062 ("Receiving and Responding": "you must send an initial response within 3
# seconds"), and the user sees "The application did not respond".
ACK_WINDOW = 3.0
UNKNOWN_MESSAGE: JSON = {"message": "Unknown Message", "code": 10008}
UNKNOWN_CHANNEL: JSON = {"message": "Unknown Channel", "code": 10003}
UNKNOWN_WEBHOOK: JSON = {"message": "Unknown Webhook", "code": 10015}
UNKNOWN_USER: JSON = {"message": "Unknown User", "code": 10013}
EMPTY_MESSAGE: JSON = {"message": "Cannot send an empty message", "code": 50006}
NOT_AUTHOR: JSON = {"message": "Cannot edit a message authored by another user", "code": 50005}
TOO_LARGE: JSON = {"message": "Request entity too large", "code": 40005}
MISSING_ACCESS: JSON = {"message": "Missing Access", "code": 50001}
MISSING_PERMISSIONS: JSON = {"message": "Missing Permissions", "code": 50013}
CANNOT_DM: JSON = {"message": "Cannot send messages to this user", "code": 50007}

VIEW_CHANNEL, SEND_MESSAGES, ATTACH_FILES = 1 << 10, 1 << 11, 1 << 15
GROUP_DM = 3  # channel type


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Upload:
    """One uploaded multipart file part (``files[n]``)."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RestCall:
    """One HTTP request the fake answered (REST under /api/v10, or the CDN).

    ``path`` is relative to ``/api/v10`` for REST (``/channels/1/messages``) and absolute for
    the CDN (``/attachments/...``). ``json`` is the JSON body, or ``payload_json`` of a
    multipart body. ``files`` maps each uploaded filename to its bytes; ``uploads`` keeps the
    parts in order. ``status`` and ``response`` are what the fake answered; ``at`` is when the
    request arrived (``time.monotonic()``).
    """

    method: str
    path: str
    json: Any
    files: dict[str, bytes]
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    status: int = 0
    response: Any = None
    injected: bool = False  # the answer was a test's ``fail_next``
    at: float = 0.0

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


@dataclass(frozen=True)
class InjectedInteraction:
    """An interaction pushed to the bot: its id, its webhook token and the full payload."""

    id: int
    token: str
    payload: JSON

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel"]["id"])


@dataclass
class GatewayConnection:
    """One websocket connection: the URL it used, frames both ways, how it ended."""

    path: str
    query: dict[str, str]
    received: list[JSON] = field(default_factory=list)
    sent: list[JSON] = field(default_factory=list)
    session_id: str | None = None
    resumed: bool = False
    close_code: int | None = None


@dataclass
class _Session:
    session_id: str
    token: str
    intents: int
    ws: web.WebSocketResponse | None
    conn: GatewayConnection
    seq: int = 0
    history: list[JSON] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Interaction:
    id: int
    token: str
    type: int
    payload: JSON
    channel_id: int
    guild_id: int | None
    message_id: int | None  # the message a component / modal-from-component sits on
    callback_type: int | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    token_expired: bool = False
    unknown: bool = False
    created: float = 0.0  # time.monotonic() when it was sent to the bot


@dataclass
class _Blob:
    channel_id: int
    filename: str
    data: bytes
    content_type: str
    expired: bool = False


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    remaining: int
    retry_after: float | None
    skip: int = 0  # matching requests let through before the fault applies


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    uploads: list[Upload]


@dataclass
class _Reply:
    status: int
    body: Any = None  # None: no body at all (204)
    headers: dict[str, str] = field(default_factory=dict)
    injected: bool = False  # a test's fail_next


_Handler = Callable[[_Request, re.Match[str]], Awaitable[_Reply]]


def _rate_limited(
    retry_after: float, *, limit: int, bucket: str, is_global: bool = False
) -> _Reply:
    """A 429 with the headers and body discord.py reads (``Via`` + JSON ``retry_after``): with
    them it sleeps ``retry_after`` and retries; without, it takes the 429 for a Cloudflare ban
    and raises instead."""
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": bucket,
        "X-RateLimit-Scope": "global" if is_global else "user",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    body = {"message": "You are being rate limited.", "retry_after": retry_after}
    return _Reply(429, {**body, "global": is_global}, headers)


class _Window:
    """One rate-limit bucket: ``limit`` requests per ``period``, the window opened by the first."""

    def __init__(self, limit: int, period: float, name: str) -> None:
        self.limit, self.period, self.name = limit, period, name
        self.remaining, self.reset_at = limit, -math.inf

    def hit(self, now: float) -> float | None:
        """None if admitted (and counted), else the seconds until the window resets."""
        if now >= self.reset_at:
            self.remaining, self.reset_at = self.limit, now + self.period
        if self.remaining == 0:
            return self.reset_at - now
        self.remaining -= 1
        return None

    def headers(self, now: float) -> dict[str, str]:
        reset_after = self.reset_at - now
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self.name,
        }


_CHANNEL_MESSAGES = re.compile(r"/channels/(?P<cid>\d+)/messages(?P<one>/\d+)?")
_INTERACTION_WEBHOOK = re.compile(r"/webhooks/\d+/(?P<token>[^/]+)(?:/.*)?")


@dataclass
class RateLimits:
    """Discord's rate limits for the routes a bot like ours uses (docs: topics/rate-limits).

    - global: ``global_per_second`` requests a second with the bot token; interaction
      callbacks and webhooks are exempt, as the docs say of interaction endpoints;
    - channel messages: ``channel_messages`` (limit, seconds) per channel and per route
      (create, edit, delete): 5 per 5 s, the figure Discord has long answered with;
    - interaction webhooks (edit the response, followups): ``interaction_webhook`` per
      interaction token, 5 per 2 s (measured and confirmed in discord/discord-api-docs#2701).

    Not modelled: the channel-wide limit on webhook messages (about 30 a minute, reported but
    undocumented), per-guild limits, Cloudflare's ban after 10,000 invalid requests in
    10 minutes. Every limited route answers its bucket's ``X-RateLimit-*`` headers, so
    discord.py waits before a bucket runs dry instead of meeting a 429. ``clock`` is for tests.
    """

    global_per_second: int = 50
    channel_messages: tuple[int, float] = (5, 5.0)
    interaction_webhook: tuple[int, float] = (5, 2.0)
    clock: Callable[[], float] = time.monotonic
    _windows: dict[tuple[str, ...], _Window] = field(default_factory=dict, init=False, repr=False)

    def admit(self, method: str, path: str, bot_auth: bool) -> _Reply | dict[str, str]:
        """A 429 for a request over a limit, else the headers to answer it with."""
        now = self.clock()
        route = self._route_window(method, path)
        if bot_auth:
            limit = self.global_per_second
            window = self._window(("global",), limit, 1.0, "global")
            retry = window.hit(now)
            if retry is not None:
                return _rate_limited(retry, limit=limit, bucket="global", is_global=True)
        if route is None:
            return {}
        retry = route.hit(now)
        if retry is not None:
            return _rate_limited(retry, limit=route.limit, bucket=route.name)
        return route.headers(now)

    def _route_window(self, method: str, path: str) -> _Window | None:
        if m := _CHANNEL_MESSAGES.fullmatch(path):
            shape = "message" if m["one"] else "messages"
            limit, period = self.channel_messages
            return self._window(("channel", method, shape, m["cid"]), limit, period)
        if m := _INTERACTION_WEBHOOK.fullmatch(path):
            limit, period = self.interaction_webhook
            return self._window(("webhook", m["token"]), limit, period)
        return None

    def _window(
        self, key: tuple[str, ...], limit: int, period: float, name: str | None = None
    ) -> _Window:
        if key not in self._windows:
            # Discord's bucket ids are opaque and shared by a route's major parameters.
            self._windows[key] = _Window(limit, period, name or "-".join(key[:-1]))
        return self._windows[key]


def _ok(body: Any) -> _Reply:
    return _Reply(200, body)


def _err(status: int, body: JSON) -> _Reply:
    return _Reply(status, dict(body))


def _form_error(field_name: str, code: str, message: str) -> _Reply:
    # Discord's 50035 shape: errors nested by field path, leaves under "_errors".
    return _err(
        400,
        {
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {field_name: {"_errors": [{"code": code, "message": message}]}},
        },
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in {"1", "true"}


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height when the bytes are an image (Discord reports them for images)."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return int(img.width), int(img.height)
    except Exception:
        return None


def _walk_components(components: Sequence[JSON]) -> Iterator[JSON]:
    for comp in components:
        yield comp
        yield from _walk_components(comp.get("components") or [])
        for key in ("component", "accessory"):
            inner = comp.get(key)
            if isinstance(inner, dict):
                yield from _walk_components([inner])


class _Snowflakes:
    """Increasing snowflakes with a real timestamp, so snowflake_time() makes sense."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(now, self._last + 1)
        return self._last


# --------------------------------------------------------------------------- the server


class FakeDiscordServer:
    """A local Discord (REST v10 + gateway + CDN) on 127.0.0.1 for the real discord.py.

    Start it with ``async with FakeDiscordServer(...) as dc`` and wrap client code in
    ``with dc.patch_discord():``. One guild (``guild_id``) with one text channel
    (``channel_id``) is served; DM channels are made on demand, and ``add_channel()`` /
    ``add_thread(parent_id)`` add a text channel / a public thread to the guild.

    Setup and wiring
      ``root``, ``api_base``, ``gateway_url`` - addresses of the running fake.
      ``patch_discord()`` - context manager pointing discord.py's REST, gateway and asset
      bases at the fake, restored on exit.
      ``await wait_ready()`` - until a READY (+ GUILD_CREATE) not yet waited for was sent.
      Tip: build clients with ``guild_ready_timeout=0.1`` if a test awaits ``on_ready``.

    Injection (each returns the built payload; interactions return ``InjectedInteraction``)
      ``await dispatch(event, data)`` - any gateway dispatch, with a proper sequence number.
      ``await slash_command(name, options, *, user_id, guild=True, attachments=None)``
      ``await press_button(message_id, custom_id, *, user_id)``
      ``await select(message_id, custom_id, values, *, user_id)``
      ``await submit_modal(custom_id, values, *, user_id)``
      ``await message_context_menu(name, target_message_id, *, user_id)``
      ``await user_message(channel_id, user_id, content, attachments=())``
      ``await request_reconnect()`` - gateway op 7; waits until the client RESUMEd.
      ``await join_guild(guild_id, channel_id, *, system_channel=True, can_post=True)`` - the
      bot is added to another server (GUILD_CREATE without ``unavailable``).

    Recording
      ``calls`` (list of ``RestCall``), ``await wait_for(path_substring_or_predicate,
      count=1, timeout=5.0)``, ``interaction_responses(interaction_id)``,
      ``original_message(interaction_id)``, ``opened_modal(interaction_id)``,
      ``channel_messages(channel_id)``, ``message(message_id)``, ``commands(guild_id)``,
      ``sync_count``, ``gateway_connections``, ``dm_channel_id(user_id)``.

    Where the bot may post (always on, as on Discord)
      ``channel_permissions[channel_id]`` - the bot's permissions in a channel where they differ
      from ``app_permissions`` (overwrites): without View Channel a post answers 403/50001,
      without Send Messages (or Attach Files, for files) 403/50013.
      ``dms_closed`` - users who don't take DMs from the bot (or share no server with it):
      a DM answers 403/50007.
      ``member_permissions[user_id]`` - a member's permissions where they differ from
      ``everyone_permissions`` (a server admin's), as their interactions carry them.
      ``group_dm(*user_ids)`` - a group DM of those users, the bot not among them;
      ``foreign_channel()`` - a text channel in a server the bot is not in. Commands reach
      both only through a user install (the interaction says so: context 2, resp. a guild
      without the bot, and ``authorizing_integration_owners`` of the user); the bot's own
      posts there answer 403/50001. The interaction's webhook works everywhere.

    Rate limits
      ``rate_limits`` (constructor keyword, also an attribute): a ``RateLimits`` makes the fake
      answer Discord's rate-limit headers and 429s; None (the default) accepts any rate.

    Faults and expiry
      ``fail_next(method, path_regex, status, body=None, *, count=1, retry_after=None,
      after=0)``,
      ``expire_token(token)`` (webhooks answer 401/50027), ``expire_interaction(id)``
      (callbacks answer 404/10062), ``expire_attachment(attachment_id)`` (CDN 404).
      A callback later than ``ack_window`` seconds (constructor keyword, default
      ``ACK_WINDOW``, Discord's 3 s; None: never late) after the interaction was sent answers
      404/10062 too, as Discord does; ``late_callbacks`` lists those interactions' ids.
      Always on: 401 without ``Authorization: Bot``, 400/40060 on a second callback,
      413/40005 over ``upload_limit`` per file or ``request_limit`` per body, 400/50035 on
      invalid message or command payloads.

    Watching
      ``before_answer``: an async callable awaited with each REST call once it is handled and
      before the bot gets its answer (what else the bot had done when it made the call).
    """

    def __init__(
        self,
        *,
        application_id: int = 1111,
        bot_user_id: int = 2222,
        guild_id: int = 900_000_000_000_000_001,
        channel_id: int = 900_000_000_000_000_002,
        token: str | None = None,
        bot_name: str = "FakeBot",
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        app_permissions: int = DEFAULT_APP_PERMISSIONS,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
        request_limit: int = DEFAULT_REQUEST_LIMIT,
        heartbeat_interval_ms: int = 41_250,
        application_flags: int = 0,
        rate_limits: RateLimits | None = None,
        ack_window: float | None = ACK_WINDOW,
    ) -> None:
        self.application_id = application_id
        self.rate_limits = rate_limits
        self.ack_window = ack_window
        self.late_callbacks: list[int] = []
        self.bot_user_id = bot_user_id
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.token = token
        self.everyone_permissions = everyone_permissions
        self.app_permissions = app_permissions
        self.allowed_privileged_intents = allowed_privileged_intents
        self.upload_limit = upload_limit
        self.request_limit = request_limit
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.application_flags = application_flags
        self.bot_role_id = guild_id + 1_000

        self.calls: list[RestCall] = []
        self.gateway_connections: list[GatewayConnection] = []
        self.sync_count = 0

        self._ids = _Snowflakes()
        self._bot_user: JSON = {
            "id": str(bot_user_id),
            "username": bot_name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "public_flags": 0,
            "flags": 0,
            "verified": True,
            "mfa_enabled": False,
            "email": None,
        }
        self._users: dict[int, JSON] = {bot_user_id: self._bot_user}
        text_channel: JSON = {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": "general",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        self._channels: dict[int, JSON] = {channel_id: text_channel}
        self.channel_permissions: dict[int, int] = {}
        # A member's permissions in the server where they differ from @everyone's (admins).
        self.member_permissions: dict[int, int] = {}
        self.dms_closed: set[int] = set()
        self._joined: set[int] = {guild_id}  # the servers the bot is in
        self._dm_by_user: dict[int, int] = {}
        self._messages: dict[int, JSON] = {}
        self._blobs: dict[int, _Blob] = {}
        self._commands: dict[int | None, list[JSON]] = {}
        self._command_ids: dict[tuple[int | None, int, str], int] = {}
        self._interactions: dict[int, _Interaction] = {}
        self._by_token: dict[str, _Interaction] = {}
        self._modals: dict[str, tuple[JSON, _Interaction]] = {}
        self._faults: list[_Fault] = []
        self.before_answer: Callable[[RestCall], Awaitable[None]] | None = None
        self._sessions: dict[str, _Session] = {}
        self._live_ws: set[web.WebSocketResponse] = set()
        self._ready_sent = 0
        self._ready_waited = 0
        self._resumes = 0
        self._cond: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self._cond = asyncio.Condition()
        # Discord accepts bodies up to 25 MiB; let aiohttp read more so the fake itself can
        # answer 413/40005 in Discord's JSON shape instead of aiohttp's text/plain 413.
        app = web.Application(client_max_size=self.request_limit * 2 + 1024 * 1024)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._handle_api)
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self._handle_cdn)
        app.router.add_get("/", self._handle_gateway)
        app.router.add_get("/resume-gateway", self._handle_gateway)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._live_ws):
            with contextlib.suppress(ConnectionError):
                await ws.close(code=1001, message=b"fake server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        return self.root + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py at this fake; restore the real addresses on exit.

        ``Route.BASE`` serves REST and the interaction webhooks. ``DEFAULT_GATEWAY`` is needed
        because ``Client.connect`` dials it directly (it never asks ``/gateway/bot``);
        resumes then follow READY's ``resume_gateway_url``, which points here too.
        ``Asset.BASE`` keeps avatar/icon fetches off the internet.
        """
        if discord.http.INTERNAL_API_VERSION != 10:
            raise RuntimeError("the fake serves API v10 only")
        ws_cls = discord.gateway.DiscordWebSocket
        saved = (discord.http.Route.BASE, ws_cls.DEFAULT_GATEWAY, discord.asset.Asset.BASE)
        discord.http.Route.BASE = self.api_base
        ws_cls.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        discord.asset.Asset.BASE = self.root
        try:
            yield
        finally:
            discord.http.Route.BASE, ws_cls.DEFAULT_GATEWAY, discord.asset.Asset.BASE = saved

    # ------------------------------------------------------------------ waiting

    @property
    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            raise RuntimeError("FakeDiscordServer is not running (use `async with`)")
        return self._cond

    async def _changed(self) -> None:
        async with self._condition:
            self._condition.notify_all()

    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout), self._condition:
                await self._condition.wait_for(predicate)
        except TimeoutError:
            recent = "\n".join(f"  {c}" for c in self.calls[-15:]) or "  (no calls)"
            raise TimeoutError(
                f"{what} timed out after {timeout}s; last calls:\n{recent}"
            ) from None

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Wait for a READY (and its GUILD_CREATE) that no earlier wait_ready consumed."""
        await self._wait(lambda: self._ready_sent > self._ready_waited, timeout, "wait_ready")
        self._ready_waited = self._ready_sent

    async def wait_for(
        self,
        match: str | Callable[[RestCall], bool],
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[RestCall]:
        """Wait until ``count`` recorded calls match; return all matching calls.

        A string matches as a substring of ``"METHOD /path"``, so ``"/interactions/"`` and
        ``"PATCH /webhooks/"`` both work. No polling: woken by a Condition on every call.
        """
        pred = self._call_matcher(match)
        await self._wait(
            lambda: sum(1 for c in self.calls if pred(c)) >= count,
            timeout,
            f"wait_for({match!r}, count={count})",
        )
        return [c for c in self.calls if pred(c)]

    @staticmethod
    def _call_matcher(match: str | Callable[[RestCall], bool]) -> Callable[[RestCall], bool]:
        if isinstance(match, str):
            return lambda c: match in f"{c.method} {c.path}"
        return match

    # ------------------------------------------------------------------ inspection

    def interaction_responses(self, interaction_id: int) -> list[RestCall]:
        """The callback and every webhook call (edits, followups) made with its token."""
        state = self._interactions[interaction_id]
        callback = f"/interactions/{state.id}/{state.token}/"
        webhook = f"/webhooks/{self.application_id}/{state.token}"
        return [
            c
            for c in self.calls
            if c.path.startswith(callback) or c.path == webhook or c.path.startswith(webhook + "/")
        ]

    def original_message(self, interaction_id: int) -> JSON | None:
        """The current ``@original`` response message of an interaction, if any."""
        mid = self._interactions[interaction_id].original_message_id
        return None if mid is None else copy.deepcopy(self._messages.get(mid))

    def opened_modal(self, interaction_id: int) -> JSON:
        """The modal (custom_id, title, components) the bot opened for an interaction."""
        for data, opener in self._modals.values():
            if opener.id == interaction_id:
                return copy.deepcopy(data)
        raise KeyError(f"interaction {interaction_id} opened no modal")

    def channel_messages(self, channel_id: int) -> list[JSON]:
        """Messages currently in a channel (users' and the bot's, ephemeral ones included)."""
        return [
            copy.deepcopy(m) for m in self._messages.values() if m["channel_id"] == str(channel_id)
        ]

    def message(self, message_id: int) -> JSON:
        return copy.deepcopy(self._messages[message_id])

    def commands(self, guild_id: int | None = None) -> list[JSON]:
        """The commands last synced globally (``None``) or for a guild."""
        return copy.deepcopy(self._commands.get(guild_id, []))

    def attachment_bytes(self, attachment_id: int) -> bytes:
        return self._blobs[attachment_id].data

    def dm_channel_id(self, user_id: int) -> int:
        """The DM channel between the bot and a user, created on first use."""
        if user_id not in self._dm_by_user:
            cid = self._ids.next()
            self._dm_by_user[user_id] = cid
            self._channels[cid] = {
                "id": str(cid),
                "type": 1,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self._user(user_id)],
            }
        return self._dm_by_user[user_id]

    def group_dm(self, *user_ids: int) -> int:
        """A group DM of ``user_ids``, without the bot (user-installed commands reach it)."""
        cid = self._ids.next()
        self._channels[cid] = {
            "id": str(cid),
            "type": GROUP_DM,
            "last_message_id": None,
            "flags": 0,
            "name": None,
            "icon": None,
            "owner_id": str(user_ids[0]),
            "recipients": [self._user(u) for u in user_ids],
        }
        return cid

    def foreign_channel(self) -> int:
        """A text channel of a server the bot was never invited to."""
        cid = self._ids.next()
        self._channels[cid] = {
            **self._channels[self.channel_id],
            "id": str(cid),
            "guild_id": str(self._ids.next()),
            "name": "elsewhere",
            "last_message_id": None,
        }
        return cid

    def _post_refused(self, channel: JSON, with_files: bool) -> _Reply | None:
        """Discord's answer when the bot may not post in ``channel``, else None."""
        kind = channel["type"]
        if kind == GROUP_DM:
            member = any(int(u["id"]) == self.bot_user_id for u in channel["recipients"])
            return None if member else _err(403, MISSING_ACCESS)
        if kind == 1:
            recipient = int(channel["recipients"][0]["id"])
            return _err(403, CANNOT_DM) if recipient in self.dms_closed else None
        if int(channel["guild_id"]) not in self._joined:
            return _err(403, MISSING_ACCESS)  # a server the bot is not in
        allowed = self.channel_permissions.get(int(channel["id"]), self.app_permissions)
        if not allowed & VIEW_CHANNEL:
            return _err(403, MISSING_ACCESS)
        if not allowed & SEND_MESSAGES or (with_files and not allowed & ATTACH_FILES):
            return _err(403, MISSING_PERMISSIONS)
        return None

    # ------------------------------------------------------------------ switches

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: Any = None,
        *,
        count: int = 1,
        retry_after: float | None = None,
        after: int = 0,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (``method`` "*" = any),
        once ``after`` of them have gone through as usual.

        ``path_regex`` is searched in the call's ``path`` (relative to /api/v10). The default
        body is Discord's for the status; a 429 carries the headers and body discord.py reads
        (``Via`` + JSON ``retry_after``), so the library sleeps and retries on its own.
        """
        if body is None:
            if status == 429:
                ra = 0.1 if retry_after is None else retry_after
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": ra,
                    "global": False,
                }
            else:
                body = dict(_ERROR_BODIES.get(status, {"message": f"{status}", "code": 0}))
        self._faults.append(
            _Fault(method.upper(), re.compile(path_regex), status, body, count, retry_after, after)
        )

    def expire_token(self, token: str) -> None:
        """The interaction token is past its 15 minutes: webhook calls answer 401/50027.

        Its callback window (3 s) is long gone by then too, so callbacks answer 404/10062.
        """
        state = self._by_token[token]
        state.token_expired = True
        state.unknown = True

    def expire_interaction(self, interaction_id: int) -> None:
        """The 3-second callback window is over: callbacks answer 404/10062."""
        self._interactions[interaction_id].unknown = True

    def expire_attachment(self, attachment_id: int) -> None:
        """The signed CDN URL expired: the CDN answers 404."""
        self._blobs[attachment_id].expired = True

    # ------------------------------------------------------------------ gateway

    async def dispatch(self, event: str, data: JSON) -> int:
        """Send a DISPATCH (op 0) to every session; return how many live sockets got it.

        A session whose socket dropped without a 1000/1001 close stays resumable and keeps
        the frame for replay on RESUME, like Discord. (discord.py 2.7 + aiohttp 3.14 end
        ``Client.close()`` with code 4000, so old sessions linger; they only buffer.)
        MESSAGE_CREATE/UPDATE honour the GUILD_MESSAGES / DIRECT_MESSAGES / MESSAGE_CONTENT
        intents the session identified with.
        """
        if not self._sessions:
            raise RuntimeError(f"no gateway session to dispatch {event} to; is the client running?")
        delivered = 0
        for session in list(self._sessions.values()):
            visible = self._visible(session, event, data)
            if visible is not None and await self._send_dispatch(session, event, visible):
                delivered += 1
        return delivered

    async def request_reconnect(self, timeout: float = 5.0) -> None:
        """Send op 7 RECONNECT to live sessions and wait until the client has RESUMEd."""
        before = self._resumes
        live = [s for s in self._sessions.values() if s.ws is not None]
        if not live:
            raise RuntimeError("no live gateway session")
        for session in live:
            if session.ws is not None:
                await self._send(
                    session.ws, session.conn, {"op": 7, "d": None, "s": None, "t": None}
                )
        await self._wait(lambda: self._resumes >= before + len(live), timeout, "resume")

    def _visible(self, session: _Session, event: str, data: JSON) -> JSON | None:
        if event not in {"MESSAGE_CREATE", "MESSAGE_UPDATE"}:
            return data
        in_guild = "guild_id" in data
        needed = INTENT_GUILD_MESSAGES if in_guild else INTENT_DIRECT_MESSAGES
        if not session.intents & needed:
            return None
        # Message content is privileged: without the intent, guild messages arrive without
        # content/embeds/attachments/components unless they mention the bot or are its own.
        author_id = int(data.get("author", {}).get("id", 0))
        mentioned = any(int(u["id"]) == self.bot_user_id for u in data.get("mentions", []))
        if (
            session.intents & INTENT_MESSAGE_CONTENT
            or not in_guild
            or mentioned
            or author_id == self.bot_user_id
        ):
            return data
        stripped = dict(data)
        stripped.update(content="", embeds=[], attachments=[], components=[])
        stripped.pop("poll", None)
        return stripped

    async def _send(self, ws: web.WebSocketResponse, conn: GatewayConnection, frame: JSON) -> bool:
        # Every frame goes out as a TEXT frame: discord.py only zlib-inflates BINARY frames,
        # so plain JSON text is accepted even though it asked for compress=zlib-stream.
        conn.sent.append(frame)
        try:
            await ws.send_str(json.dumps(frame, separators=(",", ":")))
        except ConnectionError:
            return False
        return True

    async def _send_dispatch(self, session: _Session, event: str, data: JSON) -> bool:
        # Sequence numbers are per session, strictly increasing, and assigned under a lock
        # so frames leave in sequence order (discord.py resumes from the last `s` it saw).
        async with session.lock:
            session.seq += 1
            frame: JSON = {"op": 0, "s": session.seq, "t": event, "d": copy.deepcopy(data)}
            session.history.append(frame)
            if session.ws is None or session.ws.closed:
                return False
            if not await self._send(session.ws, session.conn, frame):
                session.ws = None
                return False
            return True

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="websocket upgrade expected")
        await ws.prepare(request)
        conn = GatewayConnection(path=request.path, query=dict(request.query))
        self.gateway_connections.append(conn)
        self._live_ws.add(ws)
        session: _Session | None = None
        hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["fake-gateway"]}
        await self._send(ws, conn, {"op": 10, "d": hello, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    # Discord closes 4002 "Decode error" on payloads it cannot read.
                    await ws.close(code=4002, message=b"Decode error")
                    break
                frame = json.loads(msg.data)
                conn.received.append(frame)
                op = frame.get("op")
                if op == 1:
                    await self._send(ws, conn, {"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:
                    session = await self._identify(ws, conn, frame.get("d") or {}) or session
                elif op == 6:
                    session = await self._resume(ws, conn, frame.get("d") or {}) or session
                elif op == 8:
                    await self._members_chunk(session, frame.get("d") or {})
        finally:
            self._live_ws.discard(ws)
            conn.close_code = ws.close_code
            if session is not None and session.ws is ws:
                session.ws = None
                # A 1000/1001 close ends the session for good; other codes may RESUME.
                if ws.close_code in (1000, 1001):
                    self._sessions.pop(session.session_id, None)
            await self._changed()
        return ws

    def _token_ok(self, token: str | None) -> bool:
        return bool(token) and (self.token is None or token == self.token)

    async def _identify(
        self, ws: web.WebSocketResponse, conn: GatewayConnection, d: JSON
    ) -> _Session | None:
        token = d.get("token")
        if not isinstance(token, str) or not self._token_ok(token):
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = d.get("intents")
        if not isinstance(intents, int):
            await ws.close(code=4013, message=b"Invalid intent(s).")  # intents are required in v10
            return None
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        session = _Session(
            session_id=secrets.token_hex(16), token=token, intents=intents, ws=ws, conn=conn
        )
        conn.session_id = session.session_id
        self._sessions[session.session_id] = session
        ready = {
            "v": 10,
            "user": self._bot_user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url + "/resume-gateway",
            "application": {"id": str(self.application_id), "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-gateway"],
        }
        await self._send_dispatch(session, "READY", ready)
        await self._send_dispatch(session, "GUILD_CREATE", self._guild_payload())
        self._ready_sent += 1
        await self._changed()
        return session

    async def _resume(
        self, ws: web.WebSocketResponse, conn: GatewayConnection, d: JSON
    ) -> _Session | None:
        session = self._sessions.get(str(d.get("session_id")))
        if session is None or d.get("token") != session.token:
            # op 9 with d=false: not resumable; discord.py then IDENTIFYs afresh.
            await self._send(ws, conn, {"op": 9, "d": False, "s": None, "t": None})
            return None
        async with session.lock:
            session.ws = ws
            conn.session_id = session.session_id
            conn.resumed = True
            last_seen = d.get("seq") or 0
            for frame in session.history:
                if frame["s"] > last_seen and not await self._send(ws, conn, frame):
                    break
        await self._send_dispatch(session, "RESUMED", {"_trace": ["fake-gateway"]})
        self._resumes += 1
        await self._changed()
        return session

    async def _members_chunk(self, session: _Session | None, d: JSON) -> None:
        # Clients with the members intent chunk guilds at startup and wait for this.
        if session is None:
            return
        chunk = {
            "guild_id": str(self.guild_id),
            "members": [self._bot_member()],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if "nonce" in d:
            chunk["nonce"] = d["nonce"]
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    # ------------------------------------------------------------------ payload builders

    def _user(self, user_id: int) -> JSON:
        if user_id not in self._users:
            self._users[user_id] = {
                "id": str(user_id),
                "username": f"user{user_id}",
                "discriminator": "0",
                "global_name": f"User {user_id}",
                "avatar": None,
                "bot": False,
                "public_flags": 0,
            }
        return copy.deepcopy(self._users[user_id])

    def _member(self, user_id: int, *, with_user: bool = True) -> JSON:
        member: JSON = {
            "roles": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = self._user(user_id)
        return member

    def _bot_member(self) -> JSON:
        member = self._member(self.bot_user_id)
        member["roles"] = [str(self.bot_role_id)]
        return member

    async def join_guild(
        self, guild_id: int, channel_id: int, *, system_channel: bool = True, can_post: bool = True
    ) -> None:
        """The bot is added to a new server with one text channel (``channel_id``), its system
        channel unless told otherwise; ``can_post=False``: nobody there may send messages."""
        self._channels[channel_id] = {
            **self._channels[self.channel_id],
            "id": str(channel_id),
            "guild_id": str(guild_id),
            "last_message_id": None,
        }
        self._joined.add(guild_id)
        payload = self._guild_payload(guild_id, channel_id if system_channel else None)
        del payload["unavailable"]  # a join, not a guild coming back (discord.py tells them so)
        if not can_post:
            for role in payload["roles"]:
                role["permissions"] = str(int(role["permissions"]) & ~SEND_MESSAGES)
            self.channel_permissions[channel_id] = self.app_permissions & ~SEND_MESSAGES
        await self.dispatch("GUILD_CREATE", payload)

    def _guild_payload(
        self, guild_id: int | None = None, system_channel_id: int | None = None
    ) -> JSON:
        if guild_id is None:
            guild_id, system_channel_id = self.guild_id, self.channel_id
        channels = [
            {k: v for k, v in c.items() if k != "guild_id"}
            for c in self._channels.values()
            if c.get("guild_id") == str(guild_id) and c["type"] != THREAD
        ]
        return {
            "id": str(guild_id),
            "name": "Fake Guild",
            "icon": None,
            "splash": None,
            "owner_id": "1",
            "features": [],
            "unavailable": False,
            "large": False,
            "member_count": 2,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "afk_timeout": 300,
            "system_channel_id": str(system_channel_id) if system_channel_id else None,
            "application_id": None,
            "roles": [
                {
                    # The @everyone role shares the guild's id.
                    "id": str(guild_id),
                    "name": "@everyone",
                    "permissions": str(self.everyone_permissions),
                    "position": 0,
                    "color": 0,
                    "colors": {"primary_color": 0},
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                },
                {
                    "id": str(self.bot_role_id),
                    "name": self._bot_user["username"],
                    "permissions": str(self.app_permissions),
                    "position": 1,
                    "color": 0,
                    "colors": {"primary_color": 0},
                    "hoist": False,
                    "managed": True,
                    "mentionable": False,
                    "flags": 0,
                    "tags": {"bot_id": str(self.bot_user_id)},
                },
            ],
            "channels": channels,
            "members": [self._bot_member()],
            "voice_states": [],
            "presences": [],
            "threads": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "emojis": [],
            "stickers": [],
            "soundboard_sounds": [],
        }

    def _app_info(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": self._bot_user["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self._user(1),
            "team": None,
            "verify_key": "0" * 64,
            "flags": self.application_flags,
            # Must stay null, or discord.py warns that interactions go to an HTTP endpoint.
            "interactions_endpoint_url": None,
            "integration_types_config": {"0": {}, "1": {}},
            "bot": self._bot_user,
        }

    def _store_blob(self, channel_id: int, filename: str, data: bytes, content_type: str) -> JSON:
        att_id = self._ids.next()
        self._blobs[att_id] = _Blob(channel_id, filename, data, content_type)
        # Real CDN URLs are signed (ex/is/hm) and expire; the fake keeps the shape.
        issued = int(time.time())
        url = (
            f"{self.root}/attachments/{channel_id}/{att_id}/{quote(filename)}"
            f"?ex={issued + 86400:x}&is={issued:x}&hm={secrets.token_hex(32)}"
        )
        att: JSON = {
            "id": str(att_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        dims = _image_size(data) if content_type.startswith("image/") else None
        if dims is not None:
            att["width"], att["height"] = dims
        return att

    def _new_message(
        self,
        *,
        channel_id: int,
        author: JSON,
        content: str = "",
        embeds: list[JSON] | None = None,
        components: list[JSON] | None = None,
        attachments: list[JSON] | None = None,
        flags: int = 0,
        message_type: int = 0,
        webhook_id: int | None = None,
        interaction: _Interaction | None = None,
    ) -> JSON:
        mid = self._ids.next()
        channel = self._channels[channel_id]
        msg: JSON = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [{"type": "rich", **e} for e in embeds or []],
            "components": components or [],
            "pinned": False,
            "type": message_type,
            "flags": flags,
        }
        if "guild_id" in channel:
            msg["guild_id"] = channel["guild_id"]
        if webhook_id is not None:
            msg["webhook_id"] = str(webhook_id)
            msg["application_id"] = str(self.application_id)
        if interaction is not None:
            user = interaction.payload.get("member", {}).get("user") or interaction.payload["user"]
            msg["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": user,
                "authorizing_integration_owners": interaction.payload[
                    "authorizing_integration_owners"
                ],
            }
        self._messages[mid] = msg
        channel["last_message_id"] = str(mid)
        return msg

    # ------------------------------------------------------------------ injection

    async def _inject(
        self,
        *,
        itype: int,
        data: JSON,
        user_id: int,
        channel_id: int,
        locale: str,
        message: JSON | None = None,
    ) -> InjectedInteraction:
        channel = self._channels[channel_id]
        iid = self._ids.next()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48).replace("-", "a").replace("_", "b")
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        # Where the bot isn't (a group DM, a server that never invited it) only the user's own
        # install of the app brings the command.
        user_install = channel["type"] == GROUP_DM or guild_id not in (None, *self._joined)
        allowed = self.channel_permissions.get(channel_id, self.app_permissions)
        payload: JSON = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "channel": copy.deepcopy(channel),
            "app_permissions": str(self.everyone_permissions if user_install else allowed),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            # discord.py 2.7 reads this key unconditionally (Interaction.filesize_limit).
            "attachment_size_limit": self.upload_limit,
            "data": data,
        }
        if guild_id is not None:
            member = self._member(user_id)
            member["permissions"] = str(
                self.member_permissions.get(user_id, self.everyone_permissions)
            )
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member=member,
                authorizing_integration_owners=(
                    {"1": str(user_id)} if user_install else {"0": str(guild_id)}
                ),
                context=0,  # GUILD
            )
        elif user_install:
            payload.update(
                user=self._user(user_id),
                authorizing_integration_owners={"1": str(user_id)},
                context=2,  # PRIVATE_CHANNEL
            )
        else:
            payload.update(
                user=self._user(user_id),
                authorizing_integration_owners={"0": "0"},
                context=1,  # BOT_DM
            )
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        state = _Interaction(
            id=iid,
            token=token,
            type=itype,
            payload=payload,
            channel_id=channel_id,
            guild_id=guild_id,
            message_id=int(message["id"]) if message is not None else None,
            created=time.monotonic(),
        )
        self._interactions[iid] = state
        self._by_token[token] = state
        await self.dispatch("INTERACTION_CREATE", payload)
        return InjectedInteraction(iid, token, payload)

    def add_channel(self, name: str = "other") -> int:
        """Another text channel in the guild; its id."""
        channel_id = self._ids.next()
        self._channels[channel_id] = {
            **self._channels[self.channel_id],
            "id": str(channel_id),
            "name": name,
            "position": len(self._channels),
        }
        return channel_id

    def add_thread(self, parent_id: int | None = None, name: str = "thread") -> int:
        """A public thread in a channel of the guild (``channel_id`` by default); its id."""
        parent = parent_id or self.channel_id
        thread_id = self._ids.next()
        self._channels[thread_id] = {
            "id": str(thread_id),
            "type": THREAD,
            "guild_id": str(self.guild_id),
            "parent_id": str(parent),
            "owner_id": str(self.bot_user_id),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _now_iso(),
                "locked": False,
            },
        }
        return thread_id

    def _channel_for(self, user_id: int, guild: bool, channel_id: int | None) -> int:
        if channel_id is not None:
            return channel_id
        return self.channel_id if guild else self.dm_channel_id(user_id)

    def _find_command(self, name: str, ctype: int, guild_id: int | None) -> tuple[JSON | None, int]:
        """The synced command (guild first, then global) and the guild it belongs to."""
        scopes: list[int | None] = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for cmd in self._commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == ctype:
                    return cmd, (scope or 0)
        return None, 0

    def _command_id(self, guild_id: int | None, ctype: int, name: str) -> int:
        key = (guild_id, ctype, name)
        if key not in self._command_ids:
            self._command_ids[key] = self._ids.next()
        return self._command_ids[key]

    async def slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user_id: int,
        guild: bool = True,
        attachments: Mapping[str, tuple[str, bytes, str]] | None = None,
        channel_id: int | None = None,
        locale: str = "en-US",
    ) -> InjectedInteraction:
        """Inject a CHAT_INPUT command (interaction type 2, data.type 1).

        ``name`` may be ``"group sub"``. Option types come from the synced command when there
        is one, else are inferred: str 3, int 4, bool 5, float 10. ``attachments`` maps an
        option name to ``(filename, bytes, content_type)``; each becomes an option of type
        11 whose value is the attachment id, filled into ``data.resolved.attachments`` and
        served by the fake CDN.
        """
        cid = self._channel_for(user_id, guild, channel_id)
        channel_guild = self._channels[cid].get("guild_id")
        parts = name.split()
        cmd, cmd_guild = self._find_command(
            parts[0], 1, int(channel_guild) if channel_guild else None
        )
        schema: list[JSON] = cmd.get("options", []) if cmd else []
        chain: list[JSON] = []
        for part in parts[1:]:
            sub = next((o for o in schema if o["name"] == part), None)
            schema = sub.get("options", []) if sub else []
            chain.append({"name": part, "type": sub["type"] if sub else OPT_SUB_COMMAND})
        if len(chain) == 2 and cmd is None:
            chain[0]["type"] = OPT_SUB_COMMAND_GROUP
        resolved: JSON = {}
        opts = [self._option(k, v, schema, resolved) for k, v in (options or {}).items()]
        for opt_name, (filename, blob, ctype) in (attachments or {}).items():
            att = self._store_blob(cid, filename, blob, ctype)
            att["ephemeral"] = True  # slash-command uploads are ephemeral attachments
            resolved.setdefault("attachments", {})[att["id"]] = att
            opts.append({"name": opt_name, "type": OPT_ATTACHMENT, "value": att["id"]})
        for link in reversed(chain):
            opts = [{**link, "options": opts}]
        data: JSON = {
            "id": str(cmd["id"] if cmd else self._command_id(None, 1, parts[0])),
            "name": parts[0],
            "type": 1,
            "options": opts,
        }
        if resolved:
            data["resolved"] = resolved
        if cmd_guild:
            # discord.py looks guild commands up by data.guild_id, global ones without it.
            data["guild_id"] = str(cmd_guild)
        return await self._inject(
            itype=2, data=data, user_id=user_id, channel_id=cid, locale=locale
        )

    def _option(self, name: str, value: Any, schema: Sequence[JSON], resolved: JSON) -> JSON:
        declared = next((o["type"] for o in schema if o["name"] == name), None)
        if declared == OPT_USER:
            uid = int(value)
            resolved.setdefault("users", {})[str(uid)] = self._user(uid)
            resolved.setdefault("members", {})[str(uid)] = self._member(uid, with_user=False)
            return {"name": name, "type": OPT_USER, "value": str(uid)}
        if declared is not None:
            return {"name": name, "type": declared, "value": value}
        # bool before int: bool is a subclass of int.
        if isinstance(value, bool):
            otype = OPT_BOOLEAN
        elif isinstance(value, int):
            otype = OPT_INTEGER
        elif isinstance(value, float):
            otype = OPT_NUMBER
        elif isinstance(value, str):
            otype = OPT_STRING
        else:
            raise TypeError(f"cannot infer the option type of {name}={value!r}")
        return {"name": name, "type": otype, "value": value}

    async def press_button(
        self,
        message_id: int,
        custom_id: str,
        *,
        user_id: int,
        locale: str = "en-US",
        forged: bool = False,
    ) -> InjectedInteraction:
        """Inject a button click (type 3) on a stored message; the message rides along.

        ``forged`` clicks a button that is not on the message, as if it were (the message that
        rides along carries it). Discord only sends clicks on a message's own components; this
        stands for any route that puts a job's buttons on a message in another channel (a
        re-post of the result, a copied message).
        """
        if forged:
            msg = copy.deepcopy(self._messages[message_id])
            button = {"type": 2, "style": 2, "label": "?", "custom_id": custom_id}
            msg["components"] = [{"type": 1, "components": [button]}]
        else:
            msg, comp = self._component(message_id, custom_id)
            if comp["type"] != 2:
                raise ValueError(
                    f"{custom_id!r} is a component of type {comp['type']}, not a button"
                )
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._inject(
            itype=3,
            data=data,
            user_id=user_id,
            channel_id=int(msg["channel_id"]),
            locale=locale,
            message=msg,
        )

    async def select(
        self,
        message_id: int,
        custom_id: str,
        values: Sequence[str],
        *,
        user_id: int,
        locale: str = "en-US",
    ) -> InjectedInteraction:
        """Inject a select-menu choice (type 3, data.values) on a stored message."""
        msg, comp = self._component(message_id, custom_id)
        data = {"custom_id": custom_id, "component_type": comp["type"], "values": list(values)}
        return await self._inject(
            itype=3,
            data=data,
            user_id=user_id,
            channel_id=int(msg["channel_id"]),
            locale=locale,
            message=msg,
        )

    def _component(self, message_id: int, custom_id: str) -> tuple[JSON, JSON]:
        msg = self._messages.get(message_id)
        if msg is None:
            raise KeyError(f"no message {message_id} in the fake")
        for comp in _walk_components(msg.get("components", [])):
            if comp.get("custom_id") == custom_id:
                return msg, comp
        # Discord can only send an interaction for a component that is on the message.
        raise ValueError(f"message {message_id} has no component with custom_id {custom_id!r}")

    async def submit_modal(
        self,
        custom_id: str,
        values: Mapping[str, str | bool | Sequence[str]],
        *,
        user_id: int,
        locale: str = "en-US",
    ) -> InjectedInteraction:
        """Inject a MODAL_SUBMIT (type 5).

        When the bot opened this modal (callback type 9), the submission mirrors its layout:
        action rows (type 1) stay rows, labels (type 18) come back as ``{"type": 18,
        "component": {...}}`` - both are what discord.py 2.7's ``Modal._refresh`` walks.
        Otherwise every value goes in its own action row with a text input.
        """
        opened = self._modals.get(custom_id)
        counter = iter(range(1, 1000))
        remaining = dict(values)

        def leaf(comp: JSON) -> JSON:
            out: JSON = {"type": comp["type"], "id": comp.get("id", next(counter))}
            cid = comp.get("custom_id")
            if cid is None:
                return out
            out["custom_id"] = cid
            value = remaining.pop(cid, None)
            if comp["type"] == 4:  # text input: an empty string when left blank
                out["value"] = "" if value is None else str(value)
            elif comp["type"] == 23:  # checkbox
                out["value"] = bool(value)
            elif comp["type"] == 21:  # radio group
                out["value"] = value
            elif comp["type"] in (3, 5, 6, 7, 8, 19, 22):  # selects, file upload, checkboxes
                if value is None or isinstance(value, bool):
                    out["values"] = []
                elif isinstance(value, str):
                    out["values"] = [value]
                else:
                    out["values"] = list(value)
            return out

        if opened is not None:
            modal_data, opener = opened
            components: list[JSON] = []
            for top in modal_data.get("components", []):
                if top["type"] == 1:
                    row = [leaf(c) for c in top.get("components", [])]
                    components.append({"type": 1, "id": next(counter), "components": row})
                elif top["type"] == 18:
                    components.append(
                        {"type": 18, "id": next(counter), "component": leaf(top["component"])}
                    )
                else:
                    components.append(leaf(top))
            if remaining:
                raise ValueError(f"modal {custom_id!r} has no inputs named {sorted(remaining)}")
            channel_id = opener.channel_id
            message = self._messages.get(opener.message_id) if opener.message_id else None
        else:
            components = [
                {
                    "type": 1,
                    "id": next(counter),
                    "components": [
                        {"type": 4, "id": next(counter), "custom_id": k, "value": str(v)}
                    ],
                }
                for k, v in values.items()
            ]
            channel_id = self.channel_id
            message = None
        data = {"custom_id": custom_id, "components": components}
        return await self._inject(
            itype=5,
            data=data,
            user_id=user_id,
            channel_id=channel_id,
            locale=locale,
            message=message,
        )

    async def message_context_menu(
        self, name: str, target_message_id: int, *, user_id: int, locale: str = "en-US"
    ) -> InjectedInteraction:
        """Inject a message context-menu command (type 2, data.type 3) on a stored message.

        The target goes in ``data.resolved.messages`` in full (attachments included):
        interactions are not subject to the message-content intent.
        """
        msg = self._messages.get(target_message_id)
        if msg is None:
            raise KeyError(f"no message {target_message_id} in the fake")
        channel_id = int(msg["channel_id"])
        guild = self._channels[channel_id].get("guild_id")
        cmd, cmd_guild = self._find_command(name, 3, int(guild) if guild else None)
        data: JSON = {
            "id": str(cmd["id"] if cmd else self._command_id(None, 3, name)),
            "name": name,
            "type": 3,
            "target_id": msg["id"],
            "resolved": {"messages": {msg["id"]: copy.deepcopy(msg)}},
        }
        if cmd_guild:
            data["guild_id"] = str(cmd_guild)
        return await self._inject(
            itype=2, data=data, user_id=user_id, channel_id=channel_id, locale=locale
        )

    async def user_message(
        self,
        channel_id: int,
        user_id: int,
        content: str,
        attachments: Sequence[tuple[str, bytes, str]] = (),
    ) -> JSON:
        """A user posts a message: stored (a context-menu target) and sent as MESSAGE_CREATE.

        ``attachments`` are ``(filename, bytes, content_type)``, served by the fake CDN.
        Mentions written as ``<@id>`` fill ``mentions``.
        """
        if channel_id not in self._channels:
            raise KeyError(f"unknown channel {channel_id}; use dm_channel_id(user_id) for DMs")
        atts = [self._store_blob(channel_id, f, b, ct) for f, b, ct in attachments]
        msg = self._new_message(
            channel_id=channel_id,
            author=self._user(user_id),
            content=content,
            attachments=atts,
        )
        msg["mentions"] = [
            self._user(int(uid)) for uid in dict.fromkeys(re.findall(r"<@!?(\d+)>", content))
        ]
        event = copy.deepcopy(msg)
        if "guild_id" in msg:
            event["member"] = self._member(user_id, with_user=False)
        await self.dispatch("MESSAGE_CREATE", event)
        return copy.deepcopy(msg)

    # ------------------------------------------------------------------ HTTP plumbing

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], _Handler, bool]]:
        app = r"/applications/(?P<app>\d+)"
        guild_cmds = app + r"/guilds/(?P<guild>\d+)/commands"
        callback = r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback"
        hook = r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)"
        hook_msg = hook + r"/messages/(?P<mid>@original|\d+)"
        chan = r"/channels/(?P<cid>\d+)"
        chan_msg = chan + r"/messages/(?P<mid>\d+)"
        # (method, path pattern, handler, needs "Authorization: Bot"). Interaction
        # callbacks and webhooks authenticate by the token in the URL, not the header.
        routes: list[tuple[str, str, _Handler, bool]] = [
            ("GET", "/users/@me", self._get_me, True),
            ("GET", r"/users/(?P<user>\d+)", self._get_user, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", "/oauth2/applications/@me", self._get_app, True),
            ("GET", app + "/commands", self._get_commands, True),
            ("PUT", app + "/commands", self._put_commands, True),
            ("GET", guild_cmds, self._get_commands, True),
            ("PUT", guild_cmds, self._put_commands, True),
            ("POST", callback, self._callback, False),
            ("GET", hook_msg, self._wh_get, False),
            ("PATCH", hook_msg, self._wh_edit, False),
            ("DELETE", hook_msg, self._wh_delete, False),
            ("POST", hook, self._wh_followup, False),
            ("GET", chan, self._get_channel, True),
            ("POST", chan + "/typing", self._typing, True),
            ("POST", chan + "/messages", self._post_message, True),
            ("GET", chan_msg, self._get_message, True),
            ("PATCH", chan_msg, self._edit_message, True),
            ("DELETE", chan_msg, self._delete_message, True),
            ("POST", "/attachments/refresh-urls", self._refresh_urls, True),
        ]
        return [(m, re.compile(p), h, auth) for m, p, h, auth in routes]

    async def _parse(self, request: web.Request, path: str) -> tuple[_Request, int]:
        uploads: list[Upload] = []
        body: Any = None
        size = 0
        if request.content_type == "multipart/form-data":
            # discord.py sends payload_json plus files[n] parts (FormData, quote_fields=False).
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):  # no nested multiparts in Discord uploads
                    continue
                raw = await part.read(decode=False)
                size += len(raw)
                if part.name == "payload_json":
                    body = json.loads(raw)
                elif part.filename is not None:
                    # discord.py labels every file application/octet-stream; Discord sniffs
                    # the real type, so guess it from the filename like Discord's answer shows.
                    ctype = part.headers.get("Content-Type", "application/octet-stream")
                    if ctype == "application/octet-stream":
                        ctype = mimetypes.guess_type(part.filename)[0] or ctype
                    uploads.append(Upload(part.name or "", part.filename, ctype, bytes(raw)))
        elif request.can_read_body:
            raw = await request.read()
            size = len(raw)
            if raw:
                body = json.loads(raw)
        return (
            _Request(
                method=request.method,
                path=path,
                query=dict(request.query),
                headers=dict(request.headers),
                json=body,
                uploads=uploads,
            ),
            size,
        )

    async def _record(self, call: RestCall) -> None:
        async with self._condition:
            self.calls.append(call)
            self._condition.notify_all()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method in ("*", method) and fault.path.search(path):
                if fault.skip:
                    fault.skip -= 1
                    return None
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_reply(self, fault: _Fault) -> _Reply:
        if fault.status != 429:
            return _Reply(fault.status, fault.body)
        body = fault.body if isinstance(fault.body, dict) else {}
        ra = float(body.get("retry_after", fault.retry_after or 0.1))
        is_global = bool(body.get("global"))
        reply = _rate_limited(ra, limit=5, bucket="fakebucket", is_global=is_global)
        return _Reply(429, fault.body, reply.headers)

    @staticmethod
    def _respond(reply: _Reply) -> web.Response:
        if reply.body is None:
            return web.Response(status=reply.status, headers=reply.headers)
        # Exactly `application/json`, no charset: discord.py's json_or_text compares the
        # header verbatim and would otherwise hand the caller a str.
        headers = {"Content-Type": "application/json", **reply.headers}
        return web.Response(
            status=reply.status,
            body=json.dumps(reply.body, separators=(",", ":")).encode(),
            headers=headers,
        )

    async def _handle_api(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        path = request.path[len(API_PREFIX) :] or "/"
        req, size = await self._parse(request, path)
        reply = await self._route(req, size)
        call = RestCall(
            method=req.method,
            path=path,
            json=req.json,
            files={u.filename: u.data for u in req.uploads},
            headers=req.headers,
            query=req.query,
            uploads=req.uploads,
            status=reply.status,
            response=copy.deepcopy(reply.body),
            injected=reply.injected,
            at=at,
        )
        await self._record(call)
        if self.before_answer is not None:
            await self.before_answer(call)
        return self._respond(reply)

    async def _route(self, req: _Request, size: int) -> _Reply:
        fault = self._take_fault(req.method, req.path)
        if fault is not None:
            return replace(self._fault_reply(fault), injected=True)
        allowed = False
        for method, pattern, handler, needs_auth in self._routes:
            m = pattern.fullmatch(req.path)
            if m is None:
                continue
            allowed = True
            if method != req.method:
                continue
            if needs_auth and not self._authorized(req.headers.get("Authorization")):
                return _err(401, _ERROR_BODIES[401])
            # Discord: per-file limit (attachment_size_limit) and a cap on the whole body.
            if size > self.request_limit or any(
                len(u.data) > self.upload_limit for u in req.uploads
            ):
                return _err(413, TOO_LARGE)
            if self.rate_limits is None:
                return await handler(req, m)
            admitted = self.rate_limits.admit(req.method, req.path, needs_auth)
            if isinstance(admitted, _Reply):
                return admitted
            reply = await handler(req, m)
            reply.headers.update(admitted)
            return reply
        if allowed:
            return _err(405, {"message": "405: Method Not Allowed", "code": 0})
        return _err(404, _ERROR_BODIES[404])

    def _authorized(self, header: str | None) -> bool:
        if header is None or not header.startswith("Bot "):
            return False
        return self._token_ok(header.removeprefix("Bot "))

    async def _handle_cdn(self, request: web.Request) -> web.Response:
        path = request.path
        fault = self._take_fault("GET", path)
        status, body, ctype = 404, b"Not Found", "text/plain"
        if fault is not None:
            status, body = fault.status, json.dumps(fault.body).encode()
        else:
            blob = self._blobs.get(int(request.match_info["attachment"]))
            if (
                blob is not None
                and not blob.expired
                and str(blob.channel_id) == request.match_info["channel"]
                and quote(blob.filename) == quote(request.match_info["filename"])
            ):
                status, body, ctype = 200, blob.data, blob.content_type
            elif blob is not None and blob.expired:
                body = b"This content is no longer available."
        await self._record(
            RestCall(
                method="GET",
                path=path,
                json=None,
                files={},
                headers=dict(request.headers),
                query=dict(request.query),
                status=status,
            )
        )
        return web.Response(status=status, body=body, headers={"Content-Type": ctype})

    # ------------------------------------------------------------------ REST: basics

    async def _get_me(self, req: _Request, m: re.Match[str]) -> _Reply:
        return _ok(self._bot_user)

    async def _get_user(self, req: _Request, m: re.Match[str]) -> _Reply:
        uid = int(m["user"])
        if uid not in self._users:
            return _err(404, UNKNOWN_USER)
        return _ok(self._user(uid))

    async def _create_dm(self, req: _Request, m: re.Match[str]) -> _Reply:
        recipient = (req.json or {}).get("recipient_id")
        if recipient is None:
            return _form_error("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
        return _ok(self._channels[self.dm_channel_id(int(recipient))])

    async def _get_gateway(self, req: _Request, m: re.Match[str]) -> _Reply:
        return _ok({"url": self.gateway_url})

    async def _get_gateway_bot(self, req: _Request, m: re.Match[str]) -> _Reply:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        return _ok({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _get_app(self, req: _Request, m: re.Match[str]) -> _Reply:
        return _ok(self._app_info())

    # ------------------------------------------------------------------ REST: commands

    def _scope(self, m: re.Match[str]) -> int | None:
        guild = m.groupdict().get("guild")
        return int(guild) if guild else None

    async def _get_commands(self, req: _Request, m: re.Match[str]) -> _Reply:
        if int(m["app"]) != self.application_id:
            return _err(403, {"message": "Missing Access", "code": 50001})
        commands = self._commands.get(self._scope(m), [])
        if req.query.get("with_localizations") != "true":
            # Without it Discord sends no translations (only the reader's own, "*_localized").
            commands = [_unlocalized(command) for command in commands]
        return _ok(commands)

    async def _put_commands(self, req: _Request, m: re.Match[str]) -> _Reply:
        if int(m["app"]) != self.application_id:
            return _err(403, {"message": "Missing Access", "code": 50001})
        scope = self._scope(m)
        payload = req.json
        if not isinstance(payload, list):
            return _form_error("_root", "LIST_TYPE_CONVERT", "Must be a list.")
        problem = self._validate_commands(payload)
        if problem is not None:
            return problem
        stored: list[JSON] = []
        for cmd in payload:
            ctype = int(cmd.get("type", 1))
            echoed: JSON = {
                "id": str(self._command_id(scope, ctype, cmd["name"])),
                "application_id": str(self.application_id),
                "version": str(self._ids.next()),
                "type": ctype,
                "name": cmd["name"],
                "description": cmd.get("description", ""),
                "options": cmd.get("options", []),
                "default_member_permissions": cmd.get("default_member_permissions"),
                "nsfw": cmd.get("nsfw", False),
                "contexts": cmd.get("contexts"),
                "integration_types": cmd.get("integration_types", [0]),
                "name_localizations": cmd.get("name_localizations"),
                "description_localizations": cmd.get("description_localizations"),
            }
            if scope is not None:
                echoed["guild_id"] = str(scope)
            stored.append(echoed)
        self._commands[scope] = stored
        self.sync_count += 1
        return _ok(stored)

    def _validate_commands(self, commands: list[Any]) -> _Reply | None:
        # Discord's rules: names 1-32 (lowercase for slash commands), descriptions 1-100 for
        # slash commands and empty for context menus, <= 25 options, required before
        # optional, unique names per type, <= 100 slash commands.
        seen: set[tuple[int, str]] = set()
        for index, cmd in enumerate(commands):
            ctype = int(cmd.get("type", 1))
            name = cmd.get("name", "")
            where = f"{index}"
            if ctype == 1:
                if not _COMMAND_NAME.fullmatch(name) or name != name.lower():
                    return _form_error(where, "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")
                if not 1 <= len(cmd.get("description", "")) <= 100:
                    return _form_error(where, "BASE_TYPE_BAD_LENGTH", "description 1-100")
            else:
                if not 1 <= len(name) <= 32:
                    return _form_error(where, "BASE_TYPE_BAD_LENGTH", "name 1-32")
                if cmd.get("description"):
                    return _form_error(
                        where, "APPLICATION_COMMAND_INVALID_DESCRIPTION", "must be empty"
                    )
            if (ctype, name) in seen:
                return _form_error(where, "APPLICATION_COMMANDS_DUPLICATE_NAME", "duplicate name")
            seen.add((ctype, name))
            options = cmd.get("options", [])
            if len(options) > 25:
                return _form_error(where, "BASE_TYPE_MAX_LENGTH", "at most 25 options")
            optional_seen = False
            for opt in options:
                if opt.get("type") in (OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP):
                    continue
                if opt.get("required"):
                    if optional_seen:
                        return _form_error(
                            where, "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", "required first"
                        )
                else:
                    optional_seen = True
        if sum(1 for t, _ in seen if t == 1) > 100:
            return _form_error("_root", "BASE_TYPE_MAX_LENGTH", "at most 100 commands")
        return None

    # ------------------------------------------------------------------ REST: messages

    def _validate_message(
        self, payload: JSON, uploads: list[Upload], *, creating: bool
    ) -> _Reply | None:
        content = payload.get("content")
        if content is not None and len(content) > 2000:
            return _form_error(
                "content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."
            )
        if len(payload.get("embeds") or []) > 10:
            return _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        if len(uploads) > 10:
            return _form_error("files", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        components = payload.get("components") or []
        flags = int(payload.get("flags") or 0)
        if not flags & FLAG_COMPONENTS_V2:
            # Classic layout: <= 5 action rows of <= 5 buttons.
            if len(components) > 5:
                return _form_error(
                    "components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
                )
            for row in components:
                if row.get("type") != 1 or len(row.get("components", [])) > 5:
                    return _form_error(
                        "components", "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "row too wide"
                    )
        for comp in _walk_components(components):
            cid = comp.get("custom_id")
            if cid is not None and not 1 <= len(cid) <= 100:
                return _form_error("components", "BASE_TYPE_BAD_LENGTH", "custom_id 1-100")
            if comp.get("type") == 2 and len(comp.get("label") or "") > 80:
                return _form_error("components", "BASE_TYPE_MAX_LENGTH", "label 80 max")
        if creating and not (
            content
            or payload.get("embeds")
            or uploads
            or components
            or payload.get("sticker_ids")
            or payload.get("poll")
        ):
            return _err(400, EMPTY_MESSAGE)
        return None

    def _attachments(
        self, payload: JSON, uploads: list[Upload], channel_id: int, existing: list[JSON]
    ) -> list[JSON]:
        """Discord's attachment rules for create and edit.

        ``attachments`` entries whose id is an upload index (``files[n]``) are new files (with
        the filename given there); any other id keeps that existing attachment; existing
        ones not listed are dropped. Without an ``attachments`` key, uploads are appended.
        """
        by_field = {u.field: u for u in uploads}
        known = {a["id"]: a for a in existing}
        if "attachments" not in payload:
            return existing + [
                self._store_blob(channel_id, u.filename, u.data, u.content_type) for u in uploads
            ]
        result: list[JSON] = []
        for entry in payload["attachments"] or []:
            ref = str(entry.get("id"))
            upload = by_field.get(f"files[{ref}]")
            if upload is not None:
                att = self._store_blob(
                    channel_id,
                    entry.get("filename") or upload.filename,
                    upload.data,
                    upload.content_type,
                )
                if entry.get("description"):
                    att["description"] = entry["description"]
                result.append(att)
            elif ref in known:
                result.append(known[ref])
        return result

    def _edit(self, msg: JSON, req: _Request) -> _Reply:
        """Edit a stored message (channel or webhook) as Discord does, after the same checks."""
        payload: JSON = req.json or {}
        problem = self._validate_message(payload, req.uploads, creating=False)
        if problem is not None:
            return problem
        self._apply_edit(msg, payload, req.uploads)
        return _ok(msg)

    def _apply_edit(self, msg: JSON, payload: JSON, uploads: list[Upload]) -> None:
        channel_id = int(msg["channel_id"])
        if "content" in payload:
            msg["content"] = payload["content"] or ""
        if "embeds" in payload:
            msg["embeds"] = [{"type": "rich", **e} for e in payload["embeds"] or []]
        if "components" in payload:
            msg["components"] = payload["components"] or []
        if "attachments" in payload or uploads:
            msg["attachments"] = self._attachments(payload, uploads, channel_id, msg["attachments"])
        flags = int(msg.get("flags", 0))
        if "flags" in payload and payload["flags"] is not None:
            # Only SUPPRESS_EMBEDS (4) and IS_COMPONENTS_V2 can be set by an edit.
            flags = (flags & ~(4 | FLAG_COMPONENTS_V2)) | (
                int(payload["flags"]) & (4 | FLAG_COMPONENTS_V2)
            )
        if flags & FLAG_LOADING:
            flags &= ~FLAG_LOADING  # the deferred "thinking..." message becomes the answer
        else:
            msg["edited_timestamp"] = _now_iso()
        msg["flags"] = flags

    def _channel(self, m: re.Match[str]) -> JSON | None:
        return self._channels.get(int(m["cid"]))

    async def _get_channel(self, req: _Request, m: re.Match[str]) -> _Reply:
        channel = self._channel(m)
        return _ok(channel) if channel is not None else _err(404, UNKNOWN_CHANNEL)

    async def _refresh_urls(self, req: _Request, m: re.Match[str]) -> _Reply:
        """``POST /attachments/refresh-urls``: a freshly signed URL for each attachment URL the
        CDN knows (an expired signature is what it is for); unknown ones are left out."""
        refreshed = []
        for url in (req.json or {}).get("attachment_urls", []):
            parts = urlsplit(str(url)).path.split("/")
            blob = (
                self._blobs.get(int(parts[-2])) if len(parts) >= 3 and parts[-2].isdigit() else None
            )
            if blob is None:
                continue
            blob.expired = False
            issued = int(time.time())
            fresh = (
                f"{self.root}/attachments/{blob.channel_id}/{parts[-2]}/{quote(blob.filename)}"
                f"?ex={issued + 86400:x}&is={issued:x}&hm={secrets.token_hex(32)}"
            )
            refreshed.append({"original": url, "refreshed": fresh})
        return _ok({"refreshed_urls": refreshed})

    async def _typing(self, req: _Request, m: re.Match[str]) -> _Reply:
        return _Reply(204) if self._channel(m) is not None else _err(404, UNKNOWN_CHANNEL)

    async def _post_message(self, req: _Request, m: re.Match[str]) -> _Reply:
        channel = self._channel(m)
        if channel is None:
            return _err(404, UNKNOWN_CHANNEL)
        refused = self._post_refused(channel, bool(req.uploads))
        if refused is not None:
            return refused
        payload: JSON = req.json or {}
        problem = self._validate_message(payload, req.uploads, creating=True)
        if problem is not None:
            return problem
        cid = int(m["cid"])
        msg = self._new_message(
            channel_id=cid,
            author=self._bot_user,
            content=payload.get("content") or "",
            embeds=payload.get("embeds"),
            components=payload.get("components"),
            attachments=self._attachments(payload, req.uploads, cid, []),
            flags=int(payload.get("flags") or 0) & (4 | 4096 | FLAG_COMPONENTS_V2),
        )
        ref = payload.get("message_reference")
        if isinstance(ref, dict) and ref.get("message_id"):
            target = self._messages.get(int(ref["message_id"]))
            if target is None and ref.get("fail_if_not_exists", True):
                return _form_error(
                    "message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message"
                )
            msg["type"] = 19  # REPLY
            msg["message_reference"] = {
                "type": 0,
                "message_id": str(ref["message_id"]),
                "channel_id": str(cid),
            }
            if "guild_id" in msg:
                msg["message_reference"]["guild_id"] = msg["guild_id"]
            msg["referenced_message"] = copy.deepcopy(target)
        return _ok(msg)

    def _message_in(self, m: re.Match[str]) -> JSON | None:
        msg = self._messages.get(int(m["mid"]))
        return msg if msg is not None and msg["channel_id"] == m["cid"] else None

    async def _get_message(self, req: _Request, m: re.Match[str]) -> _Reply:
        msg = self._message_in(m)
        return _ok(msg) if msg is not None else _err(404, UNKNOWN_MESSAGE)

    async def _edit_message(self, req: _Request, m: re.Match[str]) -> _Reply:
        msg = self._message_in(m)
        if msg is None:
            return _err(404, UNKNOWN_MESSAGE)
        if int(msg["author"]["id"]) != self.bot_user_id:
            return _err(403, NOT_AUTHOR)
        return self._edit(msg, req)

    async def _delete_message(self, req: _Request, m: re.Match[str]) -> _Reply:
        msg = self._message_in(m)
        if msg is None:
            return _err(404, UNKNOWN_MESSAGE)
        del self._messages[int(msg["id"])]
        return _Reply(204)

    # ------------------------------------------------------------------ REST: interactions

    def _response_message_type(self, state: _Interaction) -> int:
        if state.type == 2:
            return (
                23 if state.payload["data"].get("type", 1) != 1 else 20
            )  # CONTEXT_MENU / CHAT_INPUT
        return 19 if state.type == 3 else 0  # replies to components show as REPLY

    async def _callback(self, req: _Request, m: re.Match[str]) -> _Reply:
        state = self._interactions.get(int(m["iid"]))
        if state is None:
            return _err(404, UNKNOWN_INTERACTION)
        window = self.ack_window
        if not state.unknown and window is not None and time.monotonic() - state.created > window:
            state.unknown = True
            self.late_callbacks.append(state.id)
        if state.unknown:
            return _err(404, UNKNOWN_INTERACTION)
        if state.token != m["token"]:
            return _err(401, INVALID_WEBHOOK_TOKEN)
        if state.callback_type is not None:
            return _err(400, ALREADY_ACKNOWLEDGED)
        body: JSON = req.json or {}
        ctype = body.get("type")
        data: JSON = body.get("data") or {}
        # Which callback types each interaction type may use (Discord's rules):
        # UPDATE_MESSAGE/DEFERRED_UPDATE only for components (and modals opened from one),
        # MODAL not in answer to a modal submit, autocomplete only for autocomplete.
        allowed = {
            2: {4, 5, 9},
            3: {4, 5, 6, 7, 9},
            4: {8},
            5: {4, 5} | ({6, 7} if state.message_id else set()),
        }.get(state.type, set())
        if ctype not in allowed:
            return _form_error(
                "type", "INTERACTION_RESPONSE_TYPE_INVALID", f"type {ctype} not allowed"
            )
        resource: JSON | None = None
        message: JSON | None = None
        if ctype in (4, 5):
            if ctype == 4:
                problem = self._validate_message(data, req.uploads, creating=True)
                if problem is not None:
                    return problem
            flags = int(data.get("flags") or 0) & (FLAG_EPHEMERAL | 4 | 4096 | FLAG_COMPONENTS_V2)
            if ctype == 5:
                flags = (flags & FLAG_EPHEMERAL) | FLAG_LOADING
            message = self._new_message(
                channel_id=state.channel_id,
                author=self._bot_user,
                content=(data.get("content") or "") if ctype == 4 else "",
                embeds=data.get("embeds") if ctype == 4 else None,
                components=data.get("components") if ctype == 4 else None,
                attachments=(
                    self._attachments(data, req.uploads, state.channel_id, []) if ctype == 4 else []
                ),
                flags=flags,
                message_type=self._response_message_type(state),
                webhook_id=self.application_id,
                interaction=state,
            )
            state.original_message_id = int(message["id"])
        elif ctype in (6, 7):
            state.original_message_id = state.message_id
            target = self._messages.get(state.message_id or 0)
            if ctype == 7 and target is not None:
                problem = self._validate_message(data, req.uploads, creating=False)
                if problem is not None:
                    return problem
                self._apply_edit(target, data, req.uploads)
                message = target
        elif ctype == 9:
            self._modals[str(data.get("custom_id"))] = (copy.deepcopy(data), state)
        state.callback_type = ctype
        if not _truthy(req.query.get("with_response")):
            return _Reply(204)
        # discord.py 2.7 always sends ?with_response=1 and parses this shape
        # (InteractionCallbackResponse: `interaction` always, `resource` when one exists).
        info: JSON = {
            "id": str(state.id),
            "type": state.type,
            "response_message_loading": ctype == 5,
            "response_message_ephemeral": bool(
                message is not None and int(message.get("flags", 0)) & FLAG_EPHEMERAL
            ),
        }
        if message is not None:
            info["response_message_id"] = message["id"]
            resource = {"type": ctype, "message": message}
        answer: JSON = {"interaction": info}
        if resource is not None:
            answer["resource"] = resource
        return _ok(answer)

    def _webhook_state(self, m: re.Match[str]) -> tuple[_Interaction | None, _Reply | None]:
        if int(m["app"]) != self.application_id:
            return None, _err(404, UNKNOWN_WEBHOOK)
        state = self._by_token.get(m["token"])
        # Interaction tokens are valid for 15 minutes; after that (or if never issued)
        # Discord answers 401 "Invalid Webhook Token" (50027).
        if state is None or state.token_expired:
            return None, _err(401, INVALID_WEBHOOK_TOKEN)
        return state, None

    def _webhook_message(self, state: _Interaction, mid: str) -> JSON | None:
        if mid == "@original":
            target = state.original_message_id
        else:
            target = int(mid)
            if target not in state.followup_ids and target != state.original_message_id:
                return None
        return self._messages.get(target) if target is not None else None

    async def _wh_get(self, req: _Request, m: re.Match[str]) -> _Reply:
        state, problem = self._webhook_state(m)
        if state is None:
            return problem or _err(404, UNKNOWN_WEBHOOK)
        msg = self._webhook_message(state, m["mid"])
        return _ok(msg) if msg is not None else _err(404, UNKNOWN_MESSAGE)

    async def _wh_edit(self, req: _Request, m: re.Match[str]) -> _Reply:
        state, problem = self._webhook_state(m)
        if state is None:
            return problem or _err(404, UNKNOWN_WEBHOOK)
        msg = self._webhook_message(state, m["mid"])
        if msg is None:
            return _err(404, UNKNOWN_MESSAGE)
        return self._edit(msg, req)

    async def _wh_delete(self, req: _Request, m: re.Match[str]) -> _Reply:
        state, problem = self._webhook_state(m)
        if state is None:
            return problem or _err(404, UNKNOWN_WEBHOOK)
        msg = self._webhook_message(state, m["mid"])
        if msg is None:
            return _err(404, UNKNOWN_MESSAGE)
        del self._messages[int(msg["id"])]
        return _Reply(204)

    async def _wh_followup(self, req: _Request, m: re.Match[str]) -> _Reply:
        state, problem = self._webhook_state(m)
        if state is None:
            return problem or _err(404, UNKNOWN_WEBHOOK)
        if state.callback_type is None:
            # No followups before the interaction was acknowledged.
            return _err(404, UNKNOWN_WEBHOOK)
        payload: JSON = req.json or {}
        problem = self._validate_message(payload, req.uploads, creating=True)
        if problem is not None:
            return problem
        msg = self._new_message(
            channel_id=state.channel_id,
            author=self._bot_user,
            content=payload.get("content") or "",
            embeds=payload.get("embeds"),
            components=payload.get("components"),
            attachments=self._attachments(payload, req.uploads, state.channel_id, []),
            flags=int(payload.get("flags") or 0) & (FLAG_EPHEMERAL | 4 | 4096 | FLAG_COMPONENTS_V2),
            message_type=0,
            webhook_id=self.application_id,
            interaction=state,
        )
        state.followup_ids.append(int(msg["id"]))
        # Without ?wait=true Discord answers 204 and no message body.
        return _ok(msg) if _truthy(req.query.get("wait")) else _Reply(204)


def _unlocalized(value: Any) -> Any:
    """A command as Discord lists it without ``with_localizations``: no translations in it."""
    if isinstance(value, dict):
        return {
            key: _unlocalized(item)
            for key, item in value.items()
            if key not in ("name_localizations", "description_localizations")
        }
    if isinstance(value, list):
        return [_unlocalized(item) for item in value]
    return value
