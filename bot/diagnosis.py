"""What is wrong with the upstream as configured, in one sentence that says what to do.

``python -m bot check`` prints these; ``/healthz`` gives them as reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.admin_texts import ADMIN_REASONS, LINK_PAGE
from bot.core.providers import Account, Pooled
from bot.core.upstream import AuthError, PaymentError, UpstreamError


@dataclass(frozen=True)
class AccountsReport:
    """The accounts that can serve now, and what the operator should fix (None: nothing)."""

    serving: tuple[str, ...]
    problem: str | None

    @property
    def summary(self) -> str:
        return self.problem or (
            f"{len(self.serving)} Google account{'s' * (len(self.serving) != 1)} can serve "
            f"({', '.join(self.serving)})"
        )


async def flow_accounts(upstream: Pooled, wanted: Sequence[str] = ()) -> AccountsReport:
    """Ask ``GET /accounts``; ``wanted`` is USEAPI_ACCOUNTS (empty: every account listed)."""
    try:
        listed = await upstream.list_accounts()
    except AuthError:
        return AccountsReport((), ADMIN_REASONS["auth"])
    except PaymentError:
        return AccountsReport(
            (), "useapi.net wants payment (402): renew the useapi.net subscription"
        )
    except UpstreamError as exc:
        return AccountsReport(
            (),
            f"useapi.net did not answer GET /accounts ({exc.status or 'no answer'}: "
            f"{exc.detail}): check USEAPI_BASE_URL and this machine's network",
        )
    return accounts_report(listed, wanted)


def accounts_report(listed: Sequence[Account], wanted: Sequence[str]) -> AccountsReport:
    if not listed:
        return AccountsReport((), ADMIN_REASONS["no_accounts"])
    by_name = {account.email: account for account in listed}
    problems = [
        f"USEAPI_ACCOUNTS names {name}, which useapi.net does not list: link it at "
        f"{LINK_PAGE}, or take it out of USEAPI_ACCOUNTS"
        for name in wanted
        if name not in by_name
    ]
    used = [by_name[name] for name in wanted if name in by_name] if wanted else list(listed)
    sick = [account for account in used if not account.healthy]
    if sick:
        names = ", ".join(f"{account.email} ({account.health})" for account in sick)
        problems.append(
            f"unhealthy at useapi.net: {names}: renew the account's Google session at {LINK_PAGE}"
        )
    serving = tuple(account.email for account in used if account.healthy)
    if not serving and not problems:
        problems.append("USEAPI_ACCOUNTS names no account")
    return AccountsReport(serving, "; ".join(problems) or None)
