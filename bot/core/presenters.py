"""What /queue, /settings and /help show, as plain data every front end renders its own way.

The rules live here once (which job can be cancelled, which choice applies now, how a job is
described); a front end maps these views to its widgets and adds only its platform's wording.
A result's caption is ``texts.caption``, its buttons ``JobResult.buttons``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core import texts
from bot.core.domain import Action, JobState, QueueItem, UpscaleRequest, UserSettings
from bot.core.models_table import MAX_COUNT, ModelTable
from bot.core.policy import Defaults
from bot.core.settings import SETTINGS, Choice, Setting


@dataclass(frozen=True)
class QueueRow:
    job_id: int
    what: str  # the prompt, quoted (and cut); or which image is upscaled
    running: bool
    upscale: bool
    position: int  # 1 for "next"; 0 when not waiting in this process's queue
    cancellable: bool

    @property
    def status(self) -> str:
        """Where the job is, in the shared words: generating, or its place in the queue."""
        if self.running:
            return texts.UPSCALING if self.upscale else texts.STARTED
        return texts.queued(self.position)


@dataclass(frozen=True)
class QueueView:
    """A user's open jobs, oldest first."""

    rows: tuple[QueueRow, ...]

    @classmethod
    def of(cls, items: Sequence[QueueItem]) -> QueueView:
        return cls(tuple(_queue_row(item) for item in items))

    @property
    def cancellable(self) -> list[int]:
        return [row.job_id for row in self.rows if row.cancellable]


def _queue_row(item: QueueItem) -> QueueRow:
    job, request = item.job, item.job.request
    if isinstance(request, UpscaleRequest):
        what = f"upscale of image {request.index} from #{request.source_job}"
    else:
        what = f"“{texts.quote(request.prompt)}”"
    running = job.state is JobState.RUNNING
    return QueueRow(job.id, what, running, job.is_upscale, item.position, item.cancellable)


@dataclass(frozen=True)
class SettingRow:
    setting: Setting
    value: str | None  # the user's own choice; None: the bot's default applies
    default: str
    choices: tuple[Choice, ...]

    @property
    def current(self) -> str:
        """The value that applies now (a saved one the table no longer offers gives way)."""
        offered = {c.value for c in self.choices}
        return self.value if self.value in offered else self.default


@dataclass(frozen=True)
class SettingsPanel:
    """A user's defaults, one row per setting of ``bot.core.settings``."""

    rows: tuple[SettingRow, ...]

    @classmethod
    def of(cls, current: UserSettings, models: ModelTable, defaults: Defaults) -> SettingsPanel:
        rows = []
        for setting in SETTINGS:
            value = getattr(current, setting.name)
            rows.append(
                SettingRow(
                    setting,
                    None if value is None else str(value),
                    setting.default(models, defaults),
                    tuple(setting.choices(models)),
                )
            )
        return cls(tuple(rows))

    def __getitem__(self, name: str) -> SettingRow:
        return next(row for row in self.rows if row.setting.name == name)


@dataclass(frozen=True)
class HelpView:
    """The facts every /help states: the options, the models, the ratios, the buttons."""

    options: str
    models: str
    ratios: str
    buttons: tuple[tuple[Action, str, str], ...]  # the action, its buttons, what they do

    @classmethod
    def of(cls, models: ModelTable) -> HelpView:
        return cls(
            options=texts.FLAGS_HELP,
            models=texts.model_names(models),
            ratios=", ".join(models.all_ratios()),
            buttons=(
                (Action.UPSCALE, f"U1–U{MAX_COUNT}", "upscale that image"),
                (Action.REROLL, "🎲", "the same prompt with a new seed"),
                (Action.REUSE, f"R1–R{MAX_COUNT}", "a new prompt with that image as reference"),
            ),
        )
