"""The operator's commands, ``/admin …`` for BOT_ADMINS: what is happening (``stats``), ``ban``
and ``unban`` a user, ``quota`` (a user's daily images, or the default), ``block`` and
``unblock`` a word or phrase, ``pause`` and ``resume`` the queue, ``cancel`` a user's jobs
(waiting or running).

Each change is stored, so that every platform (and every process sharing the store) obeys it at
once, and recorded with who made it and when (``stats`` shows the last ones). Everyone else
gets one refusal, whatever they typed: they learn nothing, not even which subcommands there are.
A command is a line of text (Telegram's and the console's as typed; Discord's subcommands and
options joined), so that there is one grammar.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable

from bot.core import admin_texts, rules_texts
from bot.core.errors import InvalidInput
from bot.core.people import CONSOLE, DISCORD, TELEGRAM, UserKey
from bot.core.policy import Access, Limits
from bot.core.ports import Store
from bot.core.scheduler import Scheduler
from bot.core.service.accounts import Accounts
from bot.core.service.pause import Pause
from bot.core.service.rules import Rules, phrase_of, today
from bot.core.service.runner import Runner
from bot.core.stats import StatsView

# What stats lists: the users who asked for most images today, the admins' latest actions.
TOP_USERS = 5
RECENT_ACTIONS = 5
MAX_IMAGES = 1_000_000

Answer = str | StatsView
_MENTION = re.compile(r"<@!?(\d{1,20})>")  # how Discord writes a user someone picked
_IDS = {DISCORD: re.compile(r"\d{1,20}"), TELEGRAM: re.compile(r"-?\d{1,20}")}


class Admin:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        *,
        access: Access,
        limits: Limits,
        accounts: Accounts,
        rules: Rules,
        runner: Runner,
        pause: Pause,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._access = access
        self._limits = limits
        self._accounts = accounts
        self._rules = rules
        self._runner = runner
        self._pause = pause

    async def run(self, actor: UserKey, line: str) -> Answer:
        """Do what ``line`` says (``ban telegram:5``), if ``actor`` is an admin."""
        if not self._access.is_admin(actor):
            raise InvalidInput(admin_texts.ADMIN_ONLY)
        word, _, rest = line.strip().partition(" ")
        command = _COMMANDS.get(word.lower())
        if command is None:
            raise InvalidInput(admin_texts.ADMIN_USAGE)
        return await command(self, actor, rest.strip())

    async def stats(self, actor: UserKey, rest: str) -> Answer:
        day = today()
        stats = await self._store.day_stats(day, top=TOP_USERS)
        return StatsView.of(
            day,
            stats.states,
            stats.outcomes,
            queued=len(self._scheduler.entries()),
            running=self._scheduler.in_flight,
            paused=self._pause.on,
            accounts=self._accounts.states(),
            problems=self._accounts.problems(),
            top_users=stats.top_users,
            recent=await self._store.audit_log(RECENT_ACTIONS),
            held=await self._store.held_alerts(),
        )

    async def ban(self, actor: UserKey, rest: str) -> Answer:
        user = _user(rest, actor.platform)
        if self._access.is_admin(user):
            raise InvalidInput(admin_texts.not_bannable(user))
        changed = await self._store.set_banned(user, True)
        cancelled = await self._cancel_jobs(user)
        await self._store.audit(actor, "ban", str(user))
        return admin_texts.banned(user, cancelled, changed=changed)

    async def unban(self, actor: UserKey, rest: str) -> Answer:
        user = _user(rest, actor.platform)
        changed = await self._store.set_banned(user, False)
        await self._store.audit(actor, "unban", str(user))
        return admin_texts.unbanned(user, changed=changed)

    async def quota(self, actor: UserKey, rest: str) -> Answer:
        """``quota USER|default [IMAGES|default]``: set it (0: no limit), reset it, or show it."""
        who_text, _, value = rest.partition(" ")
        who = None if who_text.lower() == "default" else _user(who_text, actor.platform)
        value = value.strip().lower()
        if not value and who is not None:
            return await self._show_quota(who)
        if value == "default" and who is not None:
            images = None
        elif value.isdigit() and int(value) <= MAX_IMAGES:
            images = int(value)
        else:
            raise InvalidInput(admin_texts.ADMIN_IMAGES)
        await self._store.set_quota(who, images)
        await self._store.audit(actor, "quota", f"{who or 'default'} {value}")
        default = await self._store.quota(None)
        fallback = self._limits.daily_images_per_user if default is None else default
        return admin_texts.quota_set(who, images, fallback)

    async def block(self, actor: UserKey, rest: str) -> Answer:
        phrase = _phrase(rest)
        changed = await self._store.set_blocked(phrase, True)
        await self._store.audit(actor, "block", phrase)
        return admin_texts.blocked_now(phrase, changed=changed)

    async def unblock(self, actor: UserKey, rest: str) -> Answer:
        phrase = _phrase(rest)
        changed = await self._store.set_blocked(phrase, False)
        await self._store.audit(actor, "unblock", phrase)
        return admin_texts.unblocked(phrase, changed=changed)

    async def pause(self, actor: UserKey, rest: str) -> Answer:
        changed = await self._pause.set(True)
        await self._store.audit(actor, "pause", "")
        return admin_texts.PAUSED if changed else admin_texts.ALREADY_PAUSED

    async def resume(self, actor: UserKey, rest: str) -> Answer:
        changed = await self._pause.set(False)
        await self._store.audit(actor, "resume", "")
        return admin_texts.RESUMED if changed else admin_texts.NOT_PAUSED

    async def cancel(self, actor: UserKey, rest: str) -> Answer:
        user = _user(rest, actor.platform)
        cancelled = await self._cancel_jobs(user)
        await self._store.audit(actor, "cancel", str(user))
        return admin_texts.cancelled_jobs(user, cancelled)

    async def _cancel_jobs(self, user: UserKey) -> int:
        """Cancel the user's open jobs, each answered that an admin did; how many."""
        cancelled = 0
        for job in await self._store.user_jobs(user):
            with contextlib.suppress(InvalidInput):  # it ended meanwhile: nothing to cancel
                await self._runner.cancel(job.id, rules_texts.CANCELLED_BY_ADMIN)
                cancelled += 1
        return cancelled

    async def _show_quota(self, user: UserKey) -> str:
        allowance = await self._rules.allowance(user)
        own = await self._store.quota(user)
        return admin_texts.quota_shown(user, allowance.used, allowance.limit, own=own is not None)


_COMMANDS: dict[str, Callable[[Admin, UserKey, str], Awaitable[Answer]]] = {
    "stats": Admin.stats,
    "ban": Admin.ban,
    "unban": Admin.unban,
    "quota": Admin.quota,
    "block": Admin.block,
    "unblock": Admin.unblock,
    "pause": Admin.pause,
    "resume": Admin.resume,
    "cancel": Admin.cancel,
}


def _user(text: str, platform: str) -> UserKey:
    """``telegram:123``, ``discord:456``, a Discord mention, or an id on ``platform``."""
    text = text.strip()
    if mention := _MENTION.fullmatch(text):
        return UserKey(DISCORD, mention[1])
    named, colon, user_id = text.rpartition(":")
    platform = named.lower() if colon else platform
    pattern = _IDS.get(platform, re.compile(r"\w{1,32}") if platform == CONSOLE else None)
    if pattern is None or not pattern.fullmatch(user_id):
        raise InvalidInput(admin_texts.ADMIN_WHO)
    return UserKey(platform, user_id)


def _phrase(text: str) -> str:
    phrase = phrase_of(text)
    if phrase is None:
        raise InvalidInput(admin_texts.ADMIN_PHRASE)
    return phrase
