"""The provider contract: what the core asks of every road to the image models, and what each road
says about itself, as data.

Four roads reach Nano Banana: the useapi.net Flow API, the official Gemini API,
nano-banana-pro.net and Wireflow (``bot.providers``). Each is the only module that knows its wire
format; the core sees all of them through this contract and never imports httpx::

    ImageProvider.generate(ImageRequest) -> Rendering       every provider: what the call made
    ImageProvider.fetch(Rendering) -> Rendering             every provider: its pictures' bytes
    Resumable.submit(ImageRequest) -> Submission            asynchronous providers (Wireflow):
    Resumable.resume(Submission) -> Rendering                 store the Submission, then wait
    Uploader.upload(bytes, mime) -> handle                  where references must be uploaded (Flow)
    Upscaler.upscale_image(handle, resolution) -> bytes     a native upscale endpoint (Flow)
    Pooled.list_accounts() -> [Account]                     several accounts, each its own capacity
                                                              (Flow); others are one unit each

- **References** travel as ``ProviderProfile.references`` says: a ``handle`` the provider already
  holds (Flow's mediaGenerationId, a Wireflow result URL) or the picture (``data`` + ``mime``:
  Gemini's inlineData, nano-banana-pro.net's multipart). A provider that fetches pictures from
  URLs (``ProviderProfile.links``: Wireflow) takes a user's picture as a ``link``: a signed,
  short-lived address of our stored copy (``Links``), where the bot has a public address. A
  provider with none of an ``Uploader``, the BYTES mode or links cannot take a user's own
  picture; a job with one goes elsewhere.
- **Made, then fetched**: ``generate`` (or ``resume``) ends when the upstream has answered; a
  picture it keeps in its storage comes back ``Pending`` (its link, or the answer's inline text,
  not yet bounded, decoded and verified), and ``fetch`` brings the bytes. The core gives the
  capacity slot back between the two: a download uses the upstream's storage, not its
  generation capacity. ``fetch`` has its own end-to-end deadline and fails as ``generate``
  does (``MediaRefused``, ``Unavailable``, ``UpstreamTimeout``): the job is retried or told.
- **Count**: ``ModelOffer.images_per_call`` is how many images one upstream call returns. The
  provider runs ``ceil(count / images_per_call)`` calls in parallel itself, and the scheduler
  charges that many against ``ProviderLimits``. Images the filter withheld come back as
  ``Rendering.withheld`` (never trimmed silently); when every image is withheld it raises.
- **Limits** are fixed per plan (``ProviderLimits``: calls in flight, calls started per minute);
  Flow's adaptive per-account capacity is the scheduler's AIMD limit, so Flow's limits are None.
- **Asynchronous execution**: ``submit`` returns at once with the execution ids, idempotent on
  ``ImageRequest.job_key`` (the same key within the provider's window returns the same
  executions). The core stores the ``Submission`` before it waits, and after a restart calls
  ``resume`` instead of ``submit``. ``ExecutionLost`` means the provider forgot it: submit again.
- **Upscale**: where no ``Upscaler`` exists, U re-renders at a larger ``size`` if the model has one.
- **Models**: what each road can do with each model (``ModelOffer``) is the model table's
  (``bot.core.models_table``); a provider's profile carries the table's offers for it, narrowed
  by its plan where the plan allows less.

Failures are the exceptions of ``bot.core.upstream``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.core.models_table import AUTO, ModelOffer


class ReferenceMode(StrEnum):
    """How a provider takes reference images."""

    HANDLE = "handle"  # an id or URL the provider already holds
    BYTES = "bytes"  # the picture itself, sent with the request


@dataclass(frozen=True)
class Reference:
    """One reference image: a ``handle`` the provider holds, a ``link`` it fetches the picture
    from (``Links``), or the picture (``data``, ``mime``)."""

    handle: str | None = None
    data: bytes | None = None
    mime: str | None = None
    link: str | None = None

    def __post_init__(self) -> None:
        has_bytes = self.data is not None and self.mime is not None
        if [self.handle is not None, self.link is not None, has_bytes].count(True) != 1:
            raise ValueError("a Reference is a handle, a link, or data with its mime type")

    def __repr__(self) -> str:
        if self.handle is not None:
            return f"Reference(handle={self.handle!r})"
        if self.link is not None:
            return "Reference(link)"  # a signed address: whoever reads it may fetch the picture
        return f"Reference({self.mime}, {len(self.data or b'')} bytes)"


@dataclass(frozen=True)
class ImageRequest:
    """One job's render as a provider sees it; every option is explicit.

    ``model`` is the provider's own id (``ModelOffer.provider_model``). ``job_key`` names this
    attempt of this job: stable across restarts, changed by the core when it wants a new render
    (a reroll, a retry after a failed execution). ``account`` is Flow's account e-mail; None on
    providers with one key.
    """

    prompt: str
    model: str
    aspect_ratio: str
    size: str = "1K"
    count: int = 1
    seed: int | None = None
    references: tuple[Reference, ...] = ()
    job_key: str = ""
    account: str | None = None
    characters: tuple[str, ...] = ()  # Flow's character ids (POST /characters)


@dataclass(frozen=True)
class RenderedImage:
    """One picture. ``handle`` is what the provider takes back as a reference (or upscale
    source); None where only the bytes work."""

    data: bytes
    mime: str
    seed: int | None = None
    handle: str | None = None

    def __repr__(self) -> str:
        return f"RenderedImage({self.mime}, {len(self.data)} bytes, seed={self.seed})"


@dataclass(frozen=True)
class Pending:
    """A picture the upstream made and holds, before ``ImageProvider.fetch``: ``source`` is the
    provider's own (a signed link to its storage, or the answer's inline text), never logged."""

    source: str
    seed: int | None = None
    handle: str | None = None

    def __repr__(self) -> str:
        return f"Pending(seed={self.seed})"


@dataclass(frozen=True)
class Rendering:
    """What one ``generate`` or ``resume`` produced (``Pending`` pictures until ``fetch``).
    ``withheld`` images were refused by the provider's filter (``withheld_reason`` says why);
    ``trace`` holds the provider's request or execution ids, for logs and support."""

    provider: str
    images: tuple[RenderedImage | Pending, ...]
    withheld: int = 0
    withheld_reason: str | None = None
    account: str | None = None
    trace: tuple[str, ...] = ()

    @property
    def pictures(self) -> tuple[RenderedImage, ...]:
        """The pictures, once fetched; a ``Pending`` one left is a provider's bug."""
        pictures = tuple(i for i in self.images if isinstance(i, RenderedImage))
        if len(pictures) != len(self.images):
            raise TypeError(f"{self.provider} left a picture pending after its fetch")
        return pictures


