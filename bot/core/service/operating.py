"""What the service answers the operator's admins, a server's admins and monitoring
(``bot.core.monitoring``: ``health`` and ``snapshot``), and what it says of open jobs from
memory (``statuses``): a part of ``Service``, kept apart.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from bot.core import admin_texts
from bot.core.alerts import HeldAlert
from bot.core.monitoring import Health, Snapshot
from bot.core.people import Owner, UserKey
from bot.core.ports import Store
from bot.core.presenters import JobStatus, ServerPanel
from bot.core.scheduler import Scheduler
from bot.core.service.accounts import Accounts
from bot.core.service.admin import Admin, Answer
from bot.core.service.delivery import Delivery
from bot.core.service.progress import Progress
from bot.core.service.servers import Servers


class Operating:
    """Mixed into ``Service``, which builds these parts."""

    store: Store
    scheduler: Scheduler
    _accounts: Accounts
    _admin: Admin
    _delivery: Delivery
    _progress: Progress
    _servers: Servers

    async def admin(self, actor: UserKey, line: str) -> Answer:
        return await self._admin.run(actor, line)

    async def server_panel(self, owner: Owner) -> ServerPanel:
        return await self._servers.panel(owner)

    async def update_server(self, owner: Owner, **changes: Any) -> ServerPanel:
        return await self._servers.update(owner, **changes)

    async def health(self) -> Health:
        """``HealthSource``: whether the store takes a write and some road can serve."""
        reasons = []
        try:
            await self.store.probe_write()
            writable = True
        except Exception as exc:  # the store's own sentence says what to do
            writable = False
            reasons.append(str(exc))
        serving = self._accounts.serving
        reasons += [
            f"{problem} (account {account})" if account else problem
            for account, problem in self._accounts.problems()
        ]
        if not serving and not self._accounts.problems():
            reasons.append(
                admin_texts.NOTHING_SERVES if self._accounts.known else admin_texts.STARTING
            )
        return Health(writable, serving, tuple(reasons))

    def snapshot(self) -> Snapshot:
        """``SnapshotSource``: the queue, the accounts and the platforms, from memory."""
        return Snapshot(
            queued=len(self.scheduler.entries()),
            running=self.scheduler.in_flight,
            accounts=self._accounts.states(),
            platforms=self._delivery.platforms(),
        )

    def statuses(self, job_ids: Collection[int]) -> dict[int, JobStatus]:
        return self._progress.now(job_ids)

    async def undelivered_alerts(self) -> list[HeldAlert]:
        return await self._delivery.held_alerts()
