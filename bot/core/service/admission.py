"""Admission: who may ask (and press, and cancel) where, the caps and quotas, the words and
options, and the reference images — from a prompt or a press to a stored, queued job.

What the operator's admins and a server's admins set (bans, blocked words, quotas, the
server's switch, channels, default model, limit and buttons) is read from the store for each
request, so that a change holds at once, in every process.

Every check that needs no image runs first, holding the request's place in the user's queue and
day (a ``Reservation``), so that a refused request costs no download and concurrent requests
can't slip past a cap between a check and the stored job. Then the references are fetched, in
the user's turn, and checked by their content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Sequence

from bot.core import option_texts, texts
from bot.core.buttons import Action, Button
from bot.core.community import ServerSettings
from bot.core.domain import (
    GenerationRequest,
    ImageRef,
    Job,
    JobState,
    Lineage,
    Request,
    ResultImage,
    Submitted,
)
from bot.core.errors import InvalidInput
from bot.core.i18n import reader
from bot.core.models_table import ModelTable
from bot.core.options import Options, split_flags
from bot.core.people import Identity, Owner, UserKey
from bot.core.policy import Access, Defaults, Limits
from bot.core.ports import CapReached, Store
from bot.core.scheduler import Entry, Scheduler
from bot.core.service.accounts import Accounts
from bot.core.service.api import Fetch
from bot.core.service.characters import Characters
from bot.core.service.downloads import Downloads, Reservation
from bot.core.service.fairness import Once, Slots, Throttle
from bot.core.service.history import History
from bot.core.service.identities import Identities
from bot.core.service.presses import Presses, enlarges
from bot.core.service.prompts import Prompts
from bot.core.service.quotas import Held, Quotas, handing_over
from bot.core.service.roads import Roads
from bot.core.service.rules import Rules, today
from bot.core.service.runner import Runner

log = logging.getLogger(__name__)

# The same user's second press of the same 🎲 within this many seconds is a double tap (a second
# upscale press is refused by the store, which knows the first once it is queued).
DOUBLE_TAP_SECONDS = 5.0
# Prompts in their checks at once, and jobs being stored at once; more wait their turn. A
# user's prompts take two of the places at most: a check can wait for the upstream (a character
# made again on another account), and one user's flood of those must not hold every place.
AT_ONCE = 8
CHECKED_PER_USER = 2


class Admission:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        *,
        models: ModelTable,
        limits: Limits,
        defaults: Defaults,
        access: Access,
        clock: Callable[[], float],
        rng: random.Random,
        accounts: Accounts,
        runner: Runner,
        characters: Characters,
        roads: Roads,
        rules: Rules,
        shared: bool = False,
        identities: Identities,
        history: History,
    ) -> None:
        self._roads = roads
        self._store = store
        self._identities = identities
        self._history = history
        self._scheduler = scheduler
        self._models = models
        self._accounts = accounts
        self._runner = runner
        self._rules = rules
        self._quotas = Quotas(store, scheduler, limits, access, rules, shared=shared)
        self._press_rate = Throttle(limits.press_burst, limits.press_interval_seconds, clock)
        self._once = Once(DOUBLE_TAP_SECONDS, clock)
        self.downloads = Downloads(limits)
        self._presses = Presses(store, characters, models, defaults=defaults, rng=rng)
        self._prompts = Prompts(
            store, characters, roads, models, defaults=defaults, limits=limits, rng=rng
        )
        # A burst of a thousand prompts would otherwise queue a thousand checks' reads and
        # writes on the store's threads, and the running jobs' own (each before its upstream
        # call, and before its slot is given back) would wait behind them all. Two turnstiles:
        # a checked prompt's job is stored without waiting behind the prompts still to check.
        self._checking = Slots(per_key=CHECKED_PER_USER, overall=AT_ONCE)
        self._storing = asyncio.Semaphore(AT_ONCE)

    @contextlib.asynccontextmanager
    async def admit(
        self,
        owner: Owner,
        text: str,
        options: Options | None = None,
        *,
        references: int = 0,
        refs: Sequence[ImageRef] = (),
        like: GenerationRequest | None = None,
        fetch: Fetch | None = None,
        parent: Lineage | None = None,
    ) -> AsyncIterator[Reservation]:
        """Check a prompt by all but its images (``references`` of them, ``refs`` included),
        before anything is downloaded; raises ``InvalidInput`` with the sentence to show. What
        the prompt leaves open comes from ``like`` (the result Edit was pressed on: ``parent``,
        whose characters it keeps), then the person's settings. ``fetch`` gets the pictures if
        the front end's ``submit`` brings none."""
        async with contextlib.AsyncExitStack() as holding:
            async with self._checking.hold(owner.user):
                server = await self._rules.check(owner)
                text = reader().render(text)  # an example tapped is a prompt in its reader's words
                prompt, inline = split_flags(text)
                await self._rules.check_words(prompt)
                asked = inline.overridden_by(options) if options else inline
                person = await self._identities.of(owner.user)
                held = await holding.enter_async_context(self._quotas.reservation(person.key))
                request, uploads = await self._prompts.request(
                    owner, person, server, prompt, asked, references, refs, like
                )
                reserved = await self._reserve(
                    owner, person, held, server, request, uploads, fetch, parent
                )
            yield reserved

    @contextlib.asynccontextmanager
    async def admit_press(
        self, owner: Owner, button: Button, prompt: str | None = None
    ) -> AsyncIterator[Reservation]:
        """Check a press of U, 🎲 or R (with the new ``prompt``: the form R opened) like
        ``admit``. Without a prompt it is a click, and counts towards the presser's rate.

        A double tap of 🎲 or U starts one job; a U whose upscale exists already raises
        ``AlreadyMade`` (a done one is shown again, never paid twice)."""
        if prompt is None:
            self.throttle_press(owner.user)
        job, image = await self._pressed(owner, button)
        assert isinstance(job.request, GenerationRequest)  # _pressed refuses upscales
        if image is not None and button.action is Action.REUSE:
            # A new prompt on that image keeps its model, shape and count unless it says others.
            _, inline = split_flags(prompt or "")
            keep = None if inline.model else Options(model=job.request.model)
            like = job.request
            parent = Lineage(job.id, Action.REUSE, image.index)
            if image.ref.media_id:  # its road holds it: it goes there by its handle
                reuse = self.admit(
                    owner,
                    prompt or "",
                    keep,
                    references=1,
                    refs=[image.ref],
                    like=like,
                    parent=parent,
                )
            elif image.data is not None:  # a picture we kept, as if the user sent it
                kept = [image.data]
                reuse = self.admit(
                    owner,
                    prompt or "",
                    keep,
                    references=1,
                    like=like,
                    fetch=lambda: _ready(kept),
                    parent=parent,
                )
            else:
                raise InvalidInput(texts.JOB_NOT_FOUND)
            async with reuse as ticket:
                yield ticket
            return
        server = await self._rules.check(owner)
        person = await self._identities.of(owner.user)
        request: Request
        if image is None:
            await self._rules.check_words(job.request.prompt)
            request = await self._presses.again(owner, job.request)
            parent = Lineage(job.id, Action.REROLL)
            once: tuple[object, ...] = (owner.user, job.id)
        else:  # anyone's: an upscale is made once; the store knows it once it is queued
            request = await self._presses.upscale(person, job, job.request, image)
            once = (job.id, *enlarges(request, image.index))
            await self._presses.check_not_made(*once)
            parent = Lineage(job.id, Action.UPSCALE, image.index)
        with self._once.hold(once, linger=image is None):
            async with self._quotas.reservation(person.key) as held:
                yield await self._reserve(owner, person, held, server, request, parent=parent)

    async def _reserve(
        self,
        owner: Owner,
        person: Identity,
        held: Held,
        server: ServerSettings,
        request: Request,
        uploads: int = 0,
        fetch: Fetch | None = None,
        parent: Lineage | None = None,
    ) -> Reservation:
        """A checked request's last checks, then its ``Reservation``: a unit will run it (refused
        now rather than after the user's downloads), and its images fit the day."""
        routes = self._roads.routes(request, self._models)
        entry = Entry(job_id=0, user=person.key, pinned=request.pinned_account, routes=routes)
        if stranded := self._accounts.stranded(entry, waited=math.inf):
            raise InvalidInput(stranded.message)
        await self._quotas.reserve_images(owner, person, held, request.count, server)
        return Reservation(
            self.downloads,
            handing_over(self.enqueue, held),
            owner,
            person.key,
            request,
            uploads=uploads,
            fetch=fetch,
            parent=parent,
        )

    async def pressed_job(self, owner: Owner, button: Button) -> Job:
        """The result a click on ``button`` acts on, if ``owner`` may press it there; else the
        refusal an unknown button gets."""
        self.throttle_press(owner.user)
        job, _ = await self._pressed(owner, button)
        return job

    def throttle_press(self, user: UserKey) -> None:
        """Count a press against ``user``'s rate, or refuse it: one member's hammering must not
        fill a group with answers."""
        if not self._press_rate.allow(user):
            raise InvalidInput(texts.SLOW_DOWN)

    async def _pressed(self, owner: Owner, button: Button) -> tuple[Job, ResultImage | None]:
        """The finished job a result button acts on, and its image (none for 🎲)."""
        job = await self._history.find(button.job)
        # A pruned job's prompt and images are gone: 🎲 would send an empty prompt upstream.
        if job is None or job.state is not JobState.DONE or job.is_upscale or job.pruned:
            raise InvalidInput(texts.JOB_NOT_FOUND)
        if not await self._history.may_press(owner, job):
            raise InvalidInput(texts.JOB_NOT_FOUND)  # exactly as if there were no such job
        await self._rules.check_press(owner, job)
        if button.action is Action.REROLL:
            return job, None
        images = await self._store.results(job.id)
        image = next((i for i in images if i.index == button.index), None)
        if image is None:
            raise InvalidInput(texts.JOB_NOT_FOUND)
        return job, image

    async def check_allowed(self, owner: Owner) -> None:
        """Refuse whom the operator (or this server's admins) did not open the bot to, or
        banned."""
        await self._rules.check(owner)

    async def enqueue(
        self,
        owner: Owner,
        person: UserKey,
        request: Request,
        blobs: dict[str, bytes],
        parent: Lineage | None,
        until_told: bool = False,
    ) -> Submitted:
        """Store and queue the job; caps count ``person`` (the owner's linked accounts).
        ``until_told``: it waits in the queue for ``Runner.told``."""
        async with self._storing:
            entry = await self._runner.entry(0, person, request)
            if until_told:
                entry.not_before = math.inf
            if stranded := self._accounts.stranded(entry, waited=math.inf):
                raise InvalidInput(stranded.message)  # it changed while the images were fetched
            # The caps are checked again where the job is stored, together: a count read
            # before another submission of the same user was stored (here or in another
            # process) is stale.
            caps = await self._quotas.caps(owner.user)
            try:
                job = await self._store.add_job(
                    owner,
                    request,
                    blobs,
                    day=today(),
                    caps=caps,
                    parent=parent,
                    held=until_told,
                )
            except CapReached as exc:  # another submission took the last place meanwhile
                raise InvalidInput(
                    option_texts.queue_full(caps.queued)
                    if exc.queued
                    else option_texts.daily_quota(caps.images or 0)
                ) from None
            # Nothing awaits between storing the job and queueing it: no job is stored unqueued.
            entry.job_id = job.id
            position = self._runner.queue(entry, job)
            answer_in = self._runner.answer_in(entry, job, position)
        # The public id is what a user quotes to the operator: this line leads from it to the job's.
        log.info(
            "job %d (#%s) queued for %s (%s)",
            job.id,
            job.public_id,
            owner.user,
            type(request).__name__,
        )
        return Submitted(
            job.id,
            position,
            self._scheduler.paused,
            job.public_id,
            images=request.count,
            answer_in=answer_in,
        )


async def _ready(images: Sequence[bytes]) -> Sequence[bytes]:
    return images