@dataclass(frozen=True)
class Submission:
    """Submitted executions of an asynchronous provider: persist this before waiting."""

    provider: str
    execution_ids: tuple[str, ...]


@dataclass(frozen=True)
class ProviderLimits:
    """A plan's fixed limits; None is "not limited" (or, for Flow, adaptive).

    The scheduler keeps ``concurrency`` calls in flight at most, and starts at most
    ``starts_per_minute`` calls in any minute: the executions a provider counts apart
    (``submits_per_minute``), else every request. Wireflow's polls spend its
    ``requests_per_minute``; its client paces them and states a concurrency they fit in.
    """

    concurrency: int | None = None  # upstream calls in flight at once
    requests_per_minute: int | None = None  # every call (Wireflow: polls too)
    submits_per_minute: int | None = None  # executions started (Wireflow: 10 on every plan)
    references: int | None = None  # the most reference images the plan takes in one request

    @property
    def starts_per_minute(self) -> int | None:
        return self.submits_per_minute or self.requests_per_minute


@dataclass(frozen=True)
class Account:
    """One of a pooled provider's accounts, as it lists them."""

    email: str
    healthy: bool
    health: str = "OK"


@dataclass(frozen=True)
class ProviderProfile:
    """Everything the core and the scheduler need to know about one provider."""

    name: str
    references: ReferenceMode
    limits: ProviderLimits
    models: tuple[ModelOffer, ...]
    max_reference_bytes: int | None = None
    links: bool = False  # also fetches a picture from a URL (a ``Reference.link``)
    # The prompt grounds each reference by a marker (Flow's ``@reference_n``, ``@character_n``);
    # elsewhere the prompt says in words which image is which (``bot.core.characters``).
    markers: bool = False

    def offer(self, model: str) -> ModelOffer | None:
        """The offer for the bot's model id, or None if this provider does not serve it."""
        return next((m for m in self.models if m.model == model), None)

    def offer_for_wire(self, provider_model: str) -> ModelOffer | None:
        return next((m for m in self.models if m.provider_model == provider_model), None)


