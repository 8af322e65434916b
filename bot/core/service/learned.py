"""The concurrency each Flow account was found to take, kept in the store so that a restart
starts from it instead of ramping up from the floor again (issue 11)."""

from __future__ import annotations

import asyncio
import logging

from bot.core.ports import Store
from bot.core.scheduler import Scheduler
from bot.core.service.tasks import Tasks

log = logging.getLogger(__name__)

# The learned limits are written when one changes, at most this often (the last change of a
# burst is written at the end of the wait).
LIMITS_EVERY = 10.0


class LearnedLimits:
    def __init__(self, store: Store, scheduler: Scheduler, tasks: Tasks) -> None:
        self._store = store
        self._scheduler = scheduler
        self._tasks = tasks
        self._learned: dict[str, float] = {}  # limits a previous run found, for accounts to come
        self._saved: dict[str, int] = {}
        self._saving = False

    async def recall(self) -> None:
        """Read the limits a previous run learned; each account starts from its own."""
        self._learned = await self._store.account_limits()
        self._saved = {email: int(limit) for email, limit in self._learned.items()}
        self.resume()

    def resume(self) -> None:
        """Accounts the roads named since: each starts from the limit it was found to take."""
        for email, account in self._scheduler.accounts.items():
            if (limit := self._learned.pop(email, None)) is not None:
                account.resume(limit)

    def changed(self) -> None:
        """An account's limit may have moved: write them all if one did, at most every
        ``LIMITS_EVERY`` seconds."""
        if not self._saving and self._current() != self._saved:
            self._saving = True
            self._tasks.spawn(self._save(wait=LIMITS_EVERY))

    async def save(self) -> None:
        """Write the limits now if they changed (on the way out)."""
        if self._current() != self._saved:
            await self._save(wait=0.0)

    async def _save(self, *, wait: float) -> None:
        written = False
        try:
            await asyncio.sleep(wait)
            current = self._current()
            await self._store.save_account_limits(
                {e: a.limit for e, a in self._scheduler.accounts.items() if e in current}
            )
            self._saved, written = current, True
        except Exception as exc:  # the limits are an optimisation: a failed write costs a ramp
            log.warning("could not save the accounts' learned limits: %s", exc)
        finally:
            self._saving = False
        if written:
            self.changed()  # a limit that moved while this wrote is written next

    def _current(self) -> dict[str, int]:
        # Whole slots: the fractions of the careful growth after a throttle are not worth a write.
        return {e: int(a.limit) for e, a in self._scheduler.accounts.items()}
