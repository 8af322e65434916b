"""What a job's status message, /queue, /settings, /help, /info and the server panel show, as
plain data every front end renders its own way; and the words on every button, and how a job is
named (a result's words: ``captions``; /admin stats: ``stats``).

The rules live here once (what a button says, which choice applies now, how a job is described,
how a result's images are numbered); a front end maps these views to its widgets and adds only
its platform's wording. The buttons under a result are ``JobResult.buttons``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.core import character_texts, rules_texts, settings, texts
from bot.core.buttons import Action, Button
from bot.core.character_records import Character
from bot.core.community import ServerSettings
from bot.core.domain import Job, JobState, QueueItem, UpscaleRequest, UserSettings
from bot.core.i18n import Text, _, _n, join
from bot.core.models_table import MAX_COUNT, ModelTable
from bot.core.policy import Defaults
from bot.core.settings import SETTINGS, Choice, Setting


def job_ref(public_id: str) -> str:
    """How a job is named to users, everywhere: its public id."""
    return f"#{public_id}"


def character_line(character: Character, *, shared: bool = False) -> str:
    """A character in a list: its name, as written in prompts, its pictures, and whether
    someone else shared it here."""
    count = len(character.images)
    if shared:
        return _n(
            "@{name} · {count} picture · shared here",
            "@{name} · {count} pictures · shared here",
            count,
            name=character.name,
            count=count,
        )
    return _n(
        "@{name} · {count} picture",
        "@{name} · {count} pictures",
        count,
        name=character.name,
        count=count,
    )


def parent_ref(job: Job) -> str:
    """How a job names the one it was made from (``Job.parent``)."""
    if job.parent and job.parent.public_id:
        return job_ref(job.parent.public_id)
    return _("an earlier job")


def upscale_of(job: Job, index: int) -> Text:
    """What an upscale job is, in /queue and /history: which image of which result."""
    return _("upscale of image {index} from {ref}", index=index, ref=parent_ref(job))


def label(button: Button, *, done: bool = False) -> Text:
    """What a button says: what it does, in words a screen reader reads out (``done``: an
    upscale already asked for; pressing it again sends it again)."""
    match button.action:
        case Action.UPSCALE:
            if done:
                return _("✅ Upscale {index}", index=button.index)
            return _("⬆️ Upscale {index}", index=button.index)
        case Action.REUSE:
            return _("✏️ Edit {index}", index=button.index)
        case Action.REROLL:
            return _("🎲 Draw again")
        case Action.CANCEL:
            return _("✖ Cancel {ref}", ref=job_ref(button.job))
        case Action.SHOW:
            return _("🔎 Show {ref}", ref=job_ref(button.job))


@dataclass(frozen=True)
class LinkView:
    """What /link says, and whether the account is linked now (then it offers to unlink)."""

    text: str
    linked: bool


@dataclass(frozen=True)
class JobStatus:
    """What a job's status message says while the job waits (its place in the queue) or runs
    (for how long, and how long such a job takes lately); ``text`` is the sentence."""

    upscale: bool
    position: int = 0  # waiting: 1 for "next"
    elapsed: float | None = None  # running: seconds so far (None: waiting)
    typical: float | None = None  # running: the recent median for its model, once known
    paused: bool = False  # waiting: the operator has paused the queue

    @property
    def running(self) -> bool:
        return self.elapsed is not None

    @property
    def text(self) -> str:
        if self.elapsed is None:
            return texts.queued(self.position, paused=self.paused)
        return texts.running(self.upscale, self.elapsed, self.typical)

    @property
    def for_all(self) -> str:
        """The same, where a whole chat reads it (its busy chat's list): addressed to no one."""
        if self.elapsed is None:
            return texts.queued_for_all(self.position, paused=self.paused)
        return self.text


@dataclass(frozen=True)
class QueueRow:
    public_id: str
    what: str  # the prompt, quoted (and cut); or which image is upscaled
    running: bool
    upscale: bool
    position: int  # 1 for "next"; 0 when not waiting in this process's queue
    paused: bool = False  # the operator has paused the queue
    chat: str = ""  # where it was asked (``Owner.chat``)

    @property
    def ref(self) -> str:
        return job_ref(self.public_id)

    @property
    def status(self) -> str:
        """Where the job is, in the shared words: generating, or its place in the queue."""
        if self.running:
            return texts.UPSCALING if self.upscale else texts.STARTED
        return texts.queued(self.position, paused=self.paused)


@dataclass(frozen=True)
class QueueView:
    """A user's open jobs, oldest first; each can be cancelled (a running one's result is then
    thrown away: the upstream call can't be stopped)."""

    rows: tuple[QueueRow, ...]

    @classmethod
    def of(cls, items: Sequence[QueueItem]) -> QueueView:
        return cls(tuple(_queue_row(item) for item in items))

    @property
    def cancels(self) -> list[Button]:
        return [Button(Action.CANCEL, row.public_id) for row in self.rows]

    def said_in(self, chat: str) -> QueueView:
        """The list as said in the shared chat ``chat``: a job asked elsewhere (in a private
        chat, another group) is listed, and can be cancelled, without its prompt."""
        hidden = _("(asked in another chat)")
        return QueueView(
            tuple(row if row.chat == chat else replace(row, what=hidden) for row in self.rows)
        )


def _queue_row(item: QueueItem) -> QueueRow:
    job, request = item.job, item.job.request
    if isinstance(request, UpscaleRequest):
        what: str = upscale_of(job, request.index)
    else:
        what = f"“{texts.quote(texts.echoed(request.prompt))}”"  # said in groups too
    running = job.state is JobState.RUNNING
    return QueueRow(
        job.public_id, what, running, job.is_upscale, item.position, item.paused, job.owner.chat
    )


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

    @property
    def plain(self) -> str:
        """The row's title and what applies now, nothing more: "Model: nano-banana-pro"."""
        return _("{setting}: {value}", setting=self.setting.title, value=self.shown)

    @property
    def summary(self) -> str:
        """The row's label and what applies now, saying when that is the bot's default."""
        mine = self.value is not None and self.current == self.value
        if mine:
            return self.plain
        return _("{setting}: {value} (bot default)", setting=self.setting.title, value=self.shown)

    @property
    def shown(self) -> str:
        """What applies now, as a line shows it (a language by its name)."""
        if not self.setting.by_label:
            return self.current
        return next((c.label for c in self.choices if c.value == self.current), self.current)


@dataclass(frozen=True)
class SettingsPanel:
    """A user's defaults, one row per setting of ``bot.core.settings``."""

    rows: tuple[SettingRow, ...]
    characters: tuple[str, ...] = ()  # the user's characters' names, shown below the rows

    @classmethod
    def of(
        cls,
        current: UserSettings,
        models: ModelTable,
        defaults: Defaults,
        characters: Sequence[Character] = (),
    ) -> SettingsPanel:
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
        return cls(tuple(rows), tuple(c.name for c in characters))

    def __getitem__(self, name: str) -> SettingRow:
        return next(row for row in self.rows if row.setting.name == name)

    @property
    def text(self) -> str:
        """The panel's text on every platform: a line per setting."""
        lines: list[str] = [_("Your defaults for new prompts (options you type still win):")]
        lines += [row.summary for row in self.rows]
        if self.characters:
            lines.append(character_texts.your_characters(self.characters))
        return join("\n", lines)


@dataclass(frozen=True)
class HelpView:
    """The facts every /help states: the options, the models, the ratios, the buttons."""

    options: str
    models: str
    ratios: str
    # The action, its buttons, what they do: said alike, "{button}: {does}" ("makes…", "starts…").
    buttons: tuple[tuple[Action, str, str], ...]

    @classmethod
    def of(cls, models: ModelTable) -> HelpView:
        return cls(
            options=texts.FLAGS_HELP,
            models=texts.model_names(models),
            ratios=", ".join(models.all_ratios()),
            buttons=(
                (
                    Action.UPSCALE,
                    _("⬆️ Upscale 1–{last}", last=MAX_COUNT),
                    _("makes a bigger copy of that image"),
                ),
                (
                    Action.REUSE,
                    _("✏️ Edit 1–{last}", last=MAX_COUNT),
                    _("starts a new prompt with that image in it"),
                ),
                (
                    Action.REROLL,
                    _("🎲 Draw again"),
                    _("draws the same prompt again with a new seed"),
                ),
            ),
        )


@dataclass(frozen=True)
class Allowance:
    """A user's images today against a daily limit (0: none)."""

    used: int
    limit: int

    @property
    def left(self) -> int | None:
        return max(0, self.limit - self.used) if self.limit else None


@dataclass(frozen=True)
class InfoView:
    """/info: a user's images today (and in this server), their jobs, their defaults."""

    today: Allowance
    here: Allowance | None  # this server's own limit per member, when it has one
    queue: QueueView
    settings: SettingsPanel

    @property
    def usage(self) -> str:
        here = (self.here.used, self.here.limit) if self.here else None
        return rules_texts.usage(self.today.used, self.today.limit, here)


# The per-member daily limits a server panel offers (0: no limit of the server's own).
SERVER_LIMITS = (0, 5, 10, 20, 50, 100)


@dataclass(frozen=True)
class ServerPanel:
    """What a server's (or group's) admins set for the bot there, with the choices they have."""

    settings: ServerSettings
    models: tuple[Choice, ...]
    default_model: str  # the bot's own, when the server sets none
    limits: tuple[int, ...]

    @classmethod
    def of(cls, current: ServerSettings, models: ModelTable) -> ServerPanel:
        model = settings.named("model")
        assert model is not None
        limits = sorted({*SERVER_LIMITS, current.daily_images})
        return cls(current, tuple(model.choices(models)), models.default.id, tuple(limits))

    @property
    def model(self) -> str:
        """The model that applies to members who chose none."""
        offered = {c.value for c in self.models}
        chosen = self.settings.model
        return chosen if chosen is not None and chosen in offered else self.default_model

    @property
    def summary(self) -> str:
        return rules_texts.server_summary(self.settings, self.model)
