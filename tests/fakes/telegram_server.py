"""A fake Telegram Bot API: a real local aiohttp server that python-telegram-bot can poll.

Error texts follow the official server (github.com/tdlib/telegram-bot-api, ``Client.cpp``) or,
where that only relays TDLib or Telegram, what api.telegram.org is seen answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import io
import itertools
import json
import math
import mimetypes
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
import httpx
from aiohttp import web
from PIL import Image
from telegram.request import HTTPXRequest

Json = dict[str, Any]

ANONYMOUS_ADMIN, CHANNEL_BOT = 1087968824, 136817688  # Telegram's placeholder senders
MAX_TEXT = 4096  # sendMessage: "1-4096 characters after entities parsing"
MAX_CAPTION = 1024  # "0-1024 characters after entities parsing"
MAX_ALERT = 200  # answerCallbackQuery.text: "0-200 characters"
MAX_CALLBACK_DATA = 64  # InlineKeyboardButton.callback_data: "1-64 bytes"
MAX_PHOTO_UPLOAD = 10 * 1024 * 1024  # "The photo must be at most 10 MB in size"
MAX_UPLOAD = 50 * 1024 * 1024  # "50 MB for other files" (multipart/form-data)
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile: "files of up to 20MB in size"
# A Bot API server of one's own, run with --local: "Download files without a size limit",
# "Upload files up to 2000 MB" (github.com/tdlib/telegram-bot-api).
LOCAL_MAX_UPLOAD = 2000 * 1024 * 1024
PUBLIC_HOST = "api.telegram.org"
MAX_URL_PHOTO, MAX_URL_FILE = 5 * 1024 * 1024, 20 * 1024 * 1024  # files sent by HTTP URL
THUMB_SIDES = (90, 320, 800)  # Telegram's s/m/x photo sizes; the original is kept as the largest

# getUpdates without allowed_updates delivers everything but these (Bot API, getUpdates).
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Parameters whose Bot API type is String. PTB sends str values raw and JSON-dumps everything
# else, so these must not go through json.loads (a prompt "123" must stay text).
_STRING_PARAMS = frozenset(
    (
        "text", "caption", "parse_mode", "photo", "document", "audio", "video", "animation",
        "voice", "video_note", "sticker", "thumbnail", "cover", "file_id", "callback_query_id",
        "url", "action", "language_code", "secret_token", "ip_address", "business_connection_id",
        "message_effect_id", "inline_message_id", "emoji", "custom_emoji_id", "description",
        "short_description", "name", "title",
    )
)  # fmt: skip
_CHAT_ACTIONS = frozenset(
    (
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note",
        "upload_video_note",
    )
)  # fmt: skip
_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "span": "spoiler", "tg-spoiler": "spoiler", "a": "text_link", "code": "code", "pre": "pre",
    "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}  # fmt: skip
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)([^<>]*)>")
_HTML_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9A-Fa-f]+);")
_ATTR_RE = re.compile(r"""([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?!\S)")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{4,31}\b")
_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_TOKEN_SHAPE = re.compile(r"\d+:[A-Za-z0-9_-]+")  # the bot's id, a colon, its secret
# What flood control counts: messages sent and edited. Edits are "subject to per chat limits"
# (the Bot API's maintainer, tdlib/telegram-bot-api#648); answerCallbackQuery is not limited.
# Deletions, chat actions, getFile and getUpdates are left unlimited here: nothing documents them.
_FLOODED = frozenset(
    (
        "sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "editMessageText",
        "editMessageCaption", "editMessageReplyMarkup", "editMessageMedia",
    )
)  # fmt: skip


