"""What the service answers a prompt or a button (asking for a job, cancelling one): a part of
``Service``, kept apart, as ``Operating`` is."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from bot.core import texts
from bot.core.buttons import Button
from bot.core.domain import ImageRef, Job, Submitted
from bot.core.errors import InvalidInput
from bot.core.options import Options
from bot.core.people import Owner, UserKey
from bot.core.ports import Store
from bot.core.service.admission import Admission
from bot.core.service.downloads import Reservation
from bot.core.service.history import History, told_where_asked
from bot.core.service.runner import Runner


class Asking:
    """Mixed into ``Service``, which builds these parts."""

    store: Store
    _admission: Admission
    _history: History
    _runner: Runner

    def admit(
        self,
        owner: Owner,
        text: str,
        options: Options | None = None,
        *,
        references: int = 0,
        refs: Sequence[ImageRef] = (),
    ) -> contextlib.AbstractAsyncContextManager[Reservation]:
        return self._admission.admit(owner, text, options, references=references, refs=refs)

    def admit_press(
        self, owner: Owner, button: Button, prompt: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[Reservation]:
        return self._admission.admit_press(owner, button, prompt)

    async def submit(
        self,
        owner: Owner,
        text: str,
        options: Options | None = None,
        images: Sequence[bytes] = (),
        refs: Sequence[ImageRef] = (),
    ) -> Submitted:
        """Check, store and queue a prompt; raises ``InvalidInput`` with the sentence to show."""
        references = len(images) + len(refs)
        async with self.admit(owner, text, options, references=references, refs=refs) as ticket:
            return await ticket.submit(fetch=lambda: _ready(images))

    async def press(self, owner: Owner, button: Button, prompt: str | None = None) -> Submitted:
        async with self.admit_press(owner, button, prompt) as ticket:
            return await ticket.submit()

    async def pressed_job(self, owner: Owner, button: Button) -> Job:
        return await self._admission.pressed_job(owner, button)

    def throttle_press(self, user: UserKey) -> None:
        self._admission.throttle_press(user)

    async def press_cancel(self, owner: Owner, button: Button) -> str:
        self._admission.throttle_press(owner.user)  # a cancel button counts like any press
        job = await self._history.cancel_press(owner, button)
        return await self._runner.cancel(job.id, told_where_asked(owner.user, job))

    async def cancel(self, user: UserKey, job_id: int) -> str:
        job = await self.store.get_job(job_id)
        if job is None:
            raise InvalidInput(texts.JOB_NOT_FOUND)
        await self._history.check_cancel(user, job)
        return await self._runner.cancel(job_id, told_where_asked(user, job))

    def told(self, job_id: int) -> None:
        self._runner.told(job_id)


async def _ready(images: Sequence[bytes]) -> Sequence[bytes]:
    return images
