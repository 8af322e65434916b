"""A terminal front end on the same service: try a real token before any chat platform is set up.

Type a prompt with flags; images are saved to a folder. Buttons become words: ``U2`` upscales
image 2 of the last result, ``🎲`` or ``reroll`` makes a new seed, ``R1 a new prompt`` reuses
image 1. At end of input it waits for every job it started, so it also works from a script.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.core import character_texts, history_texts, i18n, images, option_texts, settings, texts
from bot.core.buttons import Action, Button
from bot.core.captions import ResultView
from bot.core.domain import Job, JobResult, UserSettings
from bot.core.errors import AlreadyMade, InvalidInput
from bot.core.history_views import ShowView
from bot.core.i18n import Text, _, join
from bot.core.people import CONSOLE, Owner
from bot.core.ports import DeliveryError, Posted
from bot.core.presenters import (
    InfoView,
    JobStatus,
    QueueView,
    SettingsPanel,
    character_line,
    job_ref,
    label,
)
from bot.core.service.api import BotApi
from bot.core.stats import StatsView
from bot.env import ConfigError

log = logging.getLogger(__name__)
HELP = f"""Type a prompt, e.g.: a lighthouse in a storm --ar 16:9 --model pro --count 2
  options:   {texts.FLAGS_HELP}; --ref PATH attaches a reference image (repeatable)
  U2         upscale image 2 of the last result      (U2 #k3x9q2m for that job)
  🎲, reroll  same prompt, new seed                    (reroll #k3x9q2m)
  R1 PROMPT  new prompt with image 1 as reference
  character create NAME --ref PATH [--ref PATH]   then @NAME in a prompt
  character list · character delete NAME
  queue      your jobs          cancel ID   cancel that job
  history N  page N of your jobs (1 the newest)      show ID   that job again
  settings   show defaults      set KEY VALUE   ({", ".join(settings.NAMES)})
  info       your images today, your jobs, your defaults
  admin …    the operator's commands: admin stats, admin pause, admin ban telegram:123 …
  help       this text          quit        leave (Ctrl-D waits for running jobs)"""

_ACTIONS = "type U1, R1 PROMPT or reroll"
_BUTTON = re.compile(r"^(?:(U|R)([1-4])|(🎲|reroll))(?:\s+#(\w+))?(?:\s+(.*))?$", re.IGNORECASE)
# A terminal has no caption limit; this keeps a result's lines readable.
CAPTION = 1000
_REF = re.compile(r"(?<!\S)--ref\s+(\S+)")


def writable_folder(folder: Path) -> Path:
    """``folder`` made if missing; a ConfigError naming BOT_CONSOLE_DIR if it can't take files."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(
            f"BOT_CONSOLE_DIR={folder} can't be written ({exc.strerror}): set it to a folder "
            "this user may write to"
        ) from None
    return folder


class Console:
    """The console front end: reads commands, calls the service, prints what it reports (it is
    its own ``Notifier``)."""

    PLATFORM = CONSOLE
    OPERATOR = (CONSOLE, "local")  # who types here: the bot's operator

    def __init__(
        self,
        service: BotApi,
        out_dir: Path,
        *,
        stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout,
    ) -> None:
        self.service = service
        self.out_dir = out_dir
        self._in = stdin
        self._out = stdout
        self._owner = Owner(*self.OPERATOR, "terminal")
        self._last_job: str | None = None  # its public id
        self._open: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    # Notifier: how the service reports back.

    async def job_progress(self, job: Job, status: JobStatus) -> None:
        self._say(join(" ", [job_ref(job.public_id), status.text]))

    async def job_finished(self, result: JobResult) -> Posted:
        """Save the images; their paths are where this front end holds them (``show``)."""
        job = result.job
        shown = ResultView.of(result, self.service.models, limit=CAPTION)
        try:
            posted = self._save(result, shown.titles)
        except OSError as exc:
            # Tried again at every sweep, it would fail the same way and hold the console open
            # at the end of its input; the images stay with the job, for `show` to save again.
            ref = job_ref(job.public_id)
            self._say(
                f"❌ {ref}'s images could not be saved in {self.out_dir} ({exc.strerror}): make "
                f"the folder writable, then type `show {ref}`."
            )
            self._settle(job.id)
            raise DeliveryError(f"not saved: {exc.strerror}", permanent=True) from exc
        self._say(f"✅ {shown.caption}")  # the caption begins with the job's id
        self._offer(result)
        self._settle(job.id)
        return posted

    async def job_failed(self, job: Job, message: str) -> None:
        self._say(join(" ", [job_ref(job.public_id), texts.failed(message)]))
        self._settle(job.id)

    async def job_ended_elsewhere(self, job: Job) -> None:
        self._settle(job.id)

    async def fetch_image(self, ref: str) -> bytes:
        try:
            return await asyncio.to_thread(Path(ref).read_bytes)
        except OSError as exc:
            raise DeliveryError(f"the saved image is gone: {exc}", permanent=True) from exc

    async def admin_alert(self, admin_id: str, text: str) -> None:
        self._say(text)

    # The read loop.

    async def run(self) -> None:
        """Read commands until the input ends (then wait for the jobs started) or ``quit``."""
        self.service.attach(self.PLATFORM, self)
        try:
            await self._read()
        finally:
            self.service.detach(self.PLATFORM)

    async def _read(self) -> None:
        self._say(f"Ready. {HELP.splitlines()[0]} — 'help' lists commands.")
        while True:
            line = await asyncio.to_thread(self._in.readline)
            if not line:
                await self._idle.wait()
                return
            command = line.strip()
            if command.lower() in ("quit", "exit"):
                return
            if command:
                try:
                    # The terminal's language (LANG=es_ES.UTF-8), unless chosen in settings.
                    tag = os.environ.get("LANG", "").partition(".")[0]
                    i18n.answer_in(await self.service.reader(self._owner.user, tag))
                    await self._handle(command)
                except InvalidInput as refusal:
                    self._say(texts.failed(refusal.message))
                except Exception:
                    log.exception("console command failed: %s", command)
                    self._say(texts.failed(texts.INTERNAL))

    async def _handle(self, command: str) -> None:
        word, _sep, rest = command.partition(" ")
        match word.lower():
            case "help":
                self._say(HELP)
            case "queue":
                view = QueueView.of(await self.service.queue(self._owner.user))
                lines = [
                    join(" — ", [join(" ", [row.ref, row.what]), row.status]) for row in view.rows
                ]
                self._say(join("\n", lines) if lines else texts.NOTHING_QUEUED)
            case "cancel":
                job = await self.service.find_job(rest.strip().lstrip("#") or "-")
                done = await self.service.cancel(self._owner.user, job.id if job else 0)
                if job is not None:
                    self._settle(job.id)
                    self._say(join(" ", [job_ref(job.public_id), done]))
            case "history":
                page = int(rest) - 1 if rest.strip().isdigit() and int(rest) > 0 else 0
                self._say((await self.service.history(self._owner.user, page)).text)
            case "show":
                await self._show(rest.strip())
            case "character":
                await self._character(rest)
            case "settings":
                self._show_settings(await self.service.settings(self._owner.user))
            case "info":
                self._show_info(await self.service.info(self._owner))
            case "admin":
                answer = await self.service.admin(self._owner.user, rest)
                self._say(_stats_text(answer) if isinstance(answer, StatsView) else answer)
            case "set":
                key, _sep, value = rest.strip().partition(" ")
                if key not in settings.NAMES:
                    raise InvalidInput(_("Use: set {names} VALUE", names="|".join(settings.NAMES)))
                changed = await self.service.update_settings(
                    self._owner.user, **{key: value.strip() or None}
                )
                i18n.answer_in(await self.service.reader(self._owner.user))  # a new language
                self._show_settings(changed)
            case _:
                await self._generate_or_press(command)

    async def _generate_or_press(self, command: str) -> None:
        match = _BUTTON.match(command)
        if match is None:
            paths = _REF.findall(command)
            limit = self.service.limits.max_image_bytes
            # Checked first: a prompt that will be refused reads no file.
            async with self.service.admit(
                self._owner, _REF.sub("", command), references=len(paths)
            ) as admission:
                submitted = await admission.submit(fetch=lambda: _read_all(paths, limit))
        else:
            letter, index, _dice, job, prompt = match.groups()
            if not job:
                # "The last result" must mean the one the user saw, not one still on its way.
                await self._idle.wait()
            public_id = job.lower() if job else self._last_job
            if public_id is None:
                raise InvalidInput(_("There is no result yet to use that on."))
            action = {"u": Action.UPSCALE, "r": Action.REUSE}.get((letter or "").lower())
            button = Button(action or Action.REROLL, public_id, int(index or 0))
            try:
                submitted = await self.service.press(self._owner, button, prompt)
            except AlreadyMade as made:  # its file is in the folder already
                self._say(join(" ", [made.message, f"(saved in {self.out_dir})"]))
                return
        self._open.add(submitted.job_id)
        self._idle.clear()
        queued = texts.queued(submitted.position, paused=submitted.paused)
        self._say(join(" ", [job_ref(submitted.public_id), queued]))

    async def _show(self, typed: str) -> None:
        """``show ID``: the job's caption again, and its images saved (again) in the folder."""
        if not typed:
            raise InvalidInput(history_texts.SHOW_HOW)
        job = await self.service.show(self._owner, typed)
        brought = await self.service.bring(self._owner, job)
        view = ShowView.of(brought.result, missing=brought.missing, limit=CAPTION)
        for image in brought.result.images:
            if image.posted is not None:  # saved here when it was made
                self._say(f"{job_ref(job.public_id)} image {image.index}: {image.posted}")
        fetched = [i for i in brought.result.images if i.posted is None]
        saved = self._save(JobResult(job, tuple(fetched)), [f"image {i.index}" for i in fetched])
        await self.service.save_posted(job.id, CONSOLE, saved)
        self._say(view.text)
        self._offer(brought.result)

    def _save(self, result: JobResult, titles: Sequence[str]) -> Posted:
        """Write the result's images into the folder; where each is, by index."""
        self.out_dir.mkdir(parents=True, exist_ok=True)  # again, if it went away meanwhile
        job, ref, saved = result.job, job_ref(result.job.public_id), {}
        for image, title in zip(result.images, titles, strict=True):
            data = image.data or b""
            path = self.out_dir / images.file_name(job, image, data)
            path.write_bytes(data)
            saved[image.index] = str(path)
            self._say(f"{ref} {title}: saved {path}")
        return saved

    def _offer(self, result: JobResult) -> None:
        """The result's buttons, as words; it becomes "the last result"."""
        if result.buttons:
            self._last_job = result.job.public_id
            labels = join(" · ", [label(b) for row in result.buttons for b in row])
            self._say(join(": ", [f"{job_ref(result.job.public_id)} actions ({_ACTIONS})", labels]))

    async def _character(self, rest: str) -> None:
        action, _sep, name = _REF.sub("", rest).strip().partition(" ")
        user, paths = self._owner.user, _REF.findall(rest)
        limit = self.service.limits.max_image_bytes
        match action.lower():
            case "create":
                made = await self.service.create_character(
                    self._owner, name, images=len(paths), fetch=lambda: _read_all(paths, limit)
                )
                self._say(character_texts.character_created(made.name))
            case "list":
                mine = await self.service.characters(user)
                lines = [character_line(c) for c in mine]
                self._say(join("\n", lines) if lines else character_texts.NO_CHARACTERS_YET)
            case "delete":
                self._say(await self.service.delete_character(user, name))
            case _:
                raise InvalidInput(_("Use: character create NAME --ref PATH, list, delete NAME"))

    def _show_settings(self, current: UserSettings) -> None:
        self._show_settings_panel(
            SettingsPanel.of(current, self.service.models, self.service.defaults)
        )

    def _show_settings_panel(self, panel: SettingsPanel) -> None:
        for row in panel.rows:
            shown = row.value if row.value is not None else f"{row.default} (bot default)"
            self._say(f"{row.setting.name}: {shown}")

    def _show_info(self, view: InfoView) -> None:
        self._say(view.usage)
        for row in view.queue.rows:
            self._say(join(" — ", [join(" ", [row.ref, row.what]), row.status]))
        self._show_settings_panel(view.settings)

    def _settle(self, job_id: int) -> None:
        self._open.discard(job_id)
        if not self._open:
            self._idle.set()

    def _say(self, text: str) -> None:
        print(i18n.reader().render(text), file=self._out, flush=True)


def _stats_text(view: StatsView) -> Text:
    return join(
        "\n",
        (
            join("\n", [join("", [heading, ":"]), *(join("", ["  ", line]) for line in lines)])
            for heading, lines in view.sections()
        ),
    )


async def _read_all(paths: Sequence[str], limit: int) -> list[bytes]:
    return [await asyncio.to_thread(_read, path, limit) for path in paths]


def _read(path: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, read only if it holds at most ``limit``."""
    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer, for ever.
        with open(os.open(Path(path).expanduser(), os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):  # /dev/zero, a FIFO, a socket, a folder
                raise InvalidInput(
                    _("{path} isn't a regular file: give the path of an image file.", path=path)
                )
            if info.st_size > limit:
                raise InvalidInput(option_texts.image_too_large(info.st_size, limit))
            data = file.read(limit + 1)  # the file may have grown since
    except OSError:
        raise InvalidInput(_("I can't read a file at {path}.", path=path)) from None
    if len(data) > limit:
        raise InvalidInput(option_texts.image_too_large(len(data), limit))
    return data