def unfit(profile: ProviderProfile, offer: ModelOffer, request: ImageRequest) -> str | None:
    """Why ``profile`` cannot serve ``request`` with ``offer``, as one sentence; None if it can."""
    if request.aspect_ratio == AUTO and offer.auto_aspect:
        if not request.references:
            return "the ratio auto comes from a reference picture: add one, or choose a ratio"
    elif request.aspect_ratio not in offer.aspect_ratios:
        return f"{offer.model} takes the aspect ratios {', '.join(offer.aspect_ratios)}"
    if request.size not in offer.sizes:
        return f"{offer.model} renders at {', '.join(offer.sizes)}"
    if not 1 <= request.count <= offer.max_count:
        return f"{offer.model} makes 1 to {offer.max_count} images at a time"
    most = min(offer.max_references, profile.limits.references or offer.max_references)
    if len(request.references) > most:
        return f"{offer.model} takes at most {most} reference images"
    return _unfit_references(profile, request.references)


def _unfit_references(profile: ProviderProfile, references: Sequence[Reference]) -> str | None:
    for ref in references:
        if ref.link is not None:
            if not profile.links:
                return f"{profile.name} fetches no pictures from links"
            continue
        if profile.references is ReferenceMode.HANDLE and ref.handle is None:
            return f"{profile.name} takes only references it made itself"
        if profile.references is ReferenceMode.BYTES and ref.data is None:
            return f"{profile.name} needs the reference pictures themselves"
        limit = profile.max_reference_bytes
        if ref.data is not None and limit is not None and len(ref.data) > limit:
            return f"{profile.name} takes reference pictures up to {limit // 1024} KiB"
    return None


class Links(Protocol):
    """Addresses of pictures the store holds, for a road that fetches them itself
    (``ProviderProfile.links``): each signed and valid a short while, so that only the road it
    was given to can fetch that picture, while its job may still need it. The wiring makes one
    where the bot has a public address (``bot.reference_links``)."""

    def link(self, sha256: str) -> str: ...


class ImageProvider(Protocol):
    """What the core needs from every provider."""

    @property
    def profile(self) -> ProviderProfile: ...

    async def generate(self, request: ImageRequest) -> Rendering: ...

    async def fetch(self, rendering: Rendering) -> Rendering:
        """``rendering`` with every ``Pending`` picture brought in: downloaded (or decoded),
        bounded and verified, all at once, the first failure stopping the rest."""
        ...


@runtime_checkable
class Resumable(Protocol):
    """An asynchronous provider whose executions outlive the process."""

    async def submit(self, request: ImageRequest) -> Submission: ...

    async def resume(self, submission: Submission) -> Rendering: ...


@runtime_checkable
class Uploader(Protocol):
    """A provider that turns a user's picture into a handle it holds."""

    async def upload(self, data: bytes, mime: str, *, account: str | None) -> str: ...


@runtime_checkable
class Pooled(Protocol):
    """A provider with several accounts behind one key, each its own capacity unit (Flow's
    Google accounts): ``ImageRequest.account`` names the one to use."""

    async def list_accounts(self) -> list[Account]: ...


@runtime_checkable
class CharacterMaker(Protocol):
    """A provider whose accounts hold named characters made of uploaded pictures (Flow's
    ``POST /characters``); a render names them in ``ImageRequest.characters``."""

    async def upload(self, data: bytes, mime: str, *, account: str | None) -> str: ...

    async def create_character(self, email: str, references: Sequence[str], name: str) -> str: ...

    async def delete_character(self, handle: str) -> None:
        """Remove a character from the account that holds it (its handle names the account);
        one the upstream doesn't know is gone already."""
        ...


@runtime_checkable
class Upscaler(Protocol):
    """A provider with a native upscale endpoint."""

    async def upscale_image(
        self, handle: str, resolution: str, *, account: str | None
    ) -> bytes: ...
