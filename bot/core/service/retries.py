"""What a job's retries have tried so far, how long the next one waits, and which model a
moderated request tries next.

A refusal for capacity (429, 503) measures the account, it isn't a fault: the job takes the
next slot that frees (``Scheduler.retry``), and only when none does it pauses, ``FIRST_PAUSE``
doubling with each refusal in a row, up to the upstream's advice ("wait 5–10 s": twice
``retry_min_seconds``). Any other passing fault (a timeout, the network) waits a full-jitter
backoff from ``retry_min_seconds`` to ``retry_max_seconds``. Never shorter than the upstream's
own hint; never past the job's deadline.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from bot.core.domain import GenerationRequest, Request
from bot.core.models_table import ModelTable
from bot.core.policy import Tuning
from bot.core.service.roads import Roads
from bot.core.upstream import RetryableError, Throttled

FIRST_PAUSE = 1.0


def moderation_fallback(
    request: Request, models: ModelTable, tuning: Tuning, roads: Roads
) -> GenerationRequest | None:
    """The request a request moderated twice tries next: with the model its model falls back
    to, if some road serves it so as it is (its references, characters, aspect ratio)."""
    if not tuning.moderation_fallback or not isinstance(request, GenerationRequest):
        return None
    target = models.fallback(request.model)
    if target is None:
        return None
    switched = replace(request, model=target.id)
    # No road can serve the request with that model (and its characters): keep it.
    return switched if roads.routes(switched, models) else None


def over_capacity(exc: RetryableError) -> bool:
    """A refusal that measures the account's capacity (429, 503), not a fault."""
    return isinstance(exc, Throttled) or exc.status == 503


@dataclass
class Tries:
    """One job's tries (in memory: a restart starts afresh)."""

    retries: int = 0
    first_retry_at: float = 0.0
    moderated: int = 0
    switched_model: bool = False
    used_cache: bool = False
    reuploaded: bool = False

    def next_wait(
        self, exc: RetryableError, now: float, tuning: Tuning, rng: random.Random
    ) -> float | None:
        """Count a retry after ``exc``: seconds until it, or None if that would be past the
        job's deadline (or waiting as long as the upstream asks would be)."""
        if not self.retries:
            self.first_retry_at = now
        self.retries += 1
        low = tuning.retry_min_seconds
        if over_capacity(exc):
            pause = min(2 * low, FIRST_PAUSE * 2 ** (self.retries - 1))
            wait = rng.uniform(pause / 2, pause)
        else:
            wait = rng.uniform(low, max(low, min(tuning.retry_max_seconds, low * 2**self.retries)))
        wait = max(exc.retry_after or 0.0, wait)
        if now + wait - self.first_retry_at > tuning.job_deadline_seconds:
            return None
        return wait
