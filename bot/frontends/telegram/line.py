"""The line requests wait in for their turn to go to Telegram (``outbound``): Telegram's flood
limits as budgets (in all, in each chat, in each group), and whose turn it is.

The order: answers (images, failures, replies to what a user just did) before new jobs' status
messages and busy chats' boards, and those before live progress and chat actions; all but
answers leave part of every budget unused (``SPARE``), so that an answer never waits behind them
(but for one place in a chat, once a status has waited ``PATIENCE`` there). In a group, the
people the bot is answering take turns (each their most urgent), so one member's ten answers
don't hold back another member's next job. Edits of one message go out one at a time, in the
order made.

Each chat keeps its own waiting requests and the one that would go next from it; the chats
whose next request fits their budgets wait in one heap, most urgent first, for room in the
overall budget, and the others for a timer or for the edit they follow. A request's arrival, its
going and an edit's end reconsider its chat alone, so letting a request go costs the same with
ten or a thousand waiting.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import IntEnum

from bot.frontends.telegram.bucket import Bucket


@dataclass(frozen=True)
class FloodLimits:
    """How fast the bot may send: in all and in each chat, ``burst`` requests at once, then
    ``rate`` a second; in each group, ``group_rate`` messages every ``group_period`` seconds."""

    overall_rate: float
    overall_burst: int
    chat_rate: float
    chat_burst: int
    group_rate: int
    group_period: float


# Telegram's flood limits as its bot FAQ gives them (core.telegram.org/bots/faq, "My bot is
# hitting limits"; our notes: shared/reference/platforms.md), the bot's default: about 30
# messages a second in all, one a second in a chat ("short bursts" allowed: we take 3), 20 a
# minute in a group. Sends and edits count in a chat (tdlib/telegram-bot-api#648); everything
# sent to a chat counts in all, as python-telegram-bot's own limiter counts. Telegram counts
# when a request arrives, and requests sent in one order may arrive closer together: a chat's
# messages are spaced a tenth of a second more than its limit, and the burst in all is short
# of 30 by what a tenth of a second brings.
TELEGRAM_LIMITS = FloodLimits(
    overall_rate=30.0,
    overall_burst=27,
    chat_rate=1.0 / 1.1,
    chat_burst=3,
    group_rate=20,
    group_period=60.0,
)

MESSAGES = frozenset(
    (
        "sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "editMessageText",
        "editMessageCaption", "editMessageReplyMarkup", "editMessageMedia",
    )
)  # fmt: skip


class Urgency(IntEnum):
    ANSWER = 0  # an answer, a failure, a reply to what a user just did
    STATUS = 1  # a new job's status message
    PROGRESS = 2  # live progress, chat actions: a courtesy


# What each urgency leaves unused of the overall, a chat's and a group's budget, for more urgent
# requests that may come meanwhile (answers come in waves, a slot's worth of jobs at once): the
# rest go only while most of the overall burst is left, and in a chat only when its budget is
# rested (the FAQ's 1/s in a chat, 30/s in all). A busy chat's board waits so too: taking its
# chat's last places made two answers coming together wait a second (answer → picture p99
# 30 → 240 ms, two accounts, 40 jobs; bench/README.md).
# A status message that waits so long that its answer comes first is never sent
# (``outbound.unless_overtaken``). In all, the less urgent never leaves less than the more
# urgent: a request that finds no room in all means none less urgent finds any.
SPARE = {
    Urgency.ANSWER: (0, 0, 0),
    Urgency.STATUS: (20, 2, 1),
    Urgency.PROGRESS: (20, 2, 5),
}
# But a busy chat's budget may not rest for many seconds: its answers, one every 1.5 s against
# a refill every 1.1 s, kept its board waiting 7.8 s (200 queued jobs, ten a chat). A status that
# has waited ``PATIENCE`` for its chat to rest leaves only the chat's last place unused
# (``PATIENT_SPARE``): an answer still finds a place at once, a second one coming with it may
# wait for the refill, at most once a ``PATIENCE`` in a chat (the wait starts anew when a status
# goes). At 2 s the slowest first response of a command at 200 jobs took 2.9 s instead of 3.5 s
# (3.7 s instead of 6.8 s at worst), at 40 (two accounts) 2.2 s instead of 4.5 s, answer →
# picture p99 unchanged (medians of 12 runs); at 1 s that p99 rose (two accounts: 729 ms in one
# run of three), and 200 jobs' slowest first response came no sooner (3.2 s, 6.4 s at worst).
PATIENCE = 2.0
PATIENT_SPARE = 1

Chat = int | str  # as python-telegram-bot tells them: ids, and @usernames
Message = tuple[Chat, int]


class Overtaken(Exception):
    """A request withdrawn when its turn came: what it would say was overtaken."""


class Closed(Exception):
    """A request still waiting, or made, once the line closed: the bot is stopping."""


@dataclass(eq=False)
class Request:
    urgency: Urgency
    seq: int  # the order requests were made in
    chat: Chat
    group: bool
    counted: bool  # a message: counts in its chat's and group's budget
    message: Message | None  # the message it edits or deletes
    requester: Hashable
    granted: asyncio.Future[None]
    still_due: Callable[[], bool] | None = None  # asked when its turn comes

    @property
    def rank(self) -> tuple[bool, int, int]:
        """Its place against another chat's requests: progress after everything else, then
        the more urgent, then the one made first."""
        return (self.urgency is Urgency.PROGRESS, self.urgency, self.seq)


@dataclass(eq=False)
class _Chat:
    """A chat's budgets and its requests waiting."""

    budget: Bucket
    group_budget: Bucket | None
    waiting: list[Request] = field(default_factory=list)
    next: Request | None = None  # the one in the heap of requests that fit (None: none fits)
    due: float | None = None  # when its budget lets one go (None: not for a time)
    # Since when a status has waited for its budget to rest (None: it rested, or a status went).
    unrested: float | None = None

    def idle(self, now: float) -> bool:
        """Nothing waits, and its budgets are all unused again."""
        budgets = [b for b in (self.budget, self.group_budget) if b is not None]
        return not self.waiting and all(b.wait(now) == 0 and b.idle for b in budgets)


