"""A user's place in the queue and their day, held while a request is checked: so that
concurrent requests can't slip past the queue cap or a daily quota (the person's, across their
linked accounts, and a server's per member) between a check and the stored job; and the caps
the store checks again where processes share it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bot.core import option_texts, rules_texts
from bot.core.community import ServerSettings
from bot.core.domain import JobState, Submitted
from bot.core.errors import InvalidInput
from bot.core.people import Identity, Owner, UserKey
from bot.core.policy import Access, Limits
from bot.core.ports import Caps, Store
from bot.core.scheduler import Scheduler
from bot.core.service.downloads import Enqueue
from bot.core.service.rules import Rules, today


@dataclass
class Held:
    """What a user's submissions still being checked hold, so that concurrent ones can't slip
    past the queue cap or the daily quota between a check and the stored job."""

    jobs: int = 0
    images: int = 0
    stored: bool = False  # one submission's: its job is stored, its images count in the store
    # A person's total: the images handed over to the store so far. A check reads the store,
    # awaiting, and a submission stored meanwhile lets go of its hold: the check counts those
    # too (they may be missing from what it read), else both pass the quota.
    handed_over: int = 0


class Quotas:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        limits: Limits,
        access: Access,
        rules: Rules,
        *,
        shared: bool,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._limits = limits
        self._access = access
        self._rules = rules
        self._shared = shared  # other processes store jobs too (``leadership``)
        self._held: dict[UserKey, Held] = {}

    @contextlib.asynccontextmanager
    async def reservation(self, user: UserKey) -> AsyncIterator[Held]:
        """Hold a place in the user's queue from the first check until the job is queued."""
        cap = self._limits.queued_per_user
        if self._shared:  # the queue is the leader's, maybe another process's: ask the store
            # for the jobs of every account the person linked (each job keeps its own).
            accounts = (await self._store.identity(user)).users
            jobs = [j for key in accounts for j in await self._store.user_jobs(key)]
            waiting = sum(j.state is JobState.QUEUED for j in jobs)
        else:
            waiting = self._scheduler.waiting(user)
        total = self._held.setdefault(user, Held())
        if waiting + total.jobs >= cap:
            raise InvalidInput(option_texts.queue_full(cap))
        mine = Held(jobs=1)
        total.jobs += 1
        try:
            yield mine
        finally:
            total.jobs -= mine.jobs
            total.images -= mine.images
            if mine.stored:
                total.handed_over += mine.images
            if not total.jobs:
                del self._held[user]

    async def caps(self, user: UserKey) -> Caps:
        daily = await self._rules.daily_limit(user)
        return Caps(self._limits.queued_per_user, daily or None)

    async def reserve_images(
        self, owner: Owner, person: Identity, held: Held, n: int, server: ServerSettings
    ) -> None:
        """Count ``n`` images against the person's day (all their accounts) and their day in
        this server, or refuse (admins: no daily limit)."""
        user, day = owner.user, today()
        total = self._held[person.key]
        handed_over = total.handed_over
        daily = await self._rules.daily_limit(user)
        here = server.daily_images if owner.server and not self._access.is_admin(user) else 0
        used = sum([await self._store.images_on(key, day) for key in person.users]) if daily else 0
        used_here = (
            await self._store.images_in(user, owner.server, day) if owner.server and here else 0
        )
        counted = total.images + total.handed_over - handed_over
        # No await between these checks and the reservation: concurrent submissions see it.
        if daily and used + counted + n > daily:
            raise InvalidInput(option_texts.daily_quota(daily))
        if here and used_here + counted + n > here:
            raise InvalidInput(rules_texts.server_quota(here))
        total.images += n
        held.images += n


def handing_over(enqueue: Enqueue, held: Held) -> Enqueue:
    """``enqueue``, noting in ``held`` that its job is stored (its images count there now)."""

    async def stored(*args: Any) -> Submitted:
        submitted = await enqueue(*args)
        held.stored = True
        return submitted

    return stored
