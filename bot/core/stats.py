"""What /admin stats shows, as plain data every front end renders its own way: today's jobs,
the queue, the roads' units and what is wrong with them, who asks most, and the admins' last
actions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.core import admin_texts
from bot.core.alerts import HeldAlert
from bot.core.community import AuditEntry
from bot.core.domain import JobState
from bot.core.i18n import _, join
from bot.core.monitoring import AccountState, Outcome
from bot.core.people import UserKey


@dataclass(frozen=True)
class AccountRow:
    name: str
    limit: int  # parallel calls it may have now
    in_flight: int
    serving: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class StatsView:
    """/admin stats: today's jobs, the queue, the accounts, who asks most, and the admins' last
    actions; ``sections`` says it all as (heading, lines), for every front end to lay out."""

    day: str
    states: tuple[tuple[str, int], ...]
    outcomes: tuple[tuple[str, int], ...]
    queued: int
    running: int
    paused: bool
    upstream: tuple[str, ...]  # what takes out the whole upstream now
    accounts: tuple[AccountRow, ...]
    top_users: tuple[tuple[UserKey, int], ...]
    recent: tuple[AuditEntry, ...]
    unsent: tuple[tuple[UserKey, int, float], ...] = ()  # admin, alerts kept, since (oldest)

    @classmethod
    def of(
        cls,
        day: str,
        states: Mapping[str, int],
        outcomes: Mapping[str, int],
        *,
        queued: int,
        running: int,
        paused: bool,
        accounts: Sequence[AccountState],
        problems: Sequence[tuple[str | None, str]],
        top_users: Sequence[tuple[UserKey, int]],
        recent: Sequence[AuditEntry],
        held: Sequence[HeldAlert] = (),
    ) -> StatsView:
        kept: dict[UserKey, list[float]] = {}
        for alert in held:  # oldest first
            kept.setdefault(alert.admin, []).append(alert.since)
        return cls(
            day,
            tuple((state.value, states.get(state.value, 0)) for state in JobState),
            tuple((o.value, outcomes[o.value]) for o in Outcome if outcomes.get(o.value)),
            queued,
            running,
            paused,
            tuple(problem for account, problem in problems if account is None),
            tuple(
                AccountRow(
                    a.name,
                    a.limit,
                    a.in_flight,
                    a.serving,
                    tuple(problem for account, problem in problems if account == a.name),
                )
                for a in accounts
            ),
            tuple(top_users),
            tuple(recent),
            tuple((admin, len(since), since[0]) for admin, since in kept.items()),
        )

    def sections(self) -> list[tuple[str, list[str]]]:
        # The states and outcomes are the store's own words, shown as they are.
        jobs = ", ".join(f"{n} {state}" for state, n in self.states)
        ended = ", ".join(f"{n} {outcome}" for outcome, n in self.outcomes) or _("none yet")
        queue = _("{waiting} waiting, {running} running", waiting=self.queued, running=self.running)
        if self.paused:
            queue = _("{queue} — paused by an operator (/admin resume)", queue=queue)
        accounts = [
            join(
                "; ",
                [
                    _(
                        "{account}: {busy} of {limit} in flight, serving",
                        account=a.name,
                        busy=a.in_flight,
                        limit=a.limit,
                    )
                    if a.serving
                    else _(
                        "{account}: {busy} of {limit} in flight, not serving",
                        account=a.name,
                        busy=a.in_flight,
                        limit=a.limit,
                    ),
                    *a.problems,
                ],
            )
            for a in self.accounts
        ]
        none = _("none")
        return [
            (_("Jobs today ({day}, UTC)", day=self.day), [jobs, _("ended: {ended}", ended=ended)]),
            (_("Queue"), [queue]),
            (_("Upstream"), [*self.upstream, *accounts] or [_("no account known yet")]),
            (
                _("Most images today"),
                [f"{user}: {n}" for user, n in self.top_users] or [_("nobody")],
            ),
            (
                _("Last operator actions"),
                [admin_texts.audit_line(e) for e in self.recent] or [none],
            ),
            (
                _("Alerts not given yet"),
                [admin_texts.unsent(*row) for row in self.unsent] or [none],
            ),
        ]
