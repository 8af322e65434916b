"""``FlowClient``: the useapi.net Google Flow API over ``httpx``.

Implements the provider contract (``bot.core.providers``): an ``ImageProvider`` that is also an
``Uploader`` (``POST /assets``), an ``Upscaler`` (``POST /images/upscale``) and ``Pooled`` (each
Google account of ``GET /accounts`` is its own capacity). Every answer shape the API has used is
parsed into one ``Rendering``; every error status becomes one exception of the tree in
``bot.core.upstream``.
The token travels only in the Authorization header of API calls, which follow no redirect: media
links are fetched by a second client without it, from the media hosts only (``media``).
Everything the upstream sends is bounded before it is parsed: each call has an end-to-end
deadline, each body a size, each picture a size and a pixel count, and it must be a picture.
Nothing here logs headers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bot.core.models_table import MAX_SEED, ModelOffer, ModelTable
from bot.core.policy import Tuning
from bot.core.providers import (
    Account,
    ImageRequest,
    Pending,
    ProviderLimits,
    ProviderProfile,
    ReferenceMode,
    RenderedImage,
    Rendering,
)
from bot.core.upstream import (
    AccountNotFound,
    MediaRefused,
    ModerationError,
    Unavailable,
)
from bot.providers.flow_messages import b64, error_for, image_entries, media_id_of
from bot.providers.http import (
    JSON_OVERHEAD,
    UpstreamClient,
    deadline,
    exchange,
    new_http,
)
from bot.providers.media import (
    DEFAULT_MEDIA_HOSTS,
    MediaHosts,
    Pictures,
    base64_length,
    new_media_http,
    verified_mime,
)
from bot.providers.plumbing import fetched

NAME = "flow"
DEFAULT_BASE_URL = "https://api.useapi.net/v1/google-flow"

# The API's own bound on an image (uploads, 20 MB). POST /images answers carry 1K–2K pictures
# (4K comes only from upscale), so inline ones get this much each: 4 of them ≈ 111 MiB of JSON.
INLINE_IMAGE_BYTES = 20 * 2**20
# A pending picture's source: a link to download, or the answer's base64 text.
_LINK, _INLINE = "link:", "inline:"
_ACCOUNT = re.compile(r"[!-~]{1,320}")  # an e-mail address: at most 320 characters

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowTimeouts:
    """Seconds; each the end-to-end bound of one call (request and answer; an upscale's picture
    comes in its answer): a generation blocks 10–20 s, sometimes minutes, so it (and upscale)
    gets its own, and fetching its pictures afterwards another."""

    connect: float = 10.0
    generate: float = Tuning.generation_timeout_seconds
    download: float = 60.0  # the pictures of one answer, after it (``fetch``)
    upload: float = 120.0
    other: float = 60.0


class FlowClient(UpstreamClient):
    """Client for the Google Flow API; use as ``async with FlowClient(token) as flow: ...``."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeouts: FlowTimeouts | None = None,
        media_hosts: Iterable[str] = DEFAULT_MEDIA_HOSTS,
        models: tuple[ModelOffer, ...] | None = None,
        max_image_bytes: int = 50 * 2**20,
        max_image_pixels: int = 50_000_000,
        max_connections: int = 200,
    ) -> None:
        """``max_image_bytes`` bounds every picture: 50 MiB is what Telegram takes as a document,
        the largest anything here can deliver; a 4K upscale is far below both bounds."""
        self._auth = {"Authorization": f"Bearer {token}"}
        self._base = base_url.rstrip("/")
        self._timeouts = timeouts or FlowTimeouts()
        self._hosts = MediaHosts(media_hosts, self._base)
        if models is None:
            models = ModelTable.builtin().offers(NAME)
        # Capacity is per account and adaptive (the scheduler's), not a plan's.
        self._profile = ProviderProfile(
            NAME, ReferenceMode.HANDLE, ProviderLimits(), models, markers=True
        )
        self._max_image_bytes = max_image_bytes
        self._max_image_pixels = max_image_pixels
        # API calls and media links go through two clients: the token goes with the first only.
        read, connect = self._timeouts.other, self._timeouts.connect
        self._http = new_http(read=read, connect=connect, max_connections=max_connections)
        self._media = new_media_http(read=read, connect=connect, max_connections=max_connections)
        self._clients = (self._http, self._media)
        self._pictures = Pictures(
            self._media, self._hosts, max_image_bytes, max_image_pixels, self._timeouts.download
        )

    def __repr__(self) -> str:
        return f"FlowClient(base_url={self._base!r})"

    @property
    def profile(self) -> ProviderProfile:
        return self._profile

    async def list_accounts(self) -> list[Account]:
        async with deadline(self._timeouts.other, "GET /accounts"):
            body = await self._call("GET", "/accounts", bound=self._timeouts.other)
        if not isinstance(body, dict):
            raise Unavailable("GET /accounts answered something other than an object")
        accounts = []
        for email, info in body.items():
            if not _ACCOUNT.fullmatch(email):  # it goes into URLs, the store and logs
                log.warning("GET /accounts listed an account name that can't be one; skipped")
                continue
            health = str(info.get("health", "OK"))[:100] if isinstance(info, dict) else "OK"
            accounts.append(Account(email=email, healthy=health == "OK", health=health))
        return accounts

    async def upload(self, data: bytes, mime: str, *, account: str | None) -> str:
        """``POST /assets/{email}``: the picture's ``mediaGenerationId`` on ``account``."""
        email = account or ""
        async with deadline(self._timeouts.upload, "POST /assets", account=email):
            body = await self._call(
                "POST",
                f"/assets/{quote(email, safe='')}",
                content=data,
                headers={"Content-Type": mime},
                bound=self._timeouts.upload,
                account=email,
            )
        media_id = media_id_of(body.get("mediaGenerationId") if isinstance(body, dict) else None)
        if media_id is None:
            raise Unavailable("POST /assets answered without a mediaGenerationId", account=email)
        return media_id

    async def generate(self, request: ImageRequest) -> Rendering:
        """``POST /images``: up to four images in one call, on ``request.account``."""
        email = request.account
        payload: dict[str, Any] = {
            "prompt": request.prompt,
            "model": request.model,
            "aspectRatio": request.aspect_ratio,
            "count": request.count,
        }
        if request.seed is not None:
            payload["seed"] = request.seed
        if email is not None:
            payload["email"] = email
        payload.update(
            {f"reference_{i}": ref.handle for i, ref in enumerate(request.references, 1)}
        )
        payload.update({f"character_{i}": c for i, c in enumerate(request.characters, 1)})
        inline = base64_length(min(self._max_image_bytes, INLINE_IMAGE_BYTES))
        async with deadline(self._timeouts.generate, "POST /images", account=email):
            body = await self._call(
                "POST",
                "/images",
                json=payload,
                bound=self._timeouts.generate,
                account=email,
                max_bytes=JSON_OVERHEAD + request.count * inline,
            )
            if not isinstance(body, dict):
                raise Unavailable(
                    "POST /images answered something other than an object", account=email
                )
            entries = image_entries(body)
            if entries is None:
                raise Unavailable(
                    "POST /images answered without media or imagePanels", account=email
                )
            if len(entries) > request.count:
                # One entry per image, as asked: never fetch (or charge for) what wasn't.
                raise Unavailable(
                    f"POST /images answered {len(entries)} images for a count of {request.count}",
                    account=email,
                )
        images = [_pending(entry, email) for entry in entries]
        if not images:
            # A 200 with nothing in it is how moderation of every candidate looks.
            raise ModerationError("the answer carried no images", status=200, account=email)
        job_id = media_id_of(body.get("jobId"))
        return Rendering(
            provider=NAME,
            images=tuple(images),
            # Fewer images than asked: the others were moderated away.
            withheld=request.count - len(images),
            account=email,
            trace=(job_id,) if job_id else (),
        )

    async def upscale_image(self, handle: str, resolution: str, *, account: str | None) -> bytes:
        """``POST /images/upscale``: an image Flow made, at ``resolution`` (2k, 4k)."""
        email = account or ""
        async with deadline(self._timeouts.generate, "POST /images/upscale", account=email):
            body = await self._call(
                "POST",
                "/images/upscale",
                json={"mediaGenerationId": handle, "resolution": resolution, "email": email},
                bound=self._timeouts.generate,
                account=email,
                max_bytes=JSON_OVERHEAD + base64_length(self._max_image_bytes),
            )
            encoded = body.get("encodedImage") if isinstance(body, dict) else None
            if not isinstance(encoded, str):
                raise Unavailable(
                    "POST /images/upscale answered without encodedImage", account=email
                )
            data, _ = await asyncio.to_thread(self._inline, encoded, email)
        return data

    async def create_character(self, email: str, references: Sequence[str], name: str) -> str:
        payload: dict[str, Any] = {"email": email, "displayName": name}
        payload.update({f"imageReference_{i}": ref for i, ref in enumerate(references, 1)})
        async with deadline(self._timeouts.other, "POST /characters", account=email):
            body = await self._call(
                "POST", "/characters", json=payload, bound=self._timeouts.other, account=email
            )
        found = media_id_of(body.get("character")) if isinstance(body, dict) else None
        if found is None:
            raise Unavailable("POST /characters answered without a character id", account=email)
        return found

    async def delete_character(self, handle: str) -> None:
        """``DELETE /characters/{ref}``; its 404 ("Character not found") means gone already."""
        path = f"/characters/{quote(handle, safe='')}"
        async with deadline(self._timeouts.other, "DELETE /characters"):
            try:
                await self._call("DELETE", path, bound=self._timeouts.other)
            except AccountNotFound as exc:
                if exc.status != 404:
                    raise
                log.info("character already gone upstream: %s", exc.detail)

    async def fetch(self, rendering: Rendering) -> Rendering:
        """Every picture at once, each decoded from the answer or downloaded from its
        ``fifeUrl``; the first failure stops the rest (no download outlives the fetch)."""
        email = rendering.account
        async with deadline(self._timeouts.download, "the image downloads", account=email):
            return await fetched(rendering, lambda made: self._image(made, email))

    async def _image(self, made: Pending, email: str | None) -> RenderedImage:
        if made.source.startswith(_LINK):
            return await self._pictures.one(made, made.source.removeprefix(_LINK), email)
        encoded = made.source.removeprefix(_INLINE)
        data, mime = await asyncio.to_thread(self._inline, encoded, email)
        return RenderedImage(data=data, mime=mime, seed=made.seed, handle=made.handle)

    def _inline(self, encoded: str, email: str | None) -> tuple[bytes, str]:
        """A base64 picture, bounded before it is decoded; CPU-bound (run it in a thread)."""
        if len(encoded) > base64_length(self._max_image_bytes):
            raise MediaRefused(
                f"an inline image is larger than {self._max_image_bytes} bytes", account=email
            )
        data = b64(encoded, email)
        return data, verified_mime(data, max_pixels=self._max_image_pixels, account=email)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        bound: float,
        account: str | None = None,
        max_bytes: int = JSON_OVERHEAD,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        started = time.monotonic()
        call = f"{method} {_route(path)}"
        answer = await exchange(
            self._http,
            method,
            self._base + path,
            what=call,
            max_bytes=max_bytes,
            account=account,
            headers={**self._auth, **(headers or {})},
            timeout=httpx.Timeout(bound, connect=self._timeouts.connect),
            **kwargs,
        )
        log.debug("%s → %d in %.2fs", call, answer.status, time.monotonic() - started)
        if answer.status != 200:
            raise error_for(answer.status, answer.body, answer.headers, account)
        return answer.body


def _pending(entry: dict[str, Any], email: str | None) -> Pending:
    """One image of a ``POST /images`` answer, as it came: its link or its inline picture."""
    media_id = media_id_of(entry.get("mediaGenerationId"))
    if media_id is None:
        raise Unavailable("an image came back without a usable mediaGenerationId", account=email)
    seed = entry.get("seed")
    plausible = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED
    if isinstance(entry.get("encodedImage"), str):
        source = _INLINE + entry["encodedImage"]
    elif isinstance(entry.get("fifeUrl"), str):
        source = _LINK + entry["fifeUrl"]
    else:
        raise Unavailable("an image came back with neither fifeUrl nor encodedImage", account=email)
    return Pending(source, seed=seed if plausible else None, handle=media_id)


def _route(path: str) -> str:
    """A path fit for logs: account e-mails in it are masked."""
    if path.startswith("/assets/"):
        return "/assets/…"
    if path.startswith("/characters/"):  # a character's id holds its account's e-mail in hex
        return "/characters/…"
    return path
