"""How an attempt that raised ends (``_ENDINGS``, exception → what follows): the next free
slot, a retry later, another model, a fresh upload, a unit (or a whole road) taken out and the
job moved to the next road, or a final answer. ``runner`` runs the attempt and hands its
exception here.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from bot.core import texts
from bot.core.domain import GenerationRequest, Job
from bot.core.models_table import ModelTable
from bot.core.monitoring import Outcome
from bot.core.policy import Tuning
from bot.core.ports import Store
from bot.core.scheduler import Scheduler, Slot
from bot.core.service.accounts import Accounts
from bot.core.service.delivery import Delivery
from bot.core.service.progress import Progress
from bot.core.service.references import ReferenceFailed, References
from bot.core.service.retries import Tries, moderation_fallback, over_capacity
from bot.core.service.roads import Roads
from bot.core.upstream import (
    ContentPolicyError,
    InvalidRequestError,
    MediaRefused,
    ModerationError,
    OperatorError,
    ReferenceOwnershipError,
    RetryableError,
    Throttled,
)

log = logging.getLogger(__name__)


class Endings:
    """Acts on an attempt's exception for the runner, with the tries each job has had so far
    (``tries``: shared with the runner, which forgets a job's when it ends another way)."""

    def __init__(
        self,
        store: Store,
        roads: Roads,
        scheduler: Scheduler,
        *,
        models: ModelTable,
        tuning: Tuning,
        clock: Callable[[], float],
        rng: random.Random,
        accounts: Accounts,
        delivery: Delivery,
        progress: Progress,
        references: References,
        wake: asyncio.Event,
        tries: dict[int, Tries],
        sweep_stranded: Callable[[], Awaitable[None]],
    ) -> None:
        self._store = store
        self._roads = roads
        self._scheduler = scheduler
        self._models = models
        self._tuning = tuning
        self._clock = clock
        self._rng = rng
        self._accounts = accounts
        self._delivery = delivery
        self._progress = progress
        self._references = references
        self._wake = wake
        self._tries = tries
        self._sweep_stranded = sweep_stranded

    async def end(self, job_id: int, job: Job | None, exc: Exception, slot: Slot) -> None:
        """Act on an attempt that raised ``exc``: the first row of ``_ENDINGS`` it matches."""
        after = next((after for kind, after in _ENDINGS if isinstance(exc, kind)), None)
        if job is not None and after is not None:
            await after(self, job, slot, exc)
            return
        log.error("job %d failed unexpectedly", job_id, exc_info=exc)
        self._tries.pop(job_id, None)
        await self._delivery.fail(job_id, texts.INTERNAL)

    async def _requeue(self, slot: Slot) -> None:
        await self._store.requeue(slot.entry.job_id)
        self._scheduler.add(slot.entry, front=True)
        self._progress.requeued(slot.entry.job_id)
        self._wake.set()

    async def _fail(self, job: Job, message: str, outcome: Outcome = Outcome.FAILED) -> None:
        self._tries.pop(job.id, None)
        await self._delivery.fail(job.id, message, outcome)

    # The rows of _ENDINGS.

    async def _retry(self, job: Job, slot: Slot, exc: RetryableError) -> None:
        """Over capacity: the next slot that frees (or a short pause); any other passing fault
        (a timeout, the network): a retry after a backoff (``retries``)."""
        now = self._clock()
        wait = self._tries.setdefault(job.id, Tries()).next_wait(exc, now, self._tuning, self._rng)
        if wait is None:
            log.warning("job %d gave up retrying: %s", job.id, exc)
            await self._fail(job, texts.BUSY if isinstance(exc, Throttled) else texts.UNAVAILABLE)
            return
        capacity = over_capacity(exc)
        log.info(
            "job %d: %s on %s, retry %s%.1fs", job.id, type(exc).__name__, slot.account,
            "in the next free slot or after " if capacity else "in ", wait,
        )  # fmt: skip
        await self._store.requeue(job.id)
        if capacity:
            self._scheduler.retry(slot, pause_until=now + wait)
        else:
            slot.entry.not_before = now + wait
            self._scheduler.add(slot.entry, front=True)
        self._progress.requeued(job.id)
        self._wake.set()

    async def _after_moderation(self, job: Job, slot: Slot, exc: ModerationError) -> None:
        tries = self._tries.setdefault(job.id, Tries())
        tries.moderated += 1
        request = job.request
        if tries.moderated == 1:
            # Moderation decisions vary between attempts: the same request often passes.
            await self._requeue(slot)
            return
        switched = (
            None
            if tries.switched_model
            else moderation_fallback(request, self._models, self._tuning, self._roads)
        )
        if switched is not None:
            tries.switched_model = True
            log.info("job %d moderated twice, trying %s", job.id, switched.model)
            await self._store.update_request(job.id, switched)
            await self._requeue(slot)
            return
        await self._fail(job, texts.moderated(texts.naming(job.owner.platform)), Outcome.MODERATED)

    async def _after_refusal(
        self, job: Job, slot: Slot, exc: ReferenceOwnershipError | InvalidRequestError
    ) -> None:
        tries = self._tries.setdefault(job.id, Tries())
        if tries.used_cache and not tries.reuploaded:
            # The upstream may have forgotten an asset we cached the id of (or moved it to
            # another owner): refused with our cached ids, the request earns one fresh upload.
            tries.reuploaded = True
            uploads = job.request.uploads if isinstance(job.request, GenerationRequest) else ()
            await self._references.forget(slot.account, uploads)
            await self._requeue(slot)
            return
        if isinstance(exc, ReferenceOwnershipError):
            await self._fail(job, texts.REFERENCE_NOT_USABLE, Outcome.REFUSED)
        else:
            await self._fail(job, texts.rejected(exc.detail), Outcome.REFUSED)

    async def _after_operator_error(self, job: Job, slot: Slot, exc: OperatorError) -> None:
        self._accounts.take_out(exc, slot.account)
        # Another unit, or the next road, takes the job (not one pinned to this unit).
        if self._scheduler.serves(slot.entry):
            await self._requeue(slot)
        else:
            await self._fail(job, texts.OPERATOR, Outcome.OPERATOR)
        await self._sweep_stranded()

    async def _after_media_refused(self, job: Job, slot: Slot, exc: MediaRefused) -> None:
        log.warning("job %d: upstream media refused: %s", job.id, exc.detail)
        await self._fail(job, texts.MEDIA_REFUSED)

    async def _after_content_policy(self, job: Job, slot: Slot, exc: ContentPolicyError) -> None:
        await self._fail(job, texts.CONTENT_POLICY, Outcome.REFUSED)

    async def _after_reference_failed(self, job: Job, slot: Slot, exc: ReferenceFailed) -> None:
        await self._fail(job, exc.message, Outcome.REFUSED)


_After = Callable[[Endings, Job, Slot, Any], Awaitable[None]]

# How an attempt that raised ends: the first row whose exception type matches decides (the
# tree is in ``bot.core.upstream``; a subclass stands before its base). Anything else is a bug:
# logged, and the job ends with ``texts.INTERNAL``.
_ENDINGS: tuple[tuple[type[Exception], _After], ...] = (
    (RetryableError, Endings._retry),
    (ModerationError, Endings._after_moderation),
    (ContentPolicyError, Endings._after_content_policy),
    (ReferenceOwnershipError, Endings._after_refusal),
    (InvalidRequestError, Endings._after_refusal),
    (MediaRefused, Endings._after_media_refused),
    (OperatorError, Endings._after_operator_error),
    (ReferenceFailed, Endings._after_reference_failed),
)
