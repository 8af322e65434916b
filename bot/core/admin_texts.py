"""Every sentence an admin reads: the operator's alerts (the same sentences are /healthz's
reasons and ``python -m bot check``'s), and the answers of /admin. What users read is in
``texts``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.community import AuditEntry
from bot.core.domain import (
    AdminEvent,
)
from bot.core.texts import ROAD_NAMES, quote

# For the operator: alerts, /healthz reasons and `python -m bot check`.
SETUP_PAGE = "https://useapi.net/docs/start-here/setup-useapi"
LINK_PAGE = "https://useapi.net/docs/start-here/setup-google-flow"
NOTHING_SERVES = "No provider can serve now: every new request is refused until one can."
STARTING = "the bot is starting: it hasn't asked its providers (useapi.net's accounts) yet"


def admin_alert(event: AdminEvent, *, serving: bool = True) -> str:
    where = f" (account {event.account})" if event.account else ""
    if event.resolved:
        return f"✅ Working again{where}. It was: {event.message}"
    alert = f"⚠️ Operator action needed{where}: {event.message}"
    return alert if serving else f"{alert}. {NOTHING_SERVES}"


ADMIN_REASONS = {
    "auth": (
        f"USEAPI_TOKEN was refused by useapi.net: copy your API token again ({SETUP_PAGE}) into "
        "USEAPI_TOKEN"
    ),
    "no_accounts": f"no Google account is linked at useapi.net: link one at {LINK_PAGE}",
    "unreachable": (
        "useapi.net did not answer GET /accounts: check USEAPI_BASE_URL and this machine's network"
    ),
    "payment": "useapi.net reports no subscription or credits (402): renew the subscription",
    "account_missing": "the account is not configured at useapi.net (404)",
    "session": (
        "the Google session could not be refreshed (596): renew the account's cookies at "
        f"{LINK_PAGE}"
    ),
    "unhealthy": (
        f"useapi.net reports the account unhealthy: renew its Google session at {LINK_PAGE}"
    ),
    "quota": "the account's daily quota is used up; it serves again after the reset",
    "model": "the provider no longer serves a model the bot asks for: update the model table",
    "store": "the store can't save results (disk full or not writable): free space for it",
}


# /admin: for BOT_ADMINS; everyone else gets ADMIN_ONLY, whatever they typed.
ADMIN_ONLY = "That command is for the bot's operators only."
ADMIN_USAGE = (
    "Admin commands: stats · ban USER · unban USER · quota USER|default [IMAGES|default] · "
    "block WORDS · unblock WORDS · pause · resume · cancel USER. A USER is platform:id, e.g. "
    "telegram:123456789 (an id alone means your platform); IMAGES is a day's images, 0 for no "
    "limit."
)
ADMIN_WHO = "Name the user as platform:id, e.g. telegram:123456789 or discord:987654321098765432."
ADMIN_PHRASE = "Give a word or phrase of at most 100 characters, e.g. /admin block bad word."
ADMIN_IMAGES = "Give a day's images as a whole number (0 for no limit), or default."
PAUSED = "The queue is paused: new jobs are accepted and wait. /admin resume starts them again."
ALREADY_PAUSED = "The queue was paused already."
RESUMED = "The queue runs again."
NOT_PAUSED = "The queue wasn't paused."


def not_bannable(user: object) -> str:
    return f"{user} is an admin (BOT_ADMINS): take them out of BOT_ADMINS first."


def banned(user: object, cancelled: int, *, changed: bool) -> str:
    if not changed:
        return f"{user} was banned already."
    jobs = f"; {cancelled} open job{'s' * (cancelled != 1)} cancelled" if cancelled else ""
    return f"{user} is banned: everything they ask is refused{jobs}."


def unbanned(user: object, *, changed: bool) -> str:
    return f"{user} may use the bot again." if changed else f"{user} wasn't banned."


def quota_set(who: object, images: int | None, default: int) -> str:
    if images is None:
        return f"{who} has the default quota again ({_images(default)})."
    whom = "Everyone without a quota of their own" if who is None else str(who)
    return f"{whom} may ask for {_images(images)}." if images else f"{whom} has no daily limit."


def quota_shown(user: object, used: int, limit: int, whose: str) -> str:
    return f"{user} asked for {used} image{'s' * (used != 1)} today; {_images(limit)} ({whose})."


def _images(limit: int) -> str:
    return f"{limit} image{'s' * (limit != 1)} a day" if limit else "no daily limit"


def blocked_now(phrase: str, *, changed: bool) -> str:
    if not changed:
        return f"“{quote(phrase)}” was blocked already."
    return f"Prompts with “{quote(phrase)}” are refused from now on."


def unblocked(phrase: str, *, changed: bool) -> str:
    if not changed:
        return f"“{quote(phrase)}” wasn't blocked."
    return f"“{quote(phrase)}” is allowed again."


def cancelled_jobs(user: object, cancelled: int) -> str:
    return (
        f"Cancelled {cancelled} job{'s' * (cancelled != 1)} of {user} (what a running one makes "
        "is thrown away); each is told the operator cancelled it."
    )


def audit_line(entry: AuditEntry) -> str:
    """One thing an admin did, in /admin stats."""
    return f"{minute(entry.at)} {entry.actor}: {entry.action} {entry.target}".rstrip()


def unsent(admin: object, alerts: int, since: float) -> str:
    """An admin's alerts kept until they can be given, in /admin stats."""
    return (
        f"{admin}: {alerts} alert{'s' * (alerts != 1)} kept since {minute(since)} UTC, sent when "
        "they next write to the bot"
    )


def minute(at: float) -> str:
    """Epoch seconds as admins read them: ``2026-11-26 15:04`` (UTC)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")


def admin_reason(kind: str, road: str) -> str:
    """What an operator problem on ``road`` means, and what to do."""
    if road == "flow":
        return ADMIN_REASONS[kind]
    name, key = ROAD_NAMES.get(road, (road, "its key"))
    reasons = {
        "auth": f"{name} refused the API key: check {key}",
        "payment": f"{name} reports no credits or billing (402): top up",
        "quota": f"{name}'s daily quota is used up; it serves again after its reset",
        "account_missing": (
            f"{name} does not know what the bot asks for (404): check its settings "
            "(WIREFLOW_WORKFLOW_ID)"
        ),
        "model": f"{name} no longer serves a model the bot asks for: update the model table",
    }
    return reasons.get(kind, f"{name} needs the operator ({kind})")