@dataclass
class Call:
    """One request the bot made; ``error`` is the description answered if it failed, and
    ``injected`` whether that failure was a test's ``fail_next``."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float
    error: str | None = None
    injected: bool = False


@dataclass
class _Req:
    params: Json
    files: dict[str, bytes]
    names: dict[str, tuple[str, str]]  # part name -> (filename, content type)


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str


class _ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def body(self) -> Json:
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": _num(self.retry_after)}
        return body


@dataclass
class _Fault:
    code: int
    description: str
    retry_after: float | None
    remaining: int = field(default=1)


class _Bucket:
    """A token bucket: ``burst`` requests at once, then ``rate`` a second."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = burst, now

    def wait(self, now: float) -> float:
        """Seconds until one request is admitted (0: now)."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


@dataclass
class FloodControl:
    """Telegram's flood limits as its bot FAQ states them (core.telegram.org/bots/faq, "My bot
    is hitting limits"): about 30 messages a second overall, one a second in a chat with short
    bursts allowed, 20 a minute in a group. The exact figures are not published; these are the
    FAQ's, and ``chat_burst`` is our guess at "short bursts".

    A message over a limit is refused with 429 and ``parameters.retry_after`` (whole seconds, at
    least 1, as the real API sends) and is not counted. An album counts as one message.
    ``clock`` is for tests.
    """

    overall_per_second: float = 30.0
    chat_per_second: float = 1.0
    chat_burst: int = 3
    group_per_minute: float = 20.0
    clock: Callable[[], float] = time.monotonic
    _chats: dict[int, _Bucket] = field(default_factory=dict, init=False, repr=False)
    _groups: dict[int, _Bucket] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        rate = self.overall_per_second
        self._overall = _Bucket(rate, rate, self.clock())

    def admit(self, chat_id: int) -> float | None:
        """None if a message to ``chat_id`` may go now (and count it), else its retry_after."""
        now = self.clock()
        chat = _bucket_of(self._chats, chat_id, self.chat_per_second, self.chat_burst, now)
        buckets = [self._overall, chat]
        if chat_id < 0:
            per_minute = self.group_per_minute
            buckets.append(_bucket_of(self._groups, chat_id, per_minute / 60, per_minute, now))
        wait = max(bucket.wait(now) for bucket in buckets)
        if wait > 0:
            return float(max(1, math.ceil(wait - 1e-9)))  # not 3 for 2.0000001
        for bucket in buckets:
            bucket.take()
        return None


def _bucket_of(
    buckets: dict[int, _Bucket], key: int, rate: float, burst: float, now: float
) -> _Bucket:
    if key not in buckets:
        buckets[key] = _Bucket(rate, burst, now)
    return buckets[key]


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _u16(text: str) -> int:
    """Entity offsets and lengths are counted in UTF-16 code units (Bot API, MessageEntity)."""
    return len(text.encode("utf-16-le")) // 2


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in _STRING_PARAMS:
        return value
    if key in ("chat_id", "from_chat_id"):  # Integer or String (@channelusername)
        return int(value) if re.fullmatch(r"-?\d+", value) else value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _auto_entities(text: str) -> list[Json]:
    """What Telegram's servers add to a user's text: bot_command and mention entities."""
    found = [(m, "bot_command") for m in _COMMAND_RE.finditer(text)]
    found += [(m, "mention") for m in _MENTION_RE.finditer(text)]
    return [
        {"type": kind, "offset": _u16(text[: m.start()]), "length": _u16(m.group())}
        for m, kind in sorted(found, key=lambda pair: pair[0].start())
    ]


def _parse_html(source: str) -> tuple[str, list[Json]]:
    """Telegram's HTML style: only the documented tags, and every '<' must open one of them."""
    out: list[str] = []
    pos16 = i = 0
    stack: list[tuple[str, int, Json]] = []
    entities: list[Json] = []
    while i < len(source):
        if source[i] == "<":
            at = len(source[:i].encode())
            m = _TAG_RE.match(source, i)
            name = m.group(2).lower() if m else ""
            if m is None or name not in _HTML_TAGS:
                kind = "end" if m and m.group(1) else "start"
                raise _bad(
                    f'can\'t parse entities: Unsupported {kind} tag "{name}" at byte offset {at}'
                )
            if m.group(1):
                if not stack or stack[-1][0] != name:
                    expected = f"</{stack[-1][0]}>" if stack else "nothing"
                    raise _bad(
                        f"can't parse entities: Unmatched end tag at byte offset {at}, "
                        f'expected "{expected}", found "</{name}>"'
                    )
                _, start, entity = stack.pop()
                if pos16 > start:
                    entities.append({**entity, "offset": start, "length": pos16 - start})
            else:
                attrs = {a: b or c or d for a, b, c, d in _ATTR_RE.findall(m.group(3))}
                entity = {"type": _HTML_TAGS[name]}
                if name == "a":
                    entity["url"] = attrs.get("href", "")
                elif name == "tg-emoji":
                    entity["custom_emoji_id"] = attrs.get("emoji-id", "")
                elif name == "blockquote" and "expandable" in m.group(3):
                    entity["type"] = "expandable_blockquote"
                stack.append((name, pos16, entity))
            i = m.end()
            continue
        m = _HTML_ENTITY_RE.match(source, i) if source[i] == "&" else None
        chunk = html.unescape(m.group()) if m else source[i]
        out.append(chunk)
        pos16 += _u16(chunk)
        i = m.end() if m else i + 1
    if stack:
        tag = stack[-1][0]
        raise _bad(f"can't parse entities: Can't find end tag corresponding to start tag \"{tag}\"")
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def _format(text: Any, parse_mode: Any, entities: Any, *, caption: bool) -> tuple[str, list[Json]]:
    """Parse markup and enforce the length limits, which count characters after parsing."""
    raw = "" if text is None else str(text)
    plain, found = raw, list(entities or [])
    if isinstance(parse_mode, str) and parse_mode.lower() == "html":
        plain, found = _parse_html(raw)
    # Markdown/MarkdownV2 are not parsed here: text is kept raw, so limits are a bit stricter.
    if caption:
        if len(plain) > MAX_CAPTION:
            raise _bad("message caption is too long")
    elif not plain.strip():
        raise _bad("message text is empty")
    elif len(plain) > MAX_TEXT:
        raise _bad("message is too long")
    return plain, found


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header only; nothing is decoded yet."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


