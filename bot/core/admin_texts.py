"""Every sentence an admin reads: the operator's alerts (the same sentences are /healthz's
reasons and ``python -m bot check``'s), and the answers of /admin. What users read is in
``texts``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.alerts import AdminEvent
from bot.core.community import AuditEntry
from bot.core.i18n import Text, _, _n, join
from bot.core.texts import ROAD_NAMES, quote

# For the operator: alerts, /healthz reasons and `python -m bot check`.
SETUP_PAGE = "https://useapi.net/docs/start-here/setup-useapi"
LINK_PAGE = "https://useapi.net/docs/start-here/setup-google-flow"
NOTHING_SERVES = _("No provider can serve now: every new request is refused until one can.")
STARTING = _("the bot is starting: it hasn't asked its providers (useapi.net's accounts) yet")


def admin_alert(event: AdminEvent, *, serving: bool = True) -> Text:
    if event.resolved:
        if event.account:
            return _(
                "✅ Working again (account {account}). It was: {problem}",
                account=event.account,
                problem=event.message,
            )
        return _("✅ Working again. It was: {problem}", problem=event.message)
    if event.account:
        alert = _(
            "⚠️ Operator action needed (account {account}): {problem}",
            account=event.account,
            problem=event.message,
        )
    else:
        alert = _("⚠️ Operator action needed: {problem}", problem=event.message)
    return alert if serving else join(". ", [alert, NOTHING_SERVES])


ADMIN_REASONS = {
    "auth": _(
        "USEAPI_TOKEN was refused by useapi.net: copy your API token again ({page}) into "
        "USEAPI_TOKEN",
        page=SETUP_PAGE,
    ),
    "no_accounts": _(
        "no Google account is linked at useapi.net: link one at {page}", page=LINK_PAGE
    ),
    "unreachable": _(
        "useapi.net did not answer GET /accounts: check USEAPI_BASE_URL and this machine's network"
    ),
    "payment": _("useapi.net reports no subscription or credits (402): renew the subscription"),
    "account_missing": _("the account is not configured at useapi.net (404)"),
    "session": _(
        "the Google session could not be refreshed (596): renew the account's cookies at {page}",
        page=LINK_PAGE,
    ),
    "unhealthy": _(
        "useapi.net reports the account unhealthy: renew its Google session at {page}",
        page=LINK_PAGE,
    ),
    "quota": _("the account's daily quota is used up; it serves again after the reset"),
    "model": _("the provider no longer serves a model the bot asks for: update the model table"),
    "store": _("the store can't save results (disk full or not writable): free space for it"),
}


# /admin: for BOT_ADMINS; everyone else gets ADMIN_ONLY, whatever they typed.
ADMIN_ONLY = _("That command is for the bot's operators only.")
ADMIN_USAGE = _(
    "Admin commands: stats · ban USER · unban USER · quota USER|default [IMAGES|default] · "
    "block WORDS · unblock WORDS · pause · resume · cancel USER. A USER is platform:id, e.g. "
    "telegram:123456789 (an id alone means your platform); IMAGES is a day's images, 0 for no "
    "limit."
)
ADMIN_WHO = _(
    "Name the user as platform:id, e.g. telegram:123456789 or discord:987654321098765432."
)
ADMIN_PHRASE = _("Give a word or phrase of at most 100 characters, e.g. /admin block bad word.")
ADMIN_IMAGES = _("Give a day's images as a whole number (0 for no limit), or default.")
PAUSED = _("The queue is paused: new jobs are accepted and wait. /admin resume starts them again.")
ALREADY_PAUSED = _("The queue was paused already.")
RESUMED = _("The queue runs again.")
NOT_PAUSED = _("The queue wasn't paused.")


def not_bannable(user: object) -> Text:
    return _("{user} is an operator (BOT_ADMINS): take them out of BOT_ADMINS first.", user=user)


def banned(user: object, cancelled: int, *, changed: bool) -> Text:
    if not changed:
        return _("{user} was banned already.", user=user)
    if cancelled:
        return _n(
            "{user} is banned: everything they ask is refused; {count} open job cancelled.",
            "{user} is banned: everything they ask is refused; {count} open jobs cancelled.",
            cancelled,
            user=user,
            count=cancelled,
        )
    return _("{user} is banned: everything they ask is refused.", user=user)


def unbanned(user: object, *, changed: bool) -> Text:
    if changed:
        return _("{user} may use the bot again.", user=user)
    return _("{user} wasn't banned.", user=user)


def quota_set(who: object, images: int | None, default: int) -> Text:
    if images is None:
        return _("{user} has the default quota again ({quota}).", user=who, quota=_images(default))
    if who is None:
        if images:
            return _(
                "Everyone without a quota of their own may ask for {quota}.", quota=_images(images)
            )
        return _("Everyone without a quota of their own has no daily limit.")
    if images:
        return _("{user} may ask for {quota}.", user=who, quota=_images(images))
    return _("{user} has no daily limit.", user=who)


def quota_shown(user: object, used: int, limit: int, *, own: bool) -> Text:
    """A user's day against their quota: ``own`` when an operator set theirs, else the default."""
    if own:
        return _n(
            "{user} asked for {count} image today; their own quota: {quota}.",
            "{user} asked for {count} images today; their own quota: {quota}.",
            used,
            user=user,
            count=used,
            quota=_images(limit),
        )
    return _n(
        "{user} asked for {count} image today; the default quota: {quota}.",
        "{user} asked for {count} images today; the default quota: {quota}.",
        used,
        user=user,
        count=used,
        quota=_images(limit),
    )


