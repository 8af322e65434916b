"""``BotApi``: what a front end may ask of the service, and nothing more (never the store).

A front end turns what a user did into one of these calls and renders the answer; every rule
(who may ask or press what, where, how often, with which options) is the service's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from bot.core.alerts import HeldAlert
from bot.core.buttons import Button
from bot.core.character_records import Character
from bot.core.domain import Brought, Job, QueueItem, Submitted, UserSettings
from bot.core.history_views import HistoryView
from bot.core.i18n import Language
from bot.core.models_table import ModelTable
from bot.core.options import Options
from bot.core.people import Owner, UserKey
from bot.core.policy import Defaults, Limits
from bot.core.ports import Notifier, Posted
from bot.core.presenters import InfoView, JobStatus, LinkView, ServerPanel
from bot.core.stats import StatsView

# Fetches a request's reference images (a front end's download), called when it is their turn.
Fetch = Callable[[], Awaitable[Sequence[bytes]]]


class Admitted(Protocol):
    """A request that passed every check but its images, holding its place in the queue."""

    async def submit(
        self,
        *,
        fetch: Fetch | None = None,
        route: Mapping[str, str] | None = None,
        until_told: bool = False,
    ) -> Submitted:
        """Fetch and check the references, store and queue the job; ``route`` holds the front
        end's own ids for the answer (its status message). ``until_told``: the job starts only
        once the front end says its place was told (``BotApi.told``) or cancels it."""
        ...


# Checks a request for its owner: ``BotApi.admit`` or ``BotApi.admit_press``, partly applied.
Admit = Callable[[Owner], AbstractAsyncContextManager[Admitted]]


class BotApi(Protocol):
    """The service as front ends see it. Refusals are ``InvalidInput`` with the sentence to
    show; everything else a front end needs to know comes to its ``Notifier``."""

    @property
    def models(self) -> ModelTable: ...

    @property
    def defaults(self) -> Defaults: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def leading(self) -> bool:
        """Whether this process runs the queue and gives the answers (one process always; of
        several sharing a store, the leader)."""
        ...

    def attach(self, platform: str, notifier: Notifier) -> None:
        """The front end of ``platform`` is ready: answers for it go to ``notifier`` now."""
        ...

    def detach(self, platform: str) -> None:
        """The front end stopped: its answers wait, stored, until it attaches again."""
        ...

    def admit(
        self,
        owner: Owner,
        text: str,
        options: Options | None = None,
        *,
        references: int = 0,
    ) -> AbstractAsyncContextManager[Admitted]:
        """Check a prompt (with ``references`` images to come) before anything is downloaded."""
        ...

    def admit_press(
        self, owner: Owner, button: Button, prompt: str | None = None
    ) -> AbstractAsyncContextManager[Admitted]:
        """Check a press of U, 🎲 or R (R with its new ``prompt``)."""
        ...

    async def press(self, owner: Owner, button: Button, prompt: str | None = None) -> Submitted:
        """Press U, 🎲 or R on a result: ``admit_press`` and submit at once. A U whose upscale
        was made already raises ``AlreadyMade`` (show that one again)."""
        ...

    async def pressed_job(self, owner: Owner, button: Button) -> Job:
        """The result a press acts on, if the presser may press it there (R's form shows its
        prompt)."""
        ...

    def throttle_press(self, user: UserKey) -> None:
        """Count a press that is no job (a settings choice) against the presser's rate."""
        ...

    async def press_cancel(self, owner: Owner, button: Button) -> str:
        """A cancel button under /queue; the sentence saying it is done."""
        ...

    async def cancel(self, user: UserKey, job_id: int) -> str:
        """Cancel a waiting or running job (a running one's result is thrown away: the upstream
        call can't be stopped); the sentence saying it is done."""
        ...

    def told(self, job_id: int) -> None:
        """A job submitted ``until_told`` may start: its owner was told its place."""
        ...

    def seen(self, user: UserKey) -> None:
        """``user`` wrote to the bot (where it can answer them): alerts kept for them, if they
        are an admin nobody could reach before, go out now."""
        ...

    async def reader(self, user: UserKey, tag: str | None = None) -> Language:
        """The language to answer ``user`` in now; ``tag``: the one their app says (Discord's
        interaction locale, Telegram's ``language_code``), kept for what is told them later."""
        ...

    async def create_character(
        self, owner: Owner, name: str, *, images: int, fetch: Fetch
    ) -> Character:
        """``/character create``: check the name and the count of pictures (1–2) before
        ``fetch`` downloads them, check them as references are, make the character upstream."""
        ...

    async def characters(self, user: UserKey) -> list[Character]:
        """``/character list``: the user's characters by name."""
        ...

    async def character_thumbnail(self, character: Character) -> bytes:
        """A character's first picture (for the list)."""
        ...

    async def delete_character(self, user: UserKey, name: str) -> str:
        """``/character delete``: the sentence saying it is done."""
        ...

    async def shared_characters(self, owner: Owner) -> list[Character]:
        """The characters shared where ``owner`` asks (its group, its server)."""
        ...

    async def share_character(self, owner: Owner, name: str) -> str:
        """``/character share``: everyone where ``owner`` asks may use it by its name."""
        ...

    async def unshare_character(self, owner: Owner, name: str, *, chat_admin: bool) -> str:
        """``/character unshare``: by the character's owner, or an admin of the place
        (``chat_admin``, as the platform says) or of the bot."""
        ...

    async def job(self, job_id: int) -> Job | None:
        """The job as stored now (a late progress report must not overwrite its answer)."""
        ...

    def statuses(self, job_ids: Collection[int]) -> Mapping[int, JobStatus]:
        """Where each of these jobs is now, from memory, whatever its status message was last
        told (jobs this process doesn't queue or run are left out): for a message several jobs
        share, said when it goes."""
        ...

    async def find_job(self, ref: str) -> Job | None:
        """The job a button names (its public id, or an old button's number), unchecked: for
        the front end's own bookkeeping after the service allowed the press."""
        ...

    async def queue(self, user: UserKey) -> list[QueueItem]:
        """The person's waiting and running jobs (from every account they linked)."""
        ...

    async def settings(self, user: UserKey) -> UserSettings: ...

    async def undelivered_alerts(self) -> list[HeldAlert]:
        """Admin alerts no admin could be given yet, oldest first (for /admin)."""
        ...

    async def update_settings(self, user: UserKey, **changes: str | int | None) -> UserSettings:
        """Validate and save some of a person's defaults; ``None`` resets one to the bot's."""
        ...

    async def show(self, owner: Owner, typed: str) -> Job:
        """/show: the job ``typed`` names, if ``owner`` may see it where they are (theirs, or
        one whose buttons count there, or any for an admin); else the unknown-id refusal."""
        ...

    async def press_show(self, owner: Owner, button: Button) -> Job:
        """A 🔎 Show button (under /history, or a shown job's parent), as /show."""
        ...

    async def bring(self, owner: Owner, job: Job) -> Brought:
        """A job ``show`` allowed, brought back for ``owner``'s chat (where its buttons count
        from now on): its images as references this platform holds, or their bytes."""
        ...

    async def save_posted(self, job_id: int, platform: str, refs: Posted) -> None:
        """Where ``platform`` holds a shown job's images now (to show them again cheaply)."""
        ...

    async def history(self, user: UserKey, page: int = 0) -> HistoryView:
        """A page of the person's jobs, newest first."""
        ...

    async def link(self, user: UserKey, code: str | None = None) -> LinkView:
        """/link: a code to send from the other platform (or, linked already, the link);
        with ``code``, join the two accounts."""
        ...

    async def unlink(self, user: UserKey) -> str:
        """/link off: part the person's accounts again."""
        ...

    async def info(self, owner: Owner) -> InfoView:
        """/info: the user's images today and left (here too), their jobs, their defaults."""
        ...

    async def admin(self, actor: UserKey, line: str) -> str | StatsView:
        """An /admin command as one line (``ban telegram:5``): its answer, or ``InvalidInput``
        (the same refusal for anyone who isn't an admin, whatever the line)."""
        ...

    async def server_panel(self, owner: Owner) -> ServerPanel:
        """The bot's settings in the server (or group) ``owner`` is in."""
        ...

    async def update_server(self, owner: Owner, **changes: Any) -> ServerPanel:
        """Change some of them: ``enabled``, ``channels`` (ids; empty: all), ``model`` (None:
        the bot's), ``daily_images`` (0: none), ``shared_buttons``. The caller has made sure
        ``owner`` administers that server (Discord: Manage Server; a Telegram group admin)."""
        ...
