"""What the service answers about past jobs (``/show``, ``/history``) and about one person on
several platforms (``/link``): a part of ``Service``, kept apart, as ``Operating`` is."""

from __future__ import annotations

from bot.core import history_texts
from bot.core.buttons import Button
from bot.core.domain import Brought, Job
from bot.core.errors import InvalidInput
from bot.core.history_views import HistoryView
from bot.core.people import Owner, UserKey
from bot.core.ports import Posted
from bot.core.presenters import LinkView
from bot.core.service.admission import Admission
from bot.core.service.delivery import Delivery
from bot.core.service.history import History
from bot.core.service.identities import Identities


class HistoryUse:
    """Mixed into ``Service``, which builds these parts."""

    _admission: Admission
    _delivery: Delivery
    _history: History
    _identities: Identities

    # Past jobs.

    async def show(self, owner: Owner, typed: str) -> Job:
        self._admission.throttle_press(owner.user)  # each costs a post: no faster than presses
        return await self._history.show(owner, typed)

    async def press_show(self, owner: Owner, button: Button) -> Job:
        self._admission.throttle_press(owner.user)
        return await self._history.show(owner, button.job)

    async def bring(self, owner: Owner, job: Job) -> Brought:
        return await self._history.bring(owner, job)

    async def save_posted(self, job_id: int, platform: str, refs: Posted) -> None:
        await self._history.save_posted(job_id, platform, refs)

    async def history(self, user: UserKey, page: int = 0) -> HistoryView:
        return await self._history.page(user, page)

    # One person on several platforms.

    async def link(self, user: UserKey, code: str | None = None) -> LinkView:
        try:
            return await self._identities.link(user, code)
        finally:
            self._delivery.readers.forget()  # whose settings are whose may have changed

    async def unlink(self, user: UserKey) -> str:
        if not await self._identities.unlink(user):
            raise InvalidInput(history_texts.NOT_LINKED)
        self._delivery.readers.forget()
        return history_texts.UNLINKED