class _Rerouted(httpx.AsyncBaseTransport):
    """Requests for Telegram's public host go to ``root``; the bot's URLs stay as they were."""

    def __init__(self, inner: httpx.AsyncBaseTransport, root: httpx.URL) -> None:
        self._inner, self._root = inner, root

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC_HOST:
            request.url = request.url.copy_with(
                scheme=self._root.scheme, host=self._root.host, port=self._root.port
            )
            request.headers["Host"] = request.url.netloc.decode()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class FakeTelegramServer:
    """Fake Bot API at ``root`` (``/bot<token>/<method>``, files at ``/file/bot<token>/<path>``).

    ``async with FakeTelegramServer(token="123:ABC-fake-token") as tg:`` then build the bot with
    ``base_url=f"{tg.root}/bot"`` and ``base_file_url=f"{tg.root}/file/bot"``.

    Recording: ``calls`` (list of ``Call``, file downloads appear as method ``"download"``),
    ``calls_of(method)``, ``await wait_for(method, count=1, timeout=5.0, predicate=None)``,
    ``sent_messages(chat_id=None)`` (current state of the bot's undeleted messages),
    ``message(chat_id, message_id)``, ``file_bytes(file_id)``, ``media_bytes(call)`` (the bytes
    of a sendMediaGroup call in media order, or of an editMessageMedia call),
    ``answered_callbacks``, ``commands`` (keyed ``"default"``, ``"chat:<id>"``,
    ``"default/ru"``…), ``reactions``, ``webhook_url``, ``bot_user``.

    Members: ``chat_admins`` maps a group's id to its administrators' user ids (the first one
    is its creator); ``getChatMember`` answers from it, every other user being a member.

    Injection (async, each returns the Update dict it queued, or just ``{"message": …}`` when
    privacy mode kept it from the bot): ``post_message``, ``post_photo``, ``post_album`` (a
    list), ``post_document``, ``post_other`` (a sticker, voice…: its fields), ``edit_message``
    (an ``edited_message``), ``add_bot`` (a ``my_chat_member``: the bot was added to a group),
    ``post_update`` (raw); ``press_button`` returns the callback query id; ``start_bot(user_id)``
    (not async) opens the user's private chat, as pressing Start does.

    Anonymous senders: ``sender_chat`` on the ``post_*`` methods posts as a chat, as Telegram
    does for a group's anonymous admins (``sender_chat`` is the group, ``from`` the placeholder
    user 1087968824) and for channels (``from`` 136817688).

    Faults: ``fail_next(method, *, error_code=429, description=None, retry_after=1, count=1)``;
    ``download_delay`` (seconds) holds every file download before it is served; ``delays``
    (method → seconds) holds every call of that method before it is answered (a slow upload).

    Which Bot API it is: api.telegram.org's limits by default (getFile serves at most 20 MB,
    uploads at most 50 MB); ``local_server`` (also an attribute) stands for a telegram-bot-api
    server of one's own run with ``--local`` (no download limit, uploads up to 2000 MB; files
    still come over HTTP here, where the real one hands out paths on its disk). A bot built with
    the default ``https://api.telegram.org`` reaches this fake inside ``patch_public_api()``.

    As strict as Telegram about whom the bot may reach and what it hears:

    - a bot can't start a conversation: sending to a private chat whose user never wrote to the
      bot (at least /start) answers 403 "Forbidden: bot can't initiate conversation with a
      user"; a group no one posted in answers 400 "chat not found";
    - privacy mode (``privacy_mode``, on by default as for every new bot; off stands for a bot
      whose privacy mode is disabled or who is a group admin): in groups the bot receives only
      messages that start with a command (``/cmd``, or ``/cmd@its_name``; not one addressed to
      another bot), mention it by username, or reply to one of its messages (BotFather's
      description of the setting). Other messages are posted to the chat but never reach the
      bot, e.g. the uncaptioned photos of an album. (The Bot API's own page adds that a bare
      command reaches the bot only if it was the last bot to post there: with one bot in the
      chat, as here, it always is.)

    Flood control: ``flood`` (constructor keyword, also an attribute): a ``FloodControl`` makes
    the server refuse messages over Telegram's flood limits with 429 as the real API does; None
    (the default) accepts any rate.
    """

    def __init__(
        self,
        token: str = "123:ABC-fake-token",  # noqa: S107 - a fake token for a fake server
        *,
        bot_username: str = "fake_bot",
        host: str = "127.0.0.1",
        privacy_mode: bool = True,
        local_server: bool = False,
        flood: FloodControl | None = None,
    ) -> None:
        self.token = token
        self.privacy_mode = privacy_mode
        self.local_server = local_server
        self.flood = flood
        bot_id = token.split(":", 1)[0]
        self.bot_user: Json = {
            "id": int(bot_id) if bot_id.isdigit() else 1,
            "is_bot": True,
            "first_name": "Fake Bot",
            "username": bot_username,
        }
        self.root = ""
        self.calls: list[Call] = []
        self.answered_callbacks: set[str] = set()
        self.commands: dict[str, list[Json]] = {}
        self.reactions: dict[tuple[int, int], list[Json]] = {}
        self.webhook_url = ""
        self.download_delay = 0.0
        self.chat_admins: dict[int, list[int]] = {}
        self.delays: dict[str, float] = {}
        self._host = host
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._calls_changed = asyncio.Condition()
        self._updates_changed = asyncio.Condition()
        self._updates: list[Json] = []  # queued and not yet confirmed by an offset
        self._update_ids = itertools.count(10_000)
        self._allowed: set[str] | None = None  # None: every type but _NOT_BY_DEFAULT
        self._poll_generation = 0
        self._messages: dict[tuple[int, int], Json] = {}
        self._deleted: set[tuple[int, int]] = set()
        self._last_message_id: dict[int, int] = {}
        self._chats: dict[int, Json] = {}
        self._users: dict[int, Json] = {}
        self._files: dict[str, _File] = {}
        self._paths: dict[str, _File] = {}
        self._photo_sets: dict[str, list[Json]] = {}  # any size's file_id -> all sizes
        self._documents: dict[str, Json] = {}
        self._open_callbacks: set[str] = set()
        self._faults: dict[str, deque[_Fault]] = {}
        self._ids = itertools.count(1)
        names = (
            "getMe", "getUpdates", "deleteWebhook", "setWebhook", "getWebhookInfo",
            "setMyCommands", "getMyCommands", "deleteMyCommands", "sendMessage",
            "editMessageText", "editMessageCaption", "editMessageReplyMarkup", "editMessageMedia",
            "deleteMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "sendChatAction",
            "answerCallbackQuery", "getFile", "setMessageReaction", "getChatMember",
        )  # fmt: skip
        # Method names are case-insensitive in the Bot API ("All methods ... are case-insensitive").
        self._methods: dict[str, tuple[str, Callable[[_Req], Awaitable[Any]]]] = {
            name.lower(): (name, getattr(self, f"_api_{name}")) for name in names
        }

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        # Above the 50 MB upload limit so that we, not aiohttp, answer oversized uploads.
        app = web.Application(client_max_size=LOCAL_MAX_UPLOAD + 4 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # Any other path (a token with a "/" in it, say) is the API's JSON 404, not aiohttp's.
        app.router.add_route("*", "/{path:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, 0).start()
        self.root = f"http://{self._host}:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True  # long polls still waiting answer [] at once
        async with self._updates_changed:
            self._updates_changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @contextlib.contextmanager
    def patch_public_api(self) -> Iterator[None]:
        """Send python-telegram-bot's requests for https://api.telegram.org here instead: a bot
        configured with the default ``TELEGRAM_API_URL`` runs its public-API code unchanged, and
        only the network route differs (as ``FakeDiscordServer.patch_discord`` does)."""
        root = httpx.URL(self.root)
        build = HTTPXRequest._build_client

        def build_client(request: HTTPXRequest) -> httpx.AsyncClient:
            kwargs = dict(request._client_kwargs)
            inner = kwargs.pop("transport", None) or httpx.AsyncHTTPTransport()
            return httpx.AsyncClient(**kwargs, transport=_Rerouted(inner, root))

        HTTPXRequest._build_client = build_client  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            HTTPXRequest._build_client = build  # type: ignore[method-assign]

    # -- recording ---------------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        predicate: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Wait until ``count`` calls of ``method`` (matching ``predicate``) were answered and
        return all that match. Failed calls count too: ``predicate=lambda c: c.error is None``."""

        def matching() -> list[Call]:
            return [c for c in self.calls_of(method) if predicate is None or predicate(c)]

        try:
            async with asyncio.timeout(timeout), self._calls_changed:
                await self._calls_changed.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            seen = [c.method for c in self.calls if c.method != "getUpdates"]
            raise AssertionError(
                f"{len(matching())} of {count} {method} calls after {timeout}s; calls: {seen}"
            ) from None
        return matching()

    def sent_messages(self, chat_id: int | None = None) -> list[Json]:
        return [
            msg
            for key, msg in sorted(self._messages.items())
            if msg["from"]["id"] == self.bot_user["id"]
            and key not in self._deleted
            and (chat_id is None or key[0] == chat_id)
        ]

    def message(self, chat_id: int, message_id: int) -> Json | None:
        key = (chat_id, message_id)
        return None if key in self._deleted else self._messages.get(key)

    def file_bytes(self, file_id: str) -> bytes:
        return self._files[file_id].data

    def media_bytes(self, call: Call) -> list[bytes]:
        """The uploaded bytes of a sendMediaGroup (in media order) or editMessageMedia call."""
        media = call.params["media"]
        items = media if isinstance(media, list) else [media]
        return [call.files[item["media"].removeprefix("attach://")] for item in items]

    # -- faults ------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 429,
        description: str | None = None,
        retry_after: float | None = 1,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` with this error (HTTP status = code).

        ``parameters.retry_after`` is sent only with 429, as Telegram does; PTB turns it into
        ``RetryAfter`` only when it is non-zero. Telegram sends whole seconds.
        """
        if description is None:
            defaults = {
                429: f"Too Many Requests: retry after {_num(retry_after or 0)}",
                400: "Bad Request", 403: "Forbidden", 413: "Request Entity Too Large",
                500: "Internal Server Error", 502: "Bad Gateway",
            }  # fmt: skip
            description = defaults.get(error_code, f"Error {error_code}")
        after = retry_after if error_code == 429 else None
        fault = _Fault(error_code, description, after, count)
        self._faults.setdefault(method.lower(), deque()).append(fault)

    def _take_fault(self, method: str) -> _ApiError | None:
        queue = self._faults.get(method.lower())
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return _ApiError(fault.code, fault.description, fault.retry_after)

    def _flood_wait(self, method: str, params: Json) -> _ApiError | None:
        chat_id = params.get("chat_id")
        if self.flood is None or method not in _FLOODED or not isinstance(chat_id, int):
            return None
        retry_after = self.flood.admit(chat_id)
        if retry_after is None:
            return None
        return _ApiError(429, f"Too Many Requests: retry after {_num(retry_after)}", retry_after)

    # -- injection ---------------------------------------------------------------------------

    async def post_update(self, update: Json) -> Json:
        update = {"update_id": next(self._update_ids), **update}
        kind = next(k for k in update if k != "update_id")
        allowed = (
            kind in self._allowed if self._allowed is not None else kind not in _NOT_BY_DEFAULT
        )
        async with self._updates_changed:
            # Types the bot did not ask for are never queued (getUpdates, allowed_updates).
            if allowed:
                self._updates.append(update)
            self._updates_changed.notify_all()
        return update

    async def post_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        chat_type: str = "private",
        reply_to: int | None = None,
        entities: list[Json] | None = None,
        username: str | None = None,
        sender_chat: int | None = None,
    ) -> Json:
        ents = _auto_entities(text) if entities is None else entities
        content: Json = {"text": text, **({"entities": ents} if ents else {})}
        return await self._post_user_message(
            chat_id, user_id, content, chat_type, reply_to, username, sender_chat
        )

    async def post_photo(
        self,
        chat_id: int,
        user_id: int,
        image: bytes,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: int | None = None,
        chat_type: str = "private",
        username: str | None = None,
        sender_chat: int | None = None,
    ) -> Json:
        size = _image_size(image)
        if size is None:  # Telegram only ever delivers decodable photos
            raise ValueError("post_photo needs image bytes Pillow can read; see post_document")
        content: Json = {"photo": self._store_photo(image, *size)}
        content.update(self._user_caption(caption))
        if media_group_id:
            content["media_group_id"] = media_group_id
        return await self._post_user_message(
            chat_id, user_id, content, chat_type, reply_to, username, sender_chat
        )

    async def post_album(
        self,
        chat_id: int,
        user_id: int,
        images: list[bytes],
        caption: str | None = None,
        *,
        chat_type: str = "private",
        username: str | None = None,
        as_documents: bool = False,
    ) -> list[Json]:
        """One update per photo (or file, ``as_documents``) sharing a media_group_id; no count
        or end marker, as on Telegram."""
        group = str(random.getrandbits(60))
        posted = []
        for i, image in enumerate(images):
            text = caption if i == 0 else None
            if as_documents:
                posted.append(
                    await self.post_document(
                        chat_id, user_id, image, f"image{i}.png", "image/png", text,
                        media_group_id=group, chat_type=chat_type, username=username,
                    )
                )  # fmt: skip
            else:
                posted.append(
                    await self.post_photo(
                        chat_id, user_id, image, caption=text, media_group_id=group,
                        chat_type=chat_type, username=username,
                    )
                )  # fmt: skip
        return posted

    async def post_document(
        self,
        chat_id: int,
        user_id: int,
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        *,
        reply_to: int | None = None,
        chat_type: str = "private",
        username: str | None = None,
        media_group_id: str | None = None,
        sender_chat: int | None = None,
    ) -> Json:
        content: Json = {"document": self._store_document(data, file_name, mime_type)}
        content.update(self._user_caption(caption))
        if media_group_id:
            content["media_group_id"] = media_group_id
        return await self._post_user_message(
            chat_id, user_id, content, chat_type, reply_to, username, sender_chat
        )

    async def post_other(
        self,
        chat_id: int,
        user_id: int,
        content: Json,
        *,
        chat_type: str = "private",
        reply_to: int | None = None,
        username: str | None = None,
    ) -> Json:
        """A message of another kind: ``content`` holds its fields (``{"sticker": {...}}``)."""
        return await self._post_user_message(
            chat_id, user_id, dict(content), chat_type, reply_to, username
        )

    async def edit_message(self, chat_id: int, message_id: int, text: str) -> Json:
        """The user edits their message's text (or a caption, for a photo or document):
        Telegram sends the whole message again as an ``edited_message``."""
        msg = self.message(chat_id, message_id)
        if msg is None or msg["from"]["id"] == self.bot_user["id"]:
            raise KeyError(f"no user message {message_id} in chat {chat_id}")
        field, entities = ("text", "entities") if "text" in msg else ("caption", "caption_entities")
        edited = {k: v for k, v in msg.items() if k != entities}
        edited[field] = text
        if found := _auto_entities(text):
            edited[entities] = found
        edited["edit_date"] = int(time.time())
        self._messages[(chat_id, message_id)] = edited
        return await self.post_update({"edited_message": edited})

    async def add_bot(self, chat_id: int, by_user: int, *, chat_type: str = "supergroup") -> Json:
        """A member adds the bot to a group: a ``my_chat_member`` update, "left" → "member"."""
        change = {
            "chat": self._chat(chat_id, chat_type),
            "from": self._user(by_user),
            "date": int(time.time()),
            "old_chat_member": {"user": self.bot_user, "status": "left"},
            "new_chat_member": {"user": self.bot_user, "status": "member"},
        }
        return await self.post_update({"my_chat_member": change})

    def start_bot(self, user_id: int) -> None:
        """The user pressed Start in a private chat with the bot: the bot may write to them now.
        (Their /start message itself is not queued; post one with ``post_message`` for that.)"""
        user = self._user(user_id)
        self._chat(user_id, "private", user)

    async def press_button(
        self, chat_id: int, user_id: int, message_id: int, data: str, *, username: str | None = None
    ) -> str:
        """Post a callback_query for a bot message; ``data`` is not checked against the keyboard
        (a modified client can send anything)."""
        msg = self.message(chat_id, message_id)
        if msg is None or msg["from"]["id"] != self.bot_user["id"]:
            raise KeyError(f"no bot message {message_id} in chat {chat_id}")
        query_id = str(random.getrandbits(62))  # an int64 in decimal, as the server reads it
        self._open_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": self._user(user_id, username),
            "message": msg,
            "chat_instance": str(abs(chat_id) * 7919),
            "data": data,
        }
        await self.post_update({"callback_query": query})
        return query_id

    def set_language(self, user_id: int, code: str | None) -> None:
        """The language ``user_id``'s app is in (``language_code`` in what they send; None:
        their app doesn't say, as Telegram allows)."""
        user = self._user(user_id)
        if code is None:
            user.pop("language_code", None)
        else:
            user["language_code"] = code

    def _user(self, user_id: int, username: str | None = None) -> Json:
        user = self._users.setdefault(
            user_id,
            {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": "en"},
        )
        if username is not None:
            user["username"] = username
        user.setdefault("username", f"user{user_id}")  # None: a user who never set one
        return user

    def _chat(self, chat_id: int, chat_type: str | None = None, user: Json | None = None) -> Json:
        chat = self._chats.get(chat_id)
        kind = chat_type or (chat or {}).get("type")
        kind = kind or (
            "private" if chat_id > 0 else "supergroup" if chat_id < -(10**12) else "group"
        )
        if chat is None or chat["type"] != kind:
            if kind == "private":
                who = user or self._user(chat_id)
                chat = {"id": chat_id, "type": kind, "first_name": who["first_name"]}
                chat["username"] = who["username"]
            else:
                chat = {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}
            self._chats[chat_id] = chat
        return chat

    def _user_caption(self, caption: str | None) -> Json:
        if not caption:
            return {}
        ents = _auto_entities(caption)
        return {"caption": caption, **({"caption_entities": ents} if ents else {})}

    async def _post_user_message(
        self,
        chat_id: int,
        user_id: int,
        content: Json,
        chat_type: str,
        reply_to: int | None,
        username: str | None,
        sender_chat: int | None = None,
    ) -> Json:
        user = self._user(user_id, username)
        reply = None
        if reply_to is not None:
            target = self.message(chat_id, reply_to)
            if target is None:
                raise KeyError(f"no message {reply_to} in chat {chat_id} to reply to")
            reply = {k: v for k, v in target.items() if k != "reply_to_message"}
        chat = self._chat(chat_id, chat_type, user)
        if sender_chat is not None:
            # Telegram's placeholders: "Group" for anonymous admins, "Channel_Bot" for channels.
            anonymous = sender_chat == chat_id
            user = {
                "id": ANONYMOUS_ADMIN if anonymous else CHANNEL_BOT,
                "is_bot": True,
                "first_name": "Group" if anonymous else "Channel",
                "username": "GroupAnonymousBot" if anonymous else "Channel_Bot",
            }
            as_chat = chat if anonymous else self._chat(sender_chat, "channel")
            content = {**content, "sender_chat": as_chat}
        msg = self._store_message(chat, user, content, None, reply)
        if not self._reaches_bot(msg):
            return {"message": msg}  # in the chat for everyone to see, but not for the bot
        return await self.post_update({"message": msg})

    def _reaches_bot(self, msg: Json) -> bool:
        """Whether privacy mode lets a message through to the bot (see the class docstring)."""
        if not self.privacy_mode or msg["chat"]["type"] in ("private", "channel"):
            return True
        replied = msg.get("reply_to_message")
        if replied is not None and replied["from"]["id"] == self.bot_user["id"]:
            return True
        text: str = msg.get("text") or msg.get("caption") or ""
        entities: list[Json] = msg.get("entities") or msg.get("caption_entities") or []
        name = f"@{self.bot_user['username']}".lower()
        units = text.encode("utf-16-le")  # entity offsets count UTF-16 code units
        for entity in entities:
            start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
            word = units[start:end].decode("utf-16-le").lower()
            if entity["type"] == "mention" and word == name:
                return True
            if entity["type"] == "bot_command" and entity["offset"] == 0:
                addressed = word.partition("@")[2]
                return not addressed or f"@{addressed}" == name
        return False

    # -- storage -----------------------------------------------------------------------------

    def _store_message(
        self, chat: Json, sender: Json, content: Json, markup: Json | None, reply: Json | None
    ) -> Json:
        # Message ids are a per-chat sequence shared by everyone who posts in the chat.
        message_id = self._last_message_id.get(chat["id"], 0) + 1
        self._last_message_id[chat["id"]] = message_id
        msg: Json = {"message_id": message_id, "from": sender, "chat": chat}
        msg.update(date=int(time.time()), **content)
        if reply is not None:
            msg["reply_to_message"] = reply
        if markup is not None:
            msg["reply_markup"] = markup
        self._messages[(chat["id"], message_id)] = msg
        return msg

    def _new_file(self, data: bytes, folder: str, ext: str) -> _File:
        n = next(self._ids)
        stored = _File(
            file_id=f"AgAC{folder[:3]}{n:06d}{random.getrandbits(40):010x}",
            file_unique_id=f"AQAD{n:06d}",
            data=data,
            file_path=f"{folder}/file_{n}{ext}",
        )
        self._files[stored.file_id] = self._paths[stored.file_path] = stored
        return stored

    def _store_photo(self, data: bytes, width: int, height: int) -> list[Json]:
        """PhotoSize list, smallest first; the largest is the original bytes, unrecompressed
        (real Telegram recompresses), so a test can compare what the bot downloads."""
        files: list[tuple[_File, int, int]] = []
        if max(width, height) > THUMB_SIDES[0]:
            with Image.open(io.BytesIO(data)) as im:
                im.draft("RGB", (THUMB_SIDES[-1], THUMB_SIDES[-1]))  # fast JPEG decode
                base = im.convert("RGB")
            for side in THUMB_SIDES:
                if max(width, height) <= side:
                    break
                thumb = base.copy()
                thumb.thumbnail((side, side))
                buf = io.BytesIO()
                thumb.save(buf, "JPEG", quality=80)
                files.append((self._new_file(buf.getvalue(), "photos", ".jpg"), *thumb.size))
        files.append((self._new_file(data, "photos", ".jpg"), width, height))
        sizes: list[Json] = [
            {"file_id": f.file_id, "file_unique_id": f.file_unique_id, "file_size": len(f.data),
             "width": w, "height": h}
            for f, w, h in files
        ]  # fmt: skip
        for size in sizes:
            self._photo_sets[size["file_id"]] = sizes
        return sizes

    def _store_document(self, data: bytes, file_name: str, mime_type: str | None) -> Json:
        ext = "." + file_name.rsplit(".", 1)[1] if "." in file_name else ""
        stored = self._new_file(data, "documents", ext)
        doc = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type
            or mimetypes.guess_type(file_name)[0]
            or "application/octet-stream",
            "file_size": len(data),
        }
        self._documents[stored.file_id] = doc
        return doc

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        entry = self._methods.get(request.match_info["method"].lower())
        call = Call(entry[0] if entry else request.match_info["method"], {}, {}, at)
        try:
            token = request.match_info["token"]
            if not _TOKEN_SHAPE.fullmatch(token):
                raise _ApiError(404, "Not Found")  # what api.telegram.org answers a malformed one
            if token != self.token:
                raise _ApiError(401, "Unauthorized")
            if entry is None:
                raise _ApiError(404, "Not Found")
            req = await self._read(request)
            call.params, call.files = req.params, req.files
            await asyncio.sleep(self.delays.get(call.method, 0.0))
            fault = self._take_fault(call.method) or self._flood_wait(call.method, req.params)
            if fault is not None:
                call.injected = True
                raise fault
            body: Json = {"ok": True, "result": await entry[1](req)}
            status = 200
        except _ApiError as exc:
            call.error, body, status = exc.description, exc.body(), exc.code
        except Exception as exc:  # a bug here or an input we don't model: say so, and record it
            call.error = f"Internal Server Error: fake server failed with {exc!r}"
            body, status = _ApiError(500, call.error).body(), 500
        async with self._calls_changed:
            self.calls.append(call)
            self._calls_changed.notify_all()
        return web.json_response(body, status=status)

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response(_ApiError(404, "Not Found").body(), status=404)

    async def _read(self, request: web.Request) -> _Req:
        """Query string, JSON, urlencoded or multipart, as the Bot API accepts. PTB sends every
        parameter as a form field: strings raw, everything else JSON-dumped."""
        raw: Json = dict(request.query)
        files: dict[str, bytes] = {}
        names: dict[str, tuple[str, str]] = {}
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise _bad("JSON body must be an object")
            return _Req({**{k: _decode(k, v) for k, v in raw.items()}, **body}, files, names)
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            try:
                form = await request.post()
            except web.HTTPRequestEntityTooLarge:
                raise _ApiError(413, "Request Entity Too Large") from None
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                    value.file.close()
                    names[key] = (value.filename, value.content_type)
                else:
                    raw[key] = value.decode() if isinstance(value, bytes) else value
        # api.telegram.org refuses a multipart body over 50 MB before reading any parameter.
        if sum(map(len, files.values())) > (LOCAL_MAX_UPLOAD if self.local_server else MAX_UPLOAD):
            raise _ApiError(413, "Request Entity Too Large")
        return _Req({k: _decode(k, v) for k, v in raw.items()}, files, names)

    async def _handle_file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        call = Call("download", {"file_path": path}, {}, time.monotonic())
        stored = self._paths.get(path) if request.match_info["token"] == self.token else None
        await asyncio.sleep(self.download_delay)
        if stored is None:
            call.error = "Not Found"
        async with self._calls_changed:
            self.calls.append(call)
            self._calls_changed.notify_all()
        if stored is None:
            return web.json_response(_ApiError(404, "Not Found").body(), status=404)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # -- request helpers ---------------------------------------------------------------------

    def _target_chat(self, p: Json) -> Json:
        raw = p.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        if not isinstance(raw, int):  # @channelusername: no channels here
            raise _bad("chat not found")
        chat = self._chats.get(raw)
        if chat is None and raw > 0:
            # A private chat exists once its user has written to the bot (/start at least).
            raise _ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _markup(self, p: Json) -> Json | None:
        markup = p.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:  # reply keyboards are not echoed: Message.reply_markup is inline only
            return None
        for row in rows:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                    raise _bad("BUTTON_DATA_INVALID")
        return markup

    def _reply(self, chat_id: int, p: Json) -> Json | None:
        params = p.get("reply_parameters")
        if isinstance(params, dict):
            target_chat = params.get("chat_id", chat_id)
            message_id, allow = params.get("message_id"), params.get("allow_sending_without_reply")
        elif params is not None:
            raise _bad("can't parse reply parameters JSON object")
        elif p.get("reply_to_message_id") is not None:
            target_chat = chat_id
            message_id, allow = p["reply_to_message_id"], p.get("allow_sending_without_reply")
        else:
            return None
        target = self.message(int(target_chat), int(message_id or 0))
        if target is None:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return {k: v for k, v in target.items() if k != "reply_to_message"}

    def _caption(self, p: Json) -> Json:
        caption, ents = _format(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        out: Json = {"caption": caption} if caption else {}
        if caption and ents:
            out["caption_entities"] = ents
        return out

    def _file_value(self, req: _Req, value: Any, part: str | None) -> bytes | str | None:
        """An upload (the part named like the parameter, or attach://<part>) or a string."""
        if isinstance(value, str) and value.startswith("attach://"):
            data = req.files.get(value.removeprefix("attach://"))
            if data is None:
                raise _bad("can't parse InputMedia: media not found")
            return data
        if value is None and part is not None:
            return req.files.get(part)
        return value if isinstance(value, str) else None

    async def _photo(self, req: _Req, value: Any, part: str | None) -> list[Json]:
        source = self._file_value(req, value, part)
        if source is None:
            raise _bad("there is no photo in the request")
        if isinstance(source, str):
            if source in self._photo_sets:
                return self._photo_sets[source]
            source = await self._fetch(source, MAX_URL_PHOTO)
        if len(source) > MAX_PHOTO_UPLOAD:
            raise _bad(
                f"file of size {len(source)} bytes is too big for a photo; "
                f"the maximum size is {MAX_PHOTO_UPLOAD} bytes"
            )
        size = _image_size(source)
        if size is None:
            raise _bad("IMAGE_PROCESS_FAILED")
        width, height = size
        # sendPhoto: "width and height must not exceed 10000 in total. Ratio must be at most 20."
        if width + height > 10_000 or max(width, height) > 20 * min(width, height):
            raise _bad("PHOTO_INVALID_DIMENSIONS")
        return self._store_photo(source, width, height)

    async def _document(self, req: _Req, value: Any, part: str | None) -> Json:
        source = self._file_value(req, value, part)
        if source is None:
            raise _bad("there is no document in the request")
        if isinstance(source, bytes):
            upload = value.removeprefix("attach://") if isinstance(value, str) else part
            file_name, content_type = req.names.get(upload or "", ("file", ""))
            mime = mimetypes.guess_type(file_name)[0] or content_type
            return self._store_document(source, file_name, mime)
        if source in self._documents:
            return self._documents[source]
        data = await self._fetch(source, MAX_URL_FILE)
        return self._store_document(data, urlsplit(source).path.rsplit("/", 1)[-1] or "file", None)

    async def _fetch(self, url: str, limit: int) -> bytes:
        """Telegram downloads files given by HTTP URL. Only loopback URLs are fetched here
        (another fake server): tests never touch the internet."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise _bad("wrong file identifier/HTTP URL specified")
        failed = _bad("failed to get HTTP URL content")
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise failed
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
                if resp.status >= 300:
                    raise failed
                data = await resp.read()
        except (aiohttp.ClientError, TimeoutError):
            raise failed from None
        if len(data) > limit:
            raise failed
        if not data:
            raise _bad("wrong type of the web page content")
        return data

    def _editable(self, p: Json) -> Json:
        if p.get("inline_message_id"):
            raise _bad("inline messages are not supported by the fake server")
        chat = self._target_chat(p)
        msg = self.message(chat["id"], int(p.get("message_id") or 0))
        if msg is None:
            raise _bad("message to edit not found")
        if msg["from"]["id"] != self.bot_user["id"]:
            raise _bad("message can't be edited")
        return msg

    def _edit(self, msg: Json, changes: Json, markup: Json | None) -> Json:
        # An edit without reply_markup removes the inline keyboard; an edit that changes
        # nothing is refused (MESSAGE_NOT_MODIFIED in Client.cpp).
        new = {k: v for k, v in msg.items() if k != "edit_date"}
        for key, value in {**changes, "reply_markup": markup}.items():
            if value:
                new[key] = value
            else:
                new.pop(key, None)
        if new == {k: v for k, v in msg.items() if k != "edit_date"}:
            raise _bad(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        new["edit_date"] = int(time.time())
        self._messages[(msg["chat"]["id"], msg["message_id"])] = new
        return new

    # -- Bot API methods ---------------------------------------------------------------------

    async def _api_getMe(self, req: _Req) -> Json:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}  # fmt: skip

    async def _api_getUpdates(self, req: _Req) -> list[Json]:
        p = req.params
        if self.webhook_url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(p.get("offset") or 0)
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        timeout = max(float(p.get("timeout") or 0), 0.0)
        if p.get("allowed_updates") is not None:  # omitted: keep the previous setting
            self._allowed = set(p["allowed_updates"]) or None
        # "An update is considered confirmed as soon as getUpdates is called with an offset
        # higher than its update_id"; a negative offset keeps only the last -offset updates.
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        async with self._updates_changed:
            self._updates_changed.notify_all()  # a newer getUpdates ends the older one

            def ready() -> bool:
                return self._closing or generation != self._poll_generation or bool(self._updates)

            try:
                async with asyncio.timeout(timeout):
                    await self._updates_changed.wait_for(ready)
            except TimeoutError:
                pass
        if generation != self._poll_generation:
            if self.webhook_url:
                raise _ApiError(409, "Conflict: terminated by setWebhook request")
            raise _ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        return self._updates[:limit]

    async def _set_webhook(self, url: str, drop: Any) -> bool:
        self.webhook_url = url
        async with self._updates_changed:
            if drop:
                self._updates.clear()
            if url:
                self._poll_generation += 1
            self._updates_changed.notify_all()
        return True

    async def _api_deleteWebhook(self, req: _Req) -> bool:
        return await self._set_webhook("", req.params.get("drop_pending_updates"))

    async def _api_setWebhook(self, req: _Req) -> bool:
        return await self._set_webhook(
            str(req.params.get("url") or ""), req.params.get("drop_pending_updates")
        )

    async def _api_getWebhookInfo(self, req: _Req) -> Json:
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}  # fmt: skip

    @staticmethod
    def _commands_key(p: Json) -> str:
        scope = p.get("scope") or {"type": "default"}
        key = ":".join(
            str(x) for x in (scope["type"], scope.get("chat_id"), scope.get("user_id")) if x
        )
        return f"{key}/{p['language_code']}" if p.get("language_code") else key

    async def _api_setMyCommands(self, req: _Req) -> bool:
        commands = req.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("Expected an Array of BotCommand")
        code = req.params.get("language_code")
        if code and not re.fullmatch(r"[a-z]{2}", str(code)):  # "A two-letter ISO 639-1 code"
            raise _bad("language_code must be a two-letter ISO 639-1 code")
        for command in commands:  # BotCommand.command: "1-32 characters ... a-z, 0-9 and _"
            if not _COMMAND_NAME_RE.fullmatch(str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(req.params)] = commands
        return True

    async def _api_getChatMember(self, req: _Req) -> Json:
        chat_id, user_id = req.params.get("chat_id"), req.params.get("user_id")
        if not isinstance(user_id, int):
            raise _bad("user_id is required")
        if not isinstance(chat_id, int) or chat_id not in self._chats:
            raise _bad("chat not found")
        user = self._user(user_id)
        admins = self.chat_admins.get(chat_id, [])
        if user_id not in admins:
            return {"status": "member", "user": user}
        if user_id == admins[0]:
            return {"status": "creator", "user": user, "is_anonymous": False}
        rights = (
            "can_be_edited", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
            "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
            "can_post_stories", "can_edit_stories", "can_delete_stories",
        )  # fmt: skip
        return {
            "status": "administrator",
            "user": user,
            "is_anonymous": False,
            **dict.fromkeys(rights, True),
        }

    async def _api_getMyCommands(self, req: _Req) -> list[Json]:
        return self.commands.get(self._commands_key(req.params), [])

    async def _api_deleteMyCommands(self, req: _Req) -> bool:
        self.commands.pop(self._commands_key(req.params), None)
        return True

    async def _api_sendMessage(self, req: _Req) -> Json:
        p = req.params
        chat = self._target_chat(p)
        text, ents = _format(p.get("text"), p.get("parse_mode"), p.get("entities"), caption=False)
        content: Json = {"text": text, **({"entities": ents} if ents else {})}
        markup, reply = self._markup(p), self._reply(chat["id"], p)
        return self._store_message(chat, self.bot_user, content, markup, reply)

    async def _api_sendPhoto(self, req: _Req) -> Json:
        p = req.params
        chat = self._target_chat(p)
        caption, markup, reply = self._caption(p), self._markup(p), self._reply(chat["id"], p)
        content = {"photo": await self._photo(req, p.get("photo"), "photo"), **caption}
        return self._store_message(chat, self.bot_user, content, markup, reply)

    async def _api_sendDocument(self, req: _Req) -> Json:
        p = req.params
        chat = self._target_chat(p)
        caption, markup, reply = self._caption(p), self._markup(p), self._reply(chat["id"], p)
        content = {"document": await self._document(req, p.get("document"), "document"), **caption}
        return self._store_message(chat, self.bot_user, content, markup, reply)

    async def _api_sendMediaGroup(self, req: _Req) -> list[Json]:
        p = req.params
        chat = self._target_chat(p)
        items = p.get("media")
        if not isinstance(items, list):
            raise _bad("can't parse media JSON object")
        if not items:
            raise _bad("there are no messages to send")
        if len(items) > 10:
            raise _bad("too many messages to send as an album")
        if len(items) < 2:
            # The docs say "must include 2-10 items"; the real server would quietly send a lone
            # item as an ordinary message, the fake refuses so the bot keeps to the contract.
            raise _bad("media must include 2-10 items")
        kinds = {item.get("type") for item in items}
        if "document" in kinds and len(kinds) > 1:
            raise _bad("document can't be mixed with other media types")
        reply = self._reply(chat["id"], p)
        contents: list[Json] = []
        for item in items:  # everything is checked before any message is stored
            caption = self._caption(item)
            if item.get("type") == "photo":
                contents.append(
                    {"photo": await self._photo(req, item.get("media"), None), **caption}
                )
            elif item.get("type") == "document":
                doc = await self._document(req, item.get("media"), None)
                contents.append({"document": doc, **caption})
            else:
                raise _bad(f'can\'t parse InputMedia: type "{item.get("type")}" is not faked')
        group = str(random.getrandbits(60))
        # No reply_markup: the official server does not read it for albums (it is ignored).
        return [
            self._store_message(chat, self.bot_user, {**c, "media_group_id": group}, None, reply)
            for c in contents
        ]

    async def _api_editMessageText(self, req: _Req) -> Json:
        p = req.params
        msg = self._editable(p)
        if "text" not in msg:
            raise _bad("there is no text in the message to edit")
        text, ents = _format(p.get("text"), p.get("parse_mode"), p.get("entities"), caption=False)
        return self._edit(msg, {"text": text, "entities": ents}, self._markup(p))

    async def _api_editMessageCaption(self, req: _Req) -> Json:
        p = req.params
        msg = self._editable(p)
        if "photo" not in msg and "document" not in msg:
            raise _bad("there is no caption in the message to edit")
        caption = self._caption(p)
        changes = {
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
        }
        return self._edit(msg, changes, self._markup(p))

    async def _api_editMessageMedia(self, req: _Req) -> Json:
        # "Use this method to edit animation, audio, document, photo, or video messages, or to
        # add media to text messages": the text goes, the new media's caption is the caption.
        p = req.params
        msg = self._editable(p)
        item = p.get("media")
        if not isinstance(item, dict):
            raise _bad("can't parse media JSON object")
        if msg.get("media_group_id") and item.get("type") not in ("photo", "document"):
            raise _bad("can't edit the media of an album to this type")
        content: Json
        if item.get("type") == "photo":
            content = {"photo": await self._photo(req, item.get("media"), None), "document": None}
        elif item.get("type") == "document":
            doc = await self._document(req, item.get("media"), None)
            content = {"document": doc, "photo": None}
        else:
            raise _bad(f'can\'t parse InputMedia: type "{item.get("type")}" is not faked')
        caption = self._caption(item)
        changes = {
            **content,
            "text": None,
            "entities": None,
            "caption": caption.get("caption"),
            "caption_entities": caption.get("caption_entities"),
        }
        return self._edit(msg, changes, self._markup(p))

    async def _api_editMessageReplyMarkup(self, req: _Req) -> Json:
        msg = self._editable(req.params)
        return self._edit(msg, {}, self._markup(req.params))

    async def _api_deleteMessage(self, req: _Req) -> bool:
        chat = self._target_chat(req.params)
        key = (chat["id"], int(req.params.get("message_id") or 0))
        if self.message(*key) is None:
            raise _bad("message to delete not found")
        self._deleted.add(key)
        return True

    async def _api_sendChatAction(self, req: _Req) -> bool:
        self._target_chat(req.params)
        if req.params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    async def _api_answerCallbackQuery(self, req: _Req) -> bool:
        query_id = str(req.params.get("callback_query_id", ""))
        # A query can be answered once (QUERY_ID_INVALID in Client.cpp otherwise).
        if query_id not in self._open_callbacks:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if len(str(req.params.get("text") or "")) > MAX_ALERT:
            raise _bad("MESSAGE_TOO_LONG")
        self._open_callbacks.discard(query_id)
        self.answered_callbacks.add(query_id)
        return True

    async def _api_getFile(self, req: _Req) -> Json:
        stored = self._files.get(str(req.params.get("file_id", "")))
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD and not self.local_server:
            raise _bad("file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}  # fmt: skip

    async def _api_setMessageReaction(self, req: _Req) -> bool:
        chat = self._target_chat(req.params)
        key = (chat["id"], int(req.params.get("message_id") or 0))
        if self.message(*key) is None:
            raise _bad("message to react not found")
        self.reactions[key] = list(req.params.get("reaction") or [])
        return True
