"""``RecordingNotifier``: a hand-written Notifier that remembers what the service told it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.core.domain import Job, JobResult
from bot.core.i18n import reader
from bot.core.ports import DeliveryError, Posted
from bot.core.presenters import JobStatus


@dataclass
class RecordingNotifier:
    """Records every report; ``fail_deliveries`` makes the next N final answers raise."""

    progress: list[tuple[int, JobStatus]] = field(default_factory=list)
    finished: list[JobResult] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    ended_elsewhere: list[int] = field(default_factory=list)  # its end told by another process
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (admin id, text)
    # The language each report was made in (``i18n.reader()``), by report: what a platform's
    # notifier would render it in.
    languages: list[tuple[str, str]] = field(default_factory=list)  # (report, language code)
    # The images it "posted", by the reference it gave the service (as a platform holds them).
    held: dict[str, bytes] = field(default_factory=dict)
    fail_deliveries: int = 0
    permanent: bool = False
    unreachable: set[str] = field(default_factory=set)  # admins whose alerts fail
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def job_progress(self, job: Job, status: JobStatus) -> None:
        self.languages.append(("progress", reader().code))
        self.progress.append((job.id, status))
        await self._notify()

    async def job_finished(self, result: JobResult) -> Posted:
        await self._maybe_fail()
        self.languages.append(("finished", reader().code))
        self.finished.append(result)
        posted = {}
        for image in result.images:
            ref = f"held:{result.job.id}:{image.index}"
            self.held[ref] = image.data or b""
            posted[image.index] = ref
        await self._notify()
        return posted

    async def job_failed(self, job: Job, message: str) -> None:
        await self._maybe_fail()
        self.languages.append(("failed", reader().code))
        self.failed.append((job.id, message))
        await self._notify()

    async def job_ended_elsewhere(self, job: Job) -> None:
        self.ended_elsewhere.append(job.id)
        await self._notify()

    async def fetch_image(self, ref: str) -> bytes:
        if ref not in self.held:
            raise DeliveryError(f"nothing held at {ref}", permanent=True)
        return self.held[ref]

    async def admin_alert(self, admin_id: str, text: str) -> None:
        if admin_id in self.unreachable:
            raise DeliveryError(f"admin {admin_id} can't be reached", permanent=True)
        self.languages.append((f"alert {admin_id}", reader().code))
        self.alerts.append((admin_id, text))
        await self._notify()

    def answers(self, job_id: int) -> int:
        return sum(r.job.id == job_id for r in self.finished) + sum(
            j == job_id for j, _ in self.failed
        )

    def result(self, job_id: int) -> JobResult:
        return next(r for r in self.finished if r.job.id == job_id)

    def failure(self, job_id: int) -> str:
        return next(m for j, m in self.failed if j == job_id)

    async def wait_answered(self, *job_ids: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: all(self.answers(j) for j in job_ids))

    async def wait_ended_elsewhere(self, job_id: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: job_id in self.ended_elsewhere)

    async def wait_alerts(self, count: int = 1, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.alerts) >= count)

    async def _maybe_fail(self) -> None:
        if self.fail_deliveries:
            self.fail_deliveries -= 1
            raise DeliveryError("platform says no", permanent=self.permanent)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
