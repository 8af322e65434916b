"""Final answers: each job's outcome written to the store (again, while a full disk refuses it),
then told on the job's platform (again, while the platform fails), and swept up later when even
that did not work; the job's progress reports (``progress``) stop first. Admin alerts go out
through the same notifiers.

Generation and delivery are separate states, so a restart re-delivers what was stored: every
accepted job gets one final answer. A platform gets its answers once its front end is attached;
until then its jobs wait, stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bot.core import admin_texts, texts
from bot.core.alerts import AdminEvent, HeldAlert
from bot.core.buttons import Action, Button
from bot.core.context import current_job
from bot.core.domain import GenerationRequest, Job, JobResult, JobState, ResultImage
from bot.core.i18n import reading
from bot.core.models_table import ModelTable
from bot.core.monitoring import Outcome, Recorder
from bot.core.people import UserKey
from bot.core.policy import Access
from bot.core.ports import DeliveryError, Notifier, Posted, Store
from bot.core.service.languages import Readers
from bot.core.service.progress import Progress
from bot.core.service.tasks import Tasks

log = logging.getLogger(__name__)

DELIVERY_ATTEMPTS = 4
DELIVERY_BACKOFF = 0.5  # seconds before the 2nd attempt; ×4 each time after, at most 30
# A final answer a platform keeps refusing is tried again at each sweep, until the tries
# span this long (counted in this process: a restart tries afresh).
DELIVERY_GIVE_UP = 24 * 3600.0
# At most this many answers read back from the store (a sweep, a restart) are being delivered at
# once: each holds its images in memory from then on. A fresh answer's images are held already
# (by the job that made them), so it goes at once: a slot would only make it wait.
DELIVERY_SLOTS = 8
# A result the store can't take (a full disk) is kept in memory and written again, from this
# wait doubling, for this long; only then does the job fail. Its images were paid for.
STORE_BACKOFF = 0.5
STORE_GIVE_UP = 300.0


def result_of(job: Job, images: Sequence[ResultImage], models: ModelTable) -> JobResult:
    """A finished job with its images and the buttons that apply to them: a row per image with
    its upscale (where the road that made it upscales it, or renders the model larger) and its
    edit, then 🎲; none on an upscale. Without upscales the edits go two to a row. Labels say
    what each does (``presenters.label``), and a row of two fits a phone's width on Telegram;
    five rows are Discord's most."""
    request = job.request
    if not isinstance(request, GenerationRequest) or not images:
        return JobResult(job, tuple(images))
    spec = models.resolve(images[0].model)
    offer = spec.offer(images[0].ref.provider) if spec is not None else None
    rows: list[tuple[Button, ...]]
    ref = job.public_id
    if offer is not None and offer.enlarges(request.size):
        rows = [
            (Button(Action.UPSCALE, ref, i.index), Button(Action.REUSE, ref, i.index))
            for i in images
        ]
    else:
        edits = [Button(Action.REUSE, ref, i.index) for i in images]
        rows = [tuple(edits[at : at + 2]) for at in range(0, len(edits), 2)]
    rows.append((Button(Action.REROLL, ref),))
    return JobResult(job, tuple(images), tuple(rows))