def _images(limit: int) -> Text:
    if not limit:
        return _("no daily limit")
    return _n("{count} image a day", "{count} images a day", limit, count=limit)


def blocked_now(phrase: str, *, changed: bool) -> Text:
    if not changed:
        return _("“{phrase}” was blocked already.", phrase=quote(phrase))
    return _("Prompts with “{phrase}” are refused from now on.", phrase=quote(phrase))


def unblocked(phrase: str, *, changed: bool) -> Text:
    if not changed:
        return _("“{phrase}” wasn't blocked.", phrase=quote(phrase))
    return _("“{phrase}” is allowed again.", phrase=quote(phrase))


def cancelled_jobs(user: object, cancelled: int) -> Text:
    return _n(
        "Cancelled {count} job of {user} (what a running one makes is thrown away); each is "
        "told the operator cancelled it.",
        "Cancelled {count} jobs of {user} (what a running one makes is thrown away); each is "
        "told the operator cancelled it.",
        cancelled,
        count=cancelled,
        user=user,
    )


def audit_line(entry: AuditEntry) -> str:
    """One thing an admin did, in /admin stats."""
    return f"{minute(entry.at)} {entry.actor}: {entry.action} {entry.target}".rstrip()


def unsent(admin: object, alerts: int, since: float) -> Text:
    """An admin's alerts kept until they can be given, in /admin stats."""
    return _n(
        "{admin}: {count} alert kept since {time} UTC, sent when they next write to the bot",
        "{admin}: {count} alerts kept since {time} UTC, sent when they next write to the bot",
        alerts,
        admin=admin,
        count=alerts,
        time=minute(since),
    )


def minute(at: float) -> str:
    """Epoch seconds as admins read them: ``2026-11-26 15:04`` (UTC)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")


def admin_reason(kind: str, road: str) -> Text:
    """What an operator problem on ``road`` means, and what to do."""
    if road == "flow":
        return ADMIN_REASONS[kind]
    name, key = ROAD_NAMES.get(road, (road, "its key"))
    if kind == "auth":
        return _("{name} refused the API key: check {key}", name=name, key=key)
    if kind == "payment":
        return _("{name} reports no credits or billing (402): top up", name=name)
    if kind == "quota":
        return _("{name}'s daily quota is used up; it serves again after its reset", name=name)
    if kind == "account_missing":
        return _(
            "{name} does not know what the bot asks for (404): check its settings "
            "(WIREFLOW_WORKFLOW_ID)",
            name=name,
        )
    if kind == "model":
        return _(
            "{name} no longer serves a model the bot asks for: update the model table", name=name
        )
    return _("{name} needs the operator ({kind})", name=name, kind=kind)
