"""What /show and /history show, as plain data every front end renders its own way: a job
brought back (its caption, what became of it, the buttons that apply, a way to its parent) and
a page of a user's jobs (each with its id, prompt, state and lineage, and a way to show it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import history_texts, texts
from bot.core.buttons import Action, Button
from bot.core.captions import alt_text, caption, drawn, made_by
from bot.core.domain import GenerationRequest, Job, JobResult, JobState, UpscaleRequest
from bot.core.i18n import Language, Text, _, join, reader
from bot.core.presenters import job_ref, upscale_of

# Jobs on a page of /history: a Discord message's five rows hold their show buttons and the
# page turns; a phone shows them without scrolling.
HISTORY_PAGE = 5
# The prompt a /history row quotes, and the failure reason it gives, at most.
ROW_PROMPT = 48
ROW_REASON = 90


@dataclass(frozen=True)
class ShowView:
    """A job brought back by /show: ``text`` (its caption, and what became of it when it has no
    images to show), its images' alt texts, the result's buttons, and a button to its parent."""

    text: str
    alt: tuple[str, ...]
    rows: tuple[tuple[Button, ...], ...]

    @classmethod
    def of(
        cls, result: JobResult, *, missing: bool, limit: int, language: Language | None = None
    ) -> ShowView:
        """``missing``: some of its images could not be brought here; in the reader's
        ``language`` (the caption is cut to ``limit`` in its words)."""
        job, language = result.job, language or reader()
        notes = [drawn(job)] if drawn(job) else []
        if not result.images:
            notes.append(_fate(job))
        if missing:
            notes.append(history_texts.IMAGES_UNAVAILABLE)
        rows = list(result.buttons) if result.images else []
        parent = job.parent
        if parent is not None and parent.public_id:
            rows.append((Button(Action.SHOW, parent.public_id),))
        alt = tuple(language.render(alt_text(result, image)) for image in result.images)
        text = caption(job, limit, *notes, images=result.images, language=language)
        return cls(text, alt, tuple(rows))


def _fate(job: Job) -> str:
    """What became of a job with no images to show."""
    if job.pruned:
        return history_texts.PRUNED
    match job.state:
        case JobState.QUEUED:
            return history_texts.WAITING
        case JobState.RUNNING:
            return texts.UPSCALING if job.is_upscale else texts.STARTED
        case JobState.FAILED:
            return texts.failed(job.error or texts.INTERNAL)
        case JobState.CANCELLED:
            return texts.CANCELLED_STATUS
    return history_texts.IMAGES_UNAVAILABLE


@dataclass(frozen=True)
class HistoryRow:
    public_id: str
    what: str  # the prompt, quoted and cut; or which image it upscaled
    status: str  # done, waiting, failed with its reason…
    lineage: str  # "from #k3x9q2m · 🎲", or ""
    day: str  # "23 Nov"
    characters: tuple[str, ...] = ()  # the names of the characters it drew

    @property
    def ref(self) -> str:
        return job_ref(self.public_id)

    @property
    def text(self) -> Text:
        """One line of /history, in the words every platform uses."""
        line = join(" — ", [join(" ", [self.ref, self.day, self.what]), self.status])
        drew = _("characters: {names}", names=", ".join(self.characters)) if self.characters else ""
        return join(" · ", [line, *(x for x in (self.lineage, drew) if x)])

    @property
    def show(self) -> Button:
        return Button(Action.SHOW, self.public_id)


@dataclass(frozen=True)
class HistoryView:
    """A page of a user's jobs, newest first (``page`` 0 is the newest)."""

    rows: tuple[HistoryRow, ...]
    page: int
    more: bool  # an older page follows

    @classmethod
    def of(
        cls, jobs: Sequence[Job], *, page: int, more: bool, language: Language | None = None
    ) -> HistoryView:
        """In the reader's ``language``: a failure's reason is cut in its words."""
        language = language or reader()
        return cls(tuple(_row(job, language) for job in jobs), page, more)

    @property
    def text(self) -> str:
        if not self.rows:
            return history_texts.HISTORY_EMPTY if self.page == 0 else history_texts.HISTORY_END
        title = _("Your jobs, newest first (page {page}):", page=self.page + 1)
        return join("\n", [title, *(row.text for row in self.rows)])


def _row(job: Job, language: Language) -> HistoryRow:
    request = job.request
    what: str
    if isinstance(request, UpscaleRequest):
        what = upscale_of(job, request.index)
    elif job.pruned or not request.prompt:
        what = _("(prompt deleted)")
    else:
        what = f"“{texts.quote(texts.echoed(request.prompt), ROW_PROMPT)}”"
    parent = job.parent
    lineage = ""
    if parent is not None and parent.public_id and not job.is_upscale:
        lineage = _("from {ref} · {button}", ref=job_ref(parent.public_id), button=made_by(parent))
    used = request.characters if isinstance(request, GenerationRequest) and not job.pruned else ()
    drew = tuple(c.name for c in used)
    day = language.day(job.created_at)
    return HistoryRow(job.public_id, what, _status(job, language), lineage, day, drew)


def _status(job: Job, language: Language) -> str:
    match job.state:
        case JobState.DONE:
            return _("🗑 images deleted") if job.pruned else _("✅ done")
        case JobState.QUEUED:
            return _("⏳ waiting")
        case JobState.RUNNING:
            return _("🎨 running")
        case JobState.FAILED:
            reason = language.render(job.error or texts.INTERNAL)
            return _("❌ {reason}", reason=texts.quote(reason, ROW_REASON))
        case JobState.CANCELLED:
            return _("✖ cancelled")
