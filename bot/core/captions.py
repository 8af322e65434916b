"""What a result says about itself, under its images and wherever it is shown again: its
caption (id, model, seed, ratio, as much of the prompt as the platform's limit leaves room for,
the result it was made from and who pressed), its images' numbers and alt texts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.core import character_texts, characters, option_texts, texts
from bot.core.buttons import Action, Button
from bot.core.domain import GenerationRequest, Job, JobResult, Lineage, ResultImage, UpscaleRequest
from bot.core.i18n import Language, Text, _, _n, reader
from bot.core.models_table import ModelTable
from bot.core.presenters import job_ref, label, parent_ref

# Discord's cap on an attachment's description (its alt text).
ALT_CHARS = 1024


def made_by(lineage: Lineage) -> str:
    """The button a job was made with, as a caption and /history say it ("🎲", "✏️ Edit 2")."""
    if lineage.action is Action.REROLL:
        return "🎲"
    return label(Button(lineage.action, lineage.public_id, lineage.index))


@dataclass(frozen=True)
class ResultView:
    """A finished job as every front end shows it: the caption, each image's number (on
    Telegram's album items) and alt text (Discord's attachment descriptions), the buttons."""

    caption: str
    titles: tuple[str, ...]
    alt: tuple[str, ...]
    rows: tuple[tuple[Button, ...], ...]

    @classmethod
    def of(
        cls,
        result: JobResult,
        models: ModelTable,
        *,
        limit: int,
        language: Language | None = None,
        as_typed: Callable[[str], str] = str,
    ) -> ResultView:
        """``limit``: the platform's most for a caption, counted in UTF-16 units as Telegram
        counts (never fewer than characters), in the reader's ``language`` (``i18n.reader()``
        unless told); ``as_typed``: the prompt written so that the platform shows it as typed
        (Discord's Markdown escaped)."""
        language = language or reader()
        count = len(result.images)
        text = caption(
            result.job,
            limit,
            *_notes(result, models),
            images=result.images,
            via=_via(result, models),
            language=language,
            as_typed=as_typed,
        )
        return cls(
            caption=text,
            titles=tuple(language.render(image_of(i.index, count)) for i in result.images),
            alt=tuple(language.render(alt_text(result, image)) for image in result.images),
            rows=result.buttons,
        )


def image_of(index: int, count: int) -> Text:
    """One image's title in an album."""
    return _("Image {index} of {count}", index=index, count=count)


def caption(
    job: Job,
    limit: int,
    *notes: str,
    images: Sequence[ResultImage] = (),
    via: str = "",
    language: Language | None = None,
    as_typed: Callable[[str], str] = str,
) -> str:
    """What a job says about itself, under a result and wherever it is shown again: its id,
    model, seed (where the road took one: ``images``), ratio, size and what the image filter
    withheld, and ``via`` (the road); or what it upscaled; the start of its prompt, as much as
    ``limit`` leaves room for; the result it was made from, and by whom if that was someone
    else's; then ``notes``. It mentions nobody: the prompt's @s are defused; the prompt is
    written ``as_typed``."""
    request, ref = job.request, job_ref(job.public_id)
    language = language or reader()
    if isinstance(request, UpscaleRequest):
        head = language.render(
            _(
                "{ref} · Upscaled image {index} of {parent} to {resolution} · {model}",
                ref=ref,
                index=request.index,
                parent=parent_ref(job),
                resolution=request.resolution,
                model=request.model,
            )
        )
        prompt = ""
    else:
        head = " · ".join([ref, *map(language.render, _made(request, images))])
        head += language.render(via)
        prompt = texts.echoed(request.prompt)
    tail = [language.render(line) for line in (_lineage_line(job), *notes) if line]
    room = limit - _units("\n".join([head, *tail])) - _units("\n“”")
    if prompt and room > 1:
        return "\n".join([head, f"“{_quoted(prompt, room, as_typed)}”", *tail])
    return "\n".join([head, *tail])


def _made(request: GenerationRequest, images: Sequence[ResultImage]) -> list[str]:
    """The model, seed, ratio and size a result was made with, and what the filter withheld."""
    # The seed only where the road took it (nano-banana-pro.net and Wireflow take none).
    seeded = any(image.seed is not None for image in images) or not images
    seed = [_("seed {seed}", seed=request.seed)] if seeded else []
    parts: list[str] = [request.model, *seed, request.aspect_ratio]
    if request.size != "1K":
        parts.append(request.size)
    if 0 < len(images) < request.count:
        withheld = request.count - len(images)
        parts.append(
            _n(
                "{count} image withheld by the image filter",
                "{count} images withheld by the image filter",
                withheld,
                count=withheld,
            )
        )
    return parts


def _via(result: JobResult, models: ModelTable) -> str:
    """Where several roads serve the model, which one made these: a job may have moved to the
    next road (the first out of credits, say), and seeds and prices differ by road."""
    if result.job.is_upscale or not result.images:
        return ""
    spec = models.resolve(result.images[0].model)
    return texts.via(result.images[0].ref.provider) if spec and len(spec.offers) > 1 else ""


def _lineage_line(job: Job) -> str:
    """ "from #k3x9q2m · 🎲 by @bob": the result a job was made from (an upscale names it in
    its first line), and who pressed, if that result was someone else's."""
    parent = job.parent
    if parent is None:
        return ""
    by = parent.owner is not None and parent.owner != job.owner.user and job.owner.name
    if job.is_upscale:
        return _("{button} by {name}", button=made_by(parent), name=job.owner.name) if by else ""
    if by:
        return _(
            "from {ref} · {button} by {name}",
            ref=job_ref(parent.public_id),
            button=made_by(parent),
            name=job.owner.name,
        )
    return _("from {ref} · {button}", ref=job_ref(parent.public_id), button=made_by(parent))


def _notes(result: JobResult, models: ModelTable) -> list[str]:
    """What a result's caption adds: the characters it drew, how to get upscale buttons."""
    return [note for note in (drawn(result.job), _upscale_hint(result, models)) if note]


def drawn(job: Job) -> str:
    """Which characters drew it, and which ``@words`` named none (they stayed text): under its
    result, and wherever /show brings it back."""
    request = job.request
    if not isinstance(request, GenerationRequest) or job.pruned:
        return ""
    used = [c.name for c in request.characters]
    return character_texts.characters_note(
        used, characters.unknown(request.prompt, request.characters)
    )


def _upscale_hint(result: JobResult, models: ModelTable) -> str:
    """Under a result its model can't upscale: how to get upscale buttons."""
    if result.job.is_upscale or not result.images:
        return ""
    if any(b.action is Action.UPSCALE for row in result.buttons for b in row):
        return ""
    able = next((m for m in models.models if m.can_upscale), None)
    if able is None:
        return ""
    how = texts.naming(result.job.owner.platform)
    return option_texts.how_to_upscale(result.images[0].model, able, how)


def alt_text(result: JobResult, image: ResultImage) -> Text:
    """What a screen reader says for a result's image (Discord's attachment description)."""
    request, count = result.job.request, len(result.images)
    if isinstance(request, UpscaleRequest):
        return _(
            "Image {index} of job {ref}, upscaled", index=request.index, ref=parent_ref(result.job)
        )
    # The prompt is cut so that the whole sentence, in any language, stays within Discord's cap.
    return _(
        "Image {index} of {count}: {prompt}",
        index=image.index,
        count=count,
        prompt=texts.quote(request.prompt, ALT_CHARS - 40),
    )


def _units(text: str) -> int:
    """A length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _quoted(prompt: str, units: int, as_typed: Callable[[str], str]) -> str:
    """``prompt`` written ``as_typed`` within ``units``: cut before it is written so (no escape
    is cut in half), shorter while what it became is too long."""
    cut = units
    while True:
        written = as_typed(_clip(prompt, cut))
        over = _units(written) - units
        if over <= 0 or cut <= 1:
            return written
        cut = min(cut - 1, cut * units // _units(written))  # as much shorter as it grew


def _clip(text: str, units: int) -> str:
    """``text`` within ``units`` UTF-16 units, "…" ending what was cut."""
    if _units(text) <= units:
        return text
    cut = text.encode("utf-16-le")[: 2 * (units - 1)].decode("utf-16-le", errors="ignore")
    return cut + "…"