class Delivery:
    def __init__(
        self,
        store: Store,
        models: ModelTable,
        access: Access,
        clock: Callable[[], float],
        tasks: Tasks,
        recorder: Recorder,
        notifiers: dict[str, Notifier],
        progress: Progress,
        readers: Readers,
    ) -> None:
        self._store = store
        self.readers = readers  # whose answer is told in what
        self._models = models
        self._access = access
        self._clock = clock
        self._tasks = tasks
        self._recorder = recorder
        self._notifiers = notifiers  # shared with ``progress``
        self._progress = progress
        self._holding: set[UserKey] = set()  # admins with alerts kept for them in the store
        self._platforms: dict[str, bool] = {}  # each platform a front end runs for: attached?
        self._delivering: set[int] = set()
        self._failing_since: dict[int, float] = {}  # first failed delivery round, by job
        self._store_alerted = False
        self._slots = asyncio.Semaphore(DELIVERY_SLOTS)
        self.leads: Callable[[], bool] = lambda: False  # only the leader delivers

    def expect(self, platform: str) -> None:
        """A front end will run for ``platform``: until it attaches, it counts as not there."""
        self._platforms.setdefault(platform, False)

    def attach(self, platform: str, notifier: Notifier) -> None:
        """Tell ``platform``'s users through ``notifier`` from now on (again, after a detach);
        the alerts kept for its admins go out now."""
        self._notifiers[platform] = notifier
        self._platforms[platform] = True
        for admin in [a for a in self._holding if a.platform == platform]:
            self._tasks.spawn(self._release(admin))

    def detach(self, platform: str) -> None:
        """``platform``'s front end stopped: its answers wait, stored, for the next attach."""
        self._notifiers.pop(platform, None)
        if platform in self._platforms:
            self._platforms[platform] = False

    def platforms(self) -> dict[str, bool]:
        """Each platform a front end runs (or ran) for, and whether it is attached now."""
        return dict(self._platforms)

    # Recording outcomes.

    async def stored(
        self, job_id: int, write: Callable[[], Awaitable[None]], *, within: float | None = None
    ) -> bool:
        """Write, and write again while the store refuses (a full disk), for ``within`` seconds
        (``STORE_GIVE_UP`` unless told); False if it never took it."""
        deadline = self._clock() + (STORE_GIVE_UP if within is None else within)
        delay = STORE_BACKOFF
        while True:
            try:
                await write()
            except Exception as exc:
                self._store_trouble(exc)
                if self._clock() + delay > deadline:
                    log.error("job %d: the store keeps refusing a write: %s", job_id, exc)
                    return False
                log.warning(
                    "job %d: the store refused a write (%s); again in %.1fs", job_id, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
            else:
                self._store_alerted = False
                return True

    async def record_failure(
        self, job_id: int, message: str, outcome: Outcome = Outcome.FAILED
    ) -> None:
        """End the job with ``message`` for its owner, as stored; its delivery comes after."""
        failed: list[bool] = []

        async def fail() -> None:
            failed.append(await self._store.fail_job(job_id, message, outcome))

        if await self.stored(job_id, fail, within=15 * STORE_BACKOFF):
            if failed[-1]:
                self._recorder.job_ended(outcome)
            return
        # Not even the failure can be written: say it all the same. The store still has the job
        # running, so a restart runs it again: twice is better than never.
        job = await self._store.get_job(job_id)
        notifier = self._notifiers.get(job.owner.platform) if job else None
        if job is not None and notifier is not None:
            self._progress.done(job_id)
            with contextlib.suppress(Exception), reading(await self.readers.of(job.owner.user)):
                await notifier.job_failed(job, message)

    async def fail(self, job_id: int, message: str, outcome: Outcome = Outcome.FAILED) -> None:
        """End the job with ``message`` and tell its owner."""
        await self.record_failure(job_id, message, outcome)
        await self.deliver(job_id)

    # Telling.

    async def deliver(self, job_id: int, result: JobResult | None = None) -> None:
        """Give the job's final answer, retrying platform faults; then record it as given.

        A platform that keeps failing leaves the job undelivered, images kept: the periodic
        sweep (``redeliver``) tries again, until its tries span ``DELIVERY_GIVE_UP``.
        """
        if job_id in self._delivering:
            return
        self._delivering.add(job_id)
        working_on = current_job.set(job_id)
        try:
            for attempt in range(DELIVERY_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(min(30.0, DELIVERY_BACKOFF * 4 ** (attempt - 1)))
                async with self._slots if result is None else contextlib.nullcontext():
                    outcome = await self._deliver_once(job_id, result)
                if outcome is not None:
                    if outcome:
                        await self._store.mark_delivered(job_id)
                        self._failing_since.pop(job_id, None)
                    return
            self._failing_since.setdefault(job_id, self._clock())
            log.warning("job %d: delivery keeps failing; the next sweep tries again", job_id)
        finally:
            self._delivering.discard(job_id)
            current_job.reset(working_on)

    async def _deliver_once(self, job_id: int, result: JobResult | None) -> bool | None:
        """True: delivered (or never will be); False: nothing to do; None: try again later."""
        job = result.job if result else await self._store.get_job(job_id)
        if job is None or job.delivered or not job.state.final or not self.leads():
            return False
        self._progress.done(job_id)  # it has ended: its status waits for the answer alone
        notifier = self._notifiers.get(job.owner.platform)
        if notifier is None:
            log.info("job %d waits for the %s front end to deliver", job_id, job.owner.platform)
            return False
        try:
            with reading(await self.readers.of(job.owner.user)):
                await self._tell(notifier, job, result)
        except DeliveryError as exc:
            self._recorder.delivery_failed(job.owner.platform, permanent=exc.permanent)
            if exc.permanent:
                log.warning("job %d is undeliverable: %s", job_id, exc)
                return True
            log.info("job %d delivery failed (%s), retrying", job_id, exc)
            return None
        except Exception:
            self._recorder.delivery_failed(job.owner.platform, permanent=False)
            log.exception("job %d delivery failed, retrying", job_id)
            return None
        return True

    async def ended_elsewhere(self, job: Job) -> None:
        """Another process told the job's end (its answer, or its cancel to whoever cancelled
        it): the job's front end here drops what still shows it waiting. A courtesy: a
        platform's fault leaves it to the next change."""
        notifier = self._notifiers.get(job.owner.platform)
        if notifier is None:
            return
        try:
            with reading(await self.readers.of(job.owner.user)):
                await notifier.job_ended_elsewhere(job)
        except DeliveryError as exc:
            log.info("job %d: its end is not shown here: %s", job.id, exc)

    async def _tell(self, notifier: Notifier, job: Job, result: JobResult | None) -> None:
        """The job's final answer, in its owner's language."""
        if job.state is JobState.DONE:
            if result is None:
                result = result_of(job, await self._store.results(job.id), self._models)
            posted = await notifier.job_finished(result)
            await self._remember_posted(job, posted)
        elif job.state is JobState.FAILED:
            await notifier.job_failed(job, job.error or texts.INTERNAL)
        elif job.error:  # cancelled by an admin: its owner hasn't seen it end
            await notifier.job_failed(job, job.error)

    async def _remember_posted(self, job: Job, posted: Posted) -> None:
        """Note where the answer's images are now, for /show; the answer is given either way."""
        if not posted:
            return
        try:
            await self._store.save_posted(job.id, job.owner.platform, posted)
        except Exception as exc:
            log.warning("job %d: where its images were posted is not kept: %s", job.id, exc)

    async def fetch_image(self, where: Mapping[str, str]) -> bytes | None:
        """An image's bytes, from a platform that holds it (``where``: references by platform)
        and whose front end is attached here; None if none can give it now."""
        for platform, ref in where.items():
            notifier = self._notifiers.get(platform)
            if notifier is None:
                continue
            try:
                return await notifier.fetch_image(ref)
            except Exception as exc:
                log.info("an image held on %s could not be fetched: %s", platform, exc)
        return None

    async def redeliver(self, platform: str | None = None) -> None:
        """Deliver what a previous run or a failing platform left undelivered (on ``platform``
        only, if named); jobs of a platform not attached keep waiting for it."""
        for job in await self._store.undelivered_jobs():
            attached = job.owner.platform in self._notifiers
            if not attached or platform not in (None, job.owner.platform):
                continue
            # Given up after tries, never by age alone: an answer that waited through a long
            # outage (of the platform, or of the bot) gets its tries all the same.
            failing_since = self._failing_since.get(job.id)
            if failing_since is not None and self._clock() - failing_since > DELIVERY_GIVE_UP:
                log.error("job %d: giving up on delivering its answer", job.id)
                await self._store.mark_delivered(job.id)
                self._failing_since.pop(job.id, None)
            elif job.id not in self._delivering:
                self._tasks.spawn(self.deliver(job.id))

    # Admins.

    def tell_admins(self, event: AdminEvent, *, serving: bool = True) -> None:
        """Alert every admin on their platform. An alert an admin can't be given now (their
        platform is not attached, they never wrote to the bot, their DMs are closed) is kept in
        the store, and sent at the platform's next attach or when they next write to the bot.
        ``serving``: whether some road can still serve (else the alert says none can). Only the
        leading process tells: the others, sharing its accounts, see the same."""
        if not self.leads():
            return
        text = admin_texts.admin_alert(event, serving=serving)
        for platform, admins in self._access.admins_by_platform().items():
            for admin in admins:
                self._tasks.spawn(self._alert(UserKey(platform, admin), [text]))

    async def load_held_alerts(self) -> None:
        """Learn whom a previous run kept alerts for (they go out when their platform attaches)."""
        self._holding |= {alert.admin for alert in await self._store.held_alerts()}
        for admin in [a for a in self._holding if a.platform in self._notifiers]:
            self._tasks.spawn(self._release(admin))

    def seen(self, user: UserKey) -> None:
        """``user`` wrote to the bot: if they are an admin with alerts kept, send them now."""
        if user in self._holding and user.platform in self._notifiers:
            self._tasks.spawn(self._release(user))

    async def held_alerts(self) -> list[HeldAlert]:
        return await self._store.held_alerts()

    async def _release(self, admin: UserKey) -> None:
        self._holding.discard(admin)
        await self._alert(admin, await self._store.take_alerts(admin))

    async def _alert(self, admin: UserKey, alerts: list[str]) -> None:
        """Give ``admin`` these alerts in order; keep what doesn't go for later."""
        notifier = self._notifiers.get(admin.platform)
        if notifier is None:
            log.info("admin %s: alert kept until the %s front end attaches", admin, admin.platform)
            await self._keep(admin, alerts)
            if admin.platform in self._notifiers:  # it attached while the store wrote
                await self._release(admin)
            return
        language = await self.readers.of(admin)
        for sent, text in enumerate(alerts):
            try:
                with reading(language):
                    await notifier.admin_alert(admin.user_id, text)
            except Exception as exc:
                log.warning(
                    "admin %s can't be alerted now (%s): kept until they next write to the bot",
                    admin,
                    exc,
                )
                await self._keep(admin, alerts[sent:])
                self._recorder.alert_undelivered(admin.platform)  # kept, and counted
                return

    async def _keep(self, admin: UserKey, alerts: list[str]) -> None:
        try:
            for text in alerts:
                await self._store.hold_alert(admin, text)
        except Exception as exc:  # the store is failing too: its own alert is under way
            log.error("admin alert for %s lost, the store refused it: %s", admin, exc)
            return
        self._holding.add(admin)

    def _store_trouble(self, exc: Exception) -> None:
        """Tell the admins, once until a write succeeds again, that the store refuses writes."""
        if not self._store_alerted:
            self._store_alerted = True
            log.error("the store refuses writes: %s", exc)
            self.tell_admins(AdminEvent("store", None, admin_texts.ADMIN_REASONS["store"]))