class Line:
    """Requests in line for Telegram, let go as its flood limits allow, in turn."""

    # Chats remembered (their budgets) before the idle ones are forgotten.
    REMEMBERED = 1024

    def __init__(self, limits: FloodLimits) -> None:
        self._limits = limits
        self._overall = Bucket(limits.overall_rate, limits.overall_burst)
        self._chats: dict[Chat, _Chat] = {}
        self._turns: dict[tuple[Chat, Hashable], int] = {}  # (group, requester) → turn
        self._turn = itertools.count(1)
        self._sending: set[Message] = set()  # messages with an edit on its way
        self._fitting: list[tuple[tuple[bool, int, int], int, Request]] = []  # by rank
        self._timed: list[tuple[float, int, Chat]] = []  # (due, tie, chat)
        self._tie = itertools.count()
        self._changed: set[Chat] = set()  # chats to reconsider at the next pass
        self._timer: asyncio.TimerHandle | None = None
        self._forget_at = self.REMEMBERED
        self._closed = False

    def add(self, request: Request) -> None:
        """``request`` waits its turn: ``request.granted`` is set when it comes."""
        if self._closed:
            request.granted.set_exception(Closed())
            return
        self._chat(request).waiting.append(request)
        self._changed.add(request.chat)
        self.pump()

    def withdraw(self, request: Request) -> None:
        """``request``'s sender stopped waiting."""
        chat = self._chats.get(request.chat)
        if chat is not None and request in chat.waiting:
            chat.waiting.remove(request)
            self._changed.add(request.chat)
            self.pump()

    def done(self, request: Request) -> None:
        """A request let go is done with: the next edit of its message may go."""
        if request.message is not None:
            self._sending.discard(request.message)
            self._changed.add(request.chat)
            self.pump()

    def rest(self, request: Request, seconds: float) -> None:
        """Telegram refused ``request`` with a flood wait: nothing more to its chat (and
        group) for ``seconds``; the overall budget is not the one that was refused."""
        until = asyncio.get_running_loop().time() + seconds
        chat = self._chat(request)
        for budget in (chat.budget, chat.group_budget):
            if budget is not None:
                budget.resting_until = max(budget.resting_until, until)
        self._changed.add(request.chat)

    def close(self) -> int:
        """Refuse every request waiting, and each one made from now on; how many waited. A
        stop waits for the updates being handled, and their replies wait here: in a busy group
        (20 messages a minute) that held a stop for minutes. Requests let go are on their way."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        refused = 0
        for chat in self._chats.values():
            for request in chat.waiting:
                request.granted.set_exception(Closed())
                refused += 1
            chat.waiting.clear()
            chat.next = None
        self._fitting.clear()
        self._timed.clear()
        return refused

    def pump(self) -> None:
        """Let go every waiting request that fits now, most urgent first; then set a timer
        for when the next one will."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = asyncio.get_running_loop().time()
        while self._timed and self._timed[0][0] <= now:
            due, _, key = heapq.heappop(self._timed)
            chat = self._chats.get(key)
            if chat is not None and chat.due == due:  # else it chose again since
                self._changed.add(key)
        for key in self._changed:
            self._reconsider(key, now)
        self._changed.clear()
        overall_wait: float | None = None
        while self._fitting:
            request = self._fitting[0][2]
            chat = self._chats.get(request.chat)
            if chat is None or chat.next is not request:
                heapq.heappop(self._fitting)  # its chat chose again since
                continue
            spare = SPARE[request.urgency][0]
            wait = self._overall.wait(now, min(spare, self._overall.burst - 1))
            if wait > 0:
                # No room in all for it, nor for anything after it (as urgent or less).
                overall_wait = wait
                break
            heapq.heappop(self._fitting)
            chat.next = None
            chat.waiting.remove(request)
            self._let_go(request, chat, now)
            self._reconsider(request.chat, now)
        waits = [overall_wait] if overall_wait is not None else []
        if self._timed:
            waits.append(self._timed[0][0] - now)
        if waits:
            self._timer = asyncio.get_running_loop().call_later(min(waits), self.pump)

    def _let_go(self, request: Request, chat: _Chat, now: float) -> None:
        if request.still_due is not None and not request.still_due():
            request.granted.set_exception(Overtaken())
            return
        # Chosen at an earlier pass, maybe (it waited for room in all): counted as of now.
        self._overall.take(now)
        if request.counted:
            chat.budget.take(now)
            if chat.group_budget is not None:
                chat.group_budget.take(now)
        if request.message is not None:
            self._sending.add(request.message)
        if request.urgency is Urgency.STATUS:
            chat.unrested = None
        if request.group:
            self._turns[(request.chat, request.requester)] = next(self._turn)
        request.granted.set_result(None)

    def _reconsider(self, key: Chat, now: float) -> None:
        """Choose the chat's next request: the first in turn among those its budgets let go
        now (into the heap), else note when one will (a timer)."""
        chat = self._chats.get(key)
        if chat is None:
            return
        chat.next, chat.due = None, None
        self._note_rest(chat, now)
        turn = self._turn_in_group(chat)
        soonest: float | None = None
        for request in chat.waiting:
            if turn is not None and request.counted and request is not turn:
                continue  # another member's turn: this one doesn't take it while it waits
            wait = self._wait(request, chat, now)
            if wait is None:
                continue  # after the edit before it
            if wait > 0:
                soonest = wait if soonest is None else min(soonest, wait)
            elif chat.next is None or self._before(request, chat.next):
                chat.next = request
        if chat.next is not None:
            heapq.heappush(self._fitting, (chat.next.rank, next(self._tie), chat.next))
        if soonest is not None:  # one that doesn't fit yet may go before the one that does
            chat.due = now + soonest
            heapq.heappush(self._timed, (chat.due, next(self._tie), key))

    def _note_rest(self, chat: _Chat, now: float) -> None:
        """Note since when a status has waited for the chat's budget to rest."""
        if self._spared(chat.budget, now, SPARE[Urgency.STATUS][1]) == 0:
            chat.unrested = None
        elif chat.unrested is None and any(r.urgency is Urgency.STATUS for r in chat.waiting):
            chat.unrested = now

    def _turn_in_group(self, chat: _Chat) -> Request | None:
        """In a group, the one message whose turn it is (None: not a group, or none waits)."""
        turn: Request | None = None
        for request in chat.waiting:
            if request.group and request.counted and (turn is None or self._before(request, turn)):
                turn = request
        return turn

    def _before(self, one: Request, other: Request) -> bool:
        """Whether ``one`` goes before ``other`` of the same chat: progress after everything
        else; in a group, the member who had the least recent turn (their answer or their next
        job's status); then the more urgent; then the one made first."""
        progress = Urgency.PROGRESS
        if (one.urgency is progress) != (other.urgency is progress):
            return other.urgency is progress
        if one.group:
            mine = self._turns.get((one.chat, one.requester), 0)
            theirs = self._turns.get((other.chat, other.requester), 0)
            if mine != theirs:
                return mine < theirs
        return one.rank < other.rank

    def _wait(self, request: Request, chat: _Chat, now: float) -> float | None:
        """Seconds until the chat's budgets let ``request`` go (None: when the edit before it
        is done). The overall budget is asked when its turn comes."""
        if request.message is not None and request.message in self._sending:
            return None
        if not request.counted:
            return 0.0
        spares = SPARE[request.urgency]
        wait = self._spared(chat.budget, now, spares[1])
        if request.urgency is Urgency.STATUS and chat.unrested is not None:
            patient = max(
                chat.unrested + PATIENCE - now, self._spared(chat.budget, now, PATIENT_SPARE)
            )
            wait = min(wait, patient)
        if chat.group_budget is not None:
            wait = max(wait, self._spared(chat.group_budget, now, spares[2]))
        return wait

    @staticmethod
    def _spared(budget: Bucket, now: float, spare: int) -> float:
        """Seconds until ``budget`` lets one more go, leaving ``spare`` places unused."""
        # A spare is at most all but one place: a budget at rest always lets one through.
        return budget.wait(now, min(spare, budget.burst - 1))

    def _chat(self, request: Request) -> _Chat:
        chat = self._chats.get(request.chat)
        if chat is None:
            limits = self._limits
            group = None
            if request.group:
                group = Bucket(limits.group_rate / limits.group_period, limits.group_rate)
            chat = _Chat(Bucket(limits.chat_rate, limits.chat_burst), group)
            if len(self._chats) >= self._forget_at:
                self._forget_idle()
            self._chats[request.chat] = chat
        return chat

    def _forget_idle(self) -> None:
        """Forget the chats whose budgets are all unused again (there are many): as often as
        the chats remembered double, so that it costs little a chat."""
        now = asyncio.get_running_loop().time()
        for key in [k for k, chat in self._chats.items() if chat.idle(now)]:
            del self._chats[key]
        self._turns = {k: t for k, t in self._turns.items() if k[0] in self._chats}
        self._forget_at = max(self.REMEMBERED, 2 * len(self._chats))
