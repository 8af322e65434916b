"""Past jobs: found by the id users see, listed in /history, and brought back by /show with
working buttons, in any chat their owner (on either platform) or an admin asks — and the rule
for where a result's buttons count, which /show widens to every chat a job was shown in.

Result images are not kept once delivered (four of them take megabytes): each platform says
where it posted them (``Posted``: a Telegram file id, a Discord attachment URL), and /show posts
them again from there — by reference on the same platform, fetched through the other platform's
front end otherwise.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from bot.core import history_texts, texts
from bot.core.buttons import Button
from bot.core.domain import Brought, Job, JobResult, JobState
from bot.core.errors import InvalidInput
from bot.core.history_views import HISTORY_PAGE, HistoryView
from bot.core.models_table import ModelTable
from bot.core.people import Owner, UserKey
from bot.core.policy import Access
from bot.core.ports import Posted, Store
from bot.core.public_ids import parse_public_id
from bot.core.service.delivery import Delivery, result_of
from bot.core.service.identities import Identities

log = logging.getLogger(__name__)


def told_where_asked(canceller: UserKey, job: Job) -> str | None:
    """What the job's own platform is told when ``canceller`` cancels it from another one (a
    linked account): it ends there as an answer does. None: the front end that took the cancel
    is the job's own, and says it there."""
    if canceller.platform == job.owner.platform:
        return None
    return history_texts.cancelled_on(canceller.platform)


class History:
    def __init__(
        self,
        store: Store,
        models: ModelTable,
        access: Access,
        identities: Identities,
        delivery: Delivery,
    ) -> None:
        self._store = store
        self._models = models
        self._access = access
        self._identities = identities
        self._delivery = delivery

    async def find(self, ref: str) -> Job | None:
        """The job a button or a user names: its public id, or the number an old button
        carries (a press is authorised all the same: knowing it grants nothing)."""
        if re.fullmatch(r"[1-9][0-9]{0,17}", ref):  # what an old button carries, at most
            return await self._store.get_job(int(ref))
        public_id = parse_public_id(ref)
        return await self._store.job_by_public_id(public_id) if public_id else None

    async def may_press(self, owner: Owner, job: Job) -> bool:
        """A result's buttons work in the chat it was answered in and in every chat /show
        posted it in, for anyone there, and for admins anywhere: a press from elsewhere is a
        forged one."""
        if owner.chat == job.owner.chat or self._access.is_admin(owner.user):
            return True
        return await self._store.shown_in(job.id, owner.chat)

    async def owns(self, user: UserKey, job: Job) -> bool:
        """The job is ``user``'s, from any of the accounts they linked."""
        return job.owner.user in (await self._identities.of(user)).users

    async def check_cancel(self, user: UserKey, job: Job) -> None:
        """Cancelling is the job owner's (from any account they linked), or an admin's."""
        if not (await self.owns(user, job) or self._access.is_admin(user)):
            raise InvalidInput(texts.NOT_YOUR_JOB)

    async def cancel_press(self, owner: Owner, button: Button) -> Job:
        """The job a cancel button names: in a chat where its buttons count the others are told
        it is not theirs (``check_cancel``), elsewhere it is as unknown as any other."""
        job = await self.find(button.job)
        if job is None or not (
            await self.owns(owner.user, job) or await self.may_press(owner, job)
        ):
            raise InvalidInput(texts.JOB_NOT_FOUND)
        await self.check_cancel(owner.user, job)
        return job

    async def show(self, owner: Owner, typed: str) -> Job:
        """The job ``typed`` names, if ``owner`` may see it here: theirs, or one whose buttons
        count here. Anyone else gets exactly the answer an unknown id gets."""
        public_id = parse_public_id(typed)
        job = await self._store.job_by_public_id(public_id) if public_id else None
        if job is None or not (
            await self.owns(owner.user, job) or await self.may_press(owner, job)
        ):
            raise InvalidInput(history_texts.no_such_job(typed))
        return job

    async def bring(self, owner: Owner, job: Job) -> Brought:
        """The job's answer for ``owner``'s chat, which from now on counts its buttons. Images
        that can't be brought (a platform away, a file gone) are left out, and said so."""
        await self._store.add_shown(job.id, owner.chat)
        if job.state is not JobState.DONE or job.pruned:
            return Brought(JobResult(job, ()), missing=False)
        images = await self._store.results(job.id)
        posted = await self._store.posted(job.id)
        brought = []
        for image in images:
            where = posted.get(image.index, {})
            if owner.platform in where:
                brought.append(replace(image, data=None, posted=where[owner.platform]))
            elif image.data is not None:  # not delivered yet: the bytes are still here
                brought.append(image)
            elif (data := await self._delivery.fetch_image(where)) is not None:
                brought.append(replace(image, data=data))
        result = result_of(job, brought, self._models)
        return Brought(result, missing=len(brought) < len(images))

    async def save_posted(self, job_id: int, platform: str, refs: Posted) -> None:
        await self._store.save_posted(job_id, platform, refs)

    async def page(self, user: UserKey, page: int) -> HistoryView:
        """A page of the person's jobs, from every account they linked, newest first."""
        users = (await self._identities.of(user)).users
        page = max(0, page)
        jobs = await self._store.history(users, offset=page * HISTORY_PAGE, limit=HISTORY_PAGE + 1)
        return HistoryView.of(jobs[:HISTORY_PAGE], page=page, more=len(jobs) > HISTORY_PAGE)
