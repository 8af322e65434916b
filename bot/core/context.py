"""What the code running now is working on, for the log lines it writes.

The runner sets ``current_job`` around a job's work; ``bot.logs`` adds it to every record written
meanwhile (as ``job`` in JSON logs). A context variable, so each task sees its own job.
"""

from __future__ import annotations

from contextvars import ContextVar

current_job: ContextVar[int | None] = ContextVar("current_job", default=None)
