"""The service: everything front ends ask of the core (``api.BotApi``), built from its parts.

- ``admission``: who may ask, caps, quota, options, references → a stored, queued job
  (``rules``: allowlists, bans, a server's switch and channels, blocked words);
- ``runner``: the dispatch loop, one attempt per turn, and what each way of ending calls for;
- ``accounts``: the roads' units, their health, operator incidents and outages (``learned``:
  the concurrency each account was found to take, kept across restarts);
- ``delivery``: final answers (stored, told, swept up), admin alerts;
- ``progress``: what each waiting or running job's status message says, calmly;
- ``admin``: the operator's /admin commands; ``servers``: a server's admins' settings;
  ``pause``: the queue's pause switch; ``metered``: each call to a road timed for monitoring;
  ``operating``: what the service answers admins and monitoring; ``languages``: who reads what.

Every transition is written to the store before anyone is told, so after a crash ``start()``
re-queues interrupted generations and re-delivers stored results: every accepted job gets one
final answer.

Several processes may share one store (PostgreSQL): every one accepts jobs, one at a time leads
(``ports.Leadership``): it alone dispatches, runs and delivers, so fairness, the per-user cap and
each account's limit are one scheduler's. A new leader resumes what the last left, as a restart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from bot.core import i18n
from bot.core import settings as user_settings
from bot.core.domain import Job, QueueItem, UserSettings
from bot.core.models_table import ModelTable
from bot.core.monitoring import Recorder, Unrecorded
from bot.core.people import Owner, UserKey
from bot.core.policy import Access, Defaults, Limits, Tuning
from bot.core.ports import Leadership, Notifier, Store
from bot.core.presenters import InfoView, QueueView, SettingsPanel
from bot.core.providers import ImageProvider, Links
from bot.core.scheduler import Scheduler
from bot.core.service.accounts import Accounts
from bot.core.service.admin import Admin
from bot.core.service.admission import Admission
from bot.core.service.asking import Asking
from bot.core.service.character_making import Making
from bot.core.service.character_use import CharacterUse
from bot.core.service.characters import Characters
from bot.core.service.delivery import Delivery
from bot.core.service.history import History
from bot.core.service.history_use import HistoryUse
from bot.core.service.identities import Identities
from bot.core.service.languages import Readers
from bot.core.service.leadership import Lead, SoleLeader
from bot.core.service.learned import LearnedLimits
from bot.core.service.metered import metered
from bot.core.service.operating import Operating
from bot.core.service.pause import Pause
from bot.core.service.progress import Progress
from bot.core.service.roads import Roads
from bot.core.service.rules import Rules
from bot.core.service.runner import Runner
from bot.core.service.servers import Servers
from bot.core.service.tasks import Tasks

__all__ = ["Service"]

log = logging.getLogger(__name__)


class Service(Asking, HistoryUse, Operating, CharacterUse):
    """``async with Service(...)`` starts it; each front end ``attach``es when it is ready.

    ``providers`` are the roads to the models in the order to use them (the first is primary;
    the next take over when it can't serve); ``links``, where the bot serves pictures at a
    public address, let a road that fetches them take users' pictures. ``models`` is the table
    as those roads serve it. Front ends see it as ``BotApi``; ``store`` and ``scheduler`` are for
    the wiring, benches and tests (which hold an account full to keep jobs waiting), never for a
    front end.
    """

    def __init__(
        self,
        store: Store,
        providers: Sequence[ImageProvider],
        *,
        models: ModelTable,
        limits: Limits | None = None,
        tuning: Tuning | None = None,
        defaults: Defaults | None = None,
        access: Access | None = None,
        blocked_words: Sequence[str] = (),
        recorder: Recorder | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        leadership: Leadership | None = None,
        links: Links | None = None,
    ) -> None:
        self.store = store
        recorder = recorder or Unrecorded()
        roads = Roads([metered(p, recorder, time.monotonic) for p in providers], links=links)
        self.models = models = roads.table(models)
        self.limits = limits or Limits()
        self.defaults = defaults or Defaults()
        tuning = tuning or Tuning()
        access = access or Access()
        rng = rng or random.Random()
        self.scheduler = Scheduler(
            running_per_user=self.limits.running_per_user,
            floor=tuning.account_min_concurrency,
            ceiling=tuning.account_max_concurrency,
        )
        wake = asyncio.Event()  # something may start now
        self._blocked_words = tuple(blocked_words)
        self._tasks = Tasks()
        self._pause = Pause(store, self.scheduler, wake)
        notifiers: dict[str, Notifier] = {}  # by platform: the front ends attached
        self._identities = Identities(store)
        readers = Readers(store, self._identities, clock)  # whose answer is told in what
        self._progress = Progress(self.scheduler, clock, self._tasks, notifiers, readers.of)
        self._delivery = Delivery(
            store, models, access, clock, self._tasks, recorder, notifiers, self._progress, readers
        )
        self._history = History(store, models, access, self._identities, self._delivery)
        self._learned = LearnedLimits(store, self.scheduler, self._tasks)
        self._accounts = Accounts(
            roads, self.scheduler, access, tuning, clock, self._delivery, self._learned, wake
        )
        making = Making(store, roads.character_maker)  # characters' moves, taking turns
        self._runner = Runner(
            store,
            roads,
            self.scheduler,
            models=models,
            tuning=tuning,
            clock=clock,
            rng=rng,
            accounts=self._accounts,
            delivery=self._delivery,
            progress=self._progress,
            tasks=self._tasks,
            wake=wake,
            recorder=recorder,
            making=making,
        )
        self._characters = Characters(
            store,
            roads.character_maker,
            self.scheduler,
            self._accounts,
            access,
            prepare=lambda user, fetch, count: self._admission.downloads.fetch(user, fetch, count),
            tasks=self._tasks,
            making=making,
        )
        self._lead = Lead(
            leadership or SoleLeader(), store, self._runner, self._delivery, self._tasks
        )
        self._rules = Rules(store, access, self.limits)
        self._admission = Admission(
            store,
            self.scheduler,
            models=models,
            limits=self.limits,
            defaults=self.defaults,
            access=access,
            clock=clock,
            rng=rng,
            accounts=self._accounts,
            runner=self._runner,
            characters=self._characters,
            roads=roads,
            rules=self._rules,
            shared=leadership is not None,
            identities=self._identities,
            history=self._history,
        )
        self._admin = Admin(
            store,
            self.scheduler,
            access=access,
            limits=self.limits,
            accounts=self._accounts,
            rules=self._rules,
            runner=self._runner,
            pause=self._pause,
        )
        self._servers = Servers(store, models)

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Learn the accounts (from the limits a previous run found for them) and start; lead
        now if no other process does (then resume what a previous leader left, and dispatch),
        else wait for the lead in the background."""
        await self.store.seed_blocked(self._blocked_words)
        await self._pause.read()
        await self._lead.claim()
        await self._learned.recall()
        await self._accounts.refresh()
        await self._delivery.load_held_alerts()
        self._tasks.spawn(self._progress.run())
        self._tasks.spawn(self._keep_fresh())
        self._tasks.spawn(self._pause.watch())
        await self._lead.start()

    async def aclose(self) -> None:
        """Stop at once; running jobs stay ``running`` in the store and resume on next start."""
        await self._tasks.cancel_all()
        if self._lead.leading:  # a follower's limits are stale: only the leader's were learned
            await self._learned.save()

    async def deposed(self) -> None:
        """Wait until this process loses the lead, then raise ``LeaseLost``: the process must
        stop (whatever it still runs, the new leader runs again)."""
        await self._lead.deposed()

    @property
    def leading(self) -> bool:
        return self._lead.leading

    def attach(self, platform: str, notifier: Notifier) -> None:
        """``platform``'s front end is ready: its answers (those waiting too) go out now."""
        self._delivery.attach(platform, notifier)
        if self._lead.leading:
            self._tasks.spawn(self._delivery.redeliver(platform))

    def detach(self, platform: str) -> None:
        self._delivery.detach(platform)

    def expect(self, platform: str) -> None:
        """A front end will run for ``platform``: until it attaches, monitoring shows it down."""
        self._delivery.expect(platform)

    async def _keep_fresh(self) -> None:
        """Every so often (often, while no road can serve): the roads' units re-read; the
        leader fails jobs none will run, sweeps up answers and deleted characters' Flow copies."""
        while True:
            await self._accounts.until_next_round()
            try:
                await self._accounts.refresh()
                if self._lead.leading:
                    await self._runner.sweep_stranded()
                    await self._delivery.redeliver()
                    await self._characters.purge()
            except Exception:  # one bad round must not end the refreshing for good
                log.exception("account refresh failed")

    def seen(self, user: UserKey) -> None:
        self._delivery.seen(user)

    async def reader(self, user: UserKey, tag: str | None = None) -> i18n.Language:
        return await self._delivery.readers.heard(user, tag)

    # Reading.

    async def job(self, job_id: int) -> Job | None:
        return await self.store.get_job(job_id)

    async def find_job(self, ref: str) -> Job | None:
        return await self._history.find(ref)

    async def queue(self, user: UserKey) -> list[QueueItem]:
        jobs = []
        for key in (await self._identities.of(user)).users:
            jobs += await self.store.user_jobs(key)
        paused = self.scheduler.paused
        ordered = sorted(jobs, key=lambda job: job.id)
        return [QueueItem(job, self.scheduler.position(job.id), paused) for job in ordered]

    async def settings(self, user: UserKey) -> UserSettings:
        return await self.store.user_settings((await self._identities.of(user)).key)

    async def update_settings(self, user: UserKey, **changes: str | int | None) -> UserSettings:
        """Validate and save some of a person's defaults; ``None`` resets one to the bot's."""
        person = await self._identities.of(user)
        current = await self.store.user_settings(person.key)
        updated = replace(current, **user_settings.cleaned(changes, self.models))
        await self.store.save_user_settings(person.key, updated)
        self._delivery.readers.forget(person.users)  # a language chosen holds at once
        return updated

    async def info(self, owner: Owner) -> InfoView:
        user = owner.user
        return InfoView(
            await self._rules.allowance(user),
            await self._rules.allowance_here(owner),
            QueueView.of(await self.queue(user)),
            SettingsPanel.of(
                await self.settings(user), self.models, self.defaults, await self.characters(user)
            ),
        )
