"""Which status message each job has, for its progress and its answer to edit.

A job is queued first and its status message sent after (``intake``): a chat's commands are
queued as fast as they come, whatever Telegram's one message a second in a chat lets through
(platforms.md, "Flood limits"). So the status message's id comes after the stored job, and
is kept here: in memory for this process's jobs, parked in the store (``Parking``) for a
restarted one. Jobs stored by an older version hold theirs in ``Owner.route["status"]``.

Which of a status message and its job's answer comes first is decided at one point: when the
status message's turn comes in ``outbound`` (``unless_overtaken``). If the answer came first,
the status message is never sent and the answer goes as a reply of its own; else it goes, and
an answer that comes while it is on its way waits for it and takes its place. Either way one
answer, no status left behind, and two Bot API calls at most.

Killed at any moment: a job whose status message had not gone is answered with a new
message (``key`` finds none); one whose status message went has it edited, once its id is
parked. The one gap is the reply's way back: Telegram tells a message's id only in the answer
to sending it, so a process killed between Telegram taking the message and the parked id
(milliseconds, one write) leaves that message as it was, and answers with a new one.

A command whose answer is likely soon is not acknowledged before it: the answer is worth more
than a status message a moment before it, and in a burst the acknowledgements take the budget
the answers need (30 a second in all). When the service expects the answer within ``HOLD`` of
the command (``Submitted.answer_in``: a fast upstream, a place in its next rounds), the status
message or board line waits until a little after then (``AFTER_ANSWER``, the picture's way to
Telegram), at most ``HOLD``; the answer that comes first is the only message. Expected later or
not known (an upstream answering in 10-30 s, a deep queue, a restart), it goes at once. A
chat's board that goes for a job not held lists the jobs held there at once (a message of their
own would take the chat's budget the board waits for), and one held when its chat has a board
goes on it.

A job queued in a chat where another of this process's jobs is still open goes on the chat's
board instead (``board``): one message for them all, acknowledging a busy chat's commands
within its budget. A command in a quiet chat keeps its own status message, which its answer
takes the place of.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram import Bot
from telegram.error import TelegramError

from bot.core.cancellation import cancel_until_done
from bot.core.domain import Job
from bot.core.i18n import Text
from bot.core.ports import Parking
from bot.frontends.telegram import outbound, status
from bot.frontends.telegram.allowance import Allowance, Need
from bot.frontends.telegram.board import Boards, Places
from bot.frontends.telegram.line import Overtaken, Urgency
from bot.frontends.telegram.status import StatusKey

log = logging.getLogger(__name__)
KIND = "status.sent"  # parked: job id → its status message's id
# Known status messages kept in memory (the oldest go first; the store still has them).
REMEMBERED = 4096
# The longest a command goes unacknowledged because its answer is expected sooner, seconds; and
# what the answer's picture takes after the upstream's answer (download, check, upload; its p99
# at a 60-job burst), waited beyond the expected answer.
HOLD = 2.0
AFTER_ANSWER = 0.3


@dataclass(eq=False)
class Posting:
    """A job's status message on its way: not yet its turn, or sent and not yet answered."""

    settled: asyncio.Future[StatusKey | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    reuse: StatusKey | None = None  # a message an interrupted attempt left, to say it on
    going: bool = False  # its turn came: it is on its way to Telegram
    answered: bool = False  # the job's answer came: too late to send it
    listed: bool = False  # on its chat's board: no message of its own
    hold: float = 0.0  # seconds it waits for its answer before it goes (``StatusBook.held``)
    # Its hold is over early: its job was answered or ended, or its chat's board goes now.
    due: asyncio.Event = field(default_factory=asyncio.Event)
    chat_id: int = 0

    def still_due(self) -> bool:
        """Asked by ``outbound`` when its turn comes: send it unless the answer came first."""
        self.going = not self.answered
        return self.going


class StatusBook:
    def __init__(self, parking: Parking, places: Places) -> None:
        self._parking = parking
        self._posting: dict[int, Posting] = {}
        self._known: dict[int, StatusKey | None] = {}
        self._own: dict[int, set[int]] = {}  # chat → its jobs with a status message, unanswered
        self._holding: dict[int, Posting] = {}  # job id → its acknowledgement held (``held``)
        self._later: set[asyncio.Task[None]] = set()  # acknowledgements held, on their way
        self.allowance = Allowance()
        self.boards = Boards(parking, self.allowance, places)

    def expect(
        self,
        bot: Bot,
        job_id: int,
        chat_id: int,
        reuse: StatusKey | None = None,
        *,
        may_list: bool = False,
        images: int = 1,
        answer_in: float | None = None,
    ) -> Posting:
        """Job ``job_id`` was just queued in ``chat_id`` and will be shown: on its chat's board
        if ``may_list`` and another job is open there, else by a status message of its own
        (said on ``reuse``, a message an interrupted attempt left), which its answer waits for
        if it is on its way; not before ``held``, if its answer is expected in ``answer_in``
        seconds. The job brings its chat calls for ``images`` pictures (``allowance``). Call
        before awaiting anything after the queueing."""
        self.allowance.asked(chat_id, job_id, images)
        posting = Posting(reuse=reuse, chat_id=chat_id)
        if reuse is None and answer_in is not None and answer_in < HOLD:
            posting.hold = min(HOLD, answer_in + AFTER_ANSWER)
            self._holding[job_id] = posting
        busy = bool(self._own.get(chat_id)) or self.boards.open_in(chat_id)
        if may_list and reuse is None and busy:
            if not posting.hold:  # its chat's board goes now: the jobs held there go on it
                for held in self._holding.values():
                    if held.chat_id == chat_id:
                        held.due.set()
            posting.listed = True
            posting.settled.set_result(None)
            self.boards.reserve(bot, chat_id, job_id)
            self._remember(job_id, None)  # its answer needn't look in the store
            return posting
        self._posting[job_id] = posting
        if may_list:  # what makes the chat busy (only where its answers are given: ``release``)
            self._own.setdefault(chat_id, set()).add(job_id)
        return posting

    def later(self, showing: Coroutine[Any, Any, None]) -> None:
        """Show a job held (``held``) on its own, not in the handler of its command: a sender's
        next commands are not kept waiting for it (``updates``)."""
        task = asyncio.create_task(_logged(showing))
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def close(self) -> None:
        await cancel_until_done(list(self._later))
        await self.boards.close()

    async def held(self, job_id: int, posting: Posting) -> None:
        """Until the job's acknowledgement is due: at once, or once its hold is over, its job
        answered or ended (then it is overtaken: nothing goes), or its chat's board goes."""
        try:
            if posting.hold and not posting.due.is_set() and self._holding.get(job_id):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(posting.hold):
                        await posting.due.wait()
        finally:
            self._holding.pop(job_id, None)

    async def post(
        self,
        bot: Bot,
        job_id: int,
        posting: Posting,
        *,
        chat_id: int,
        answer_to: int,
        text: Text,
    ) -> StatusKey | None:
        """Send the job's status message saying ``text`` (on the message it reuses, if it can
        still take it) once it is due (``held``), unless its answer comes first; where it is,
        or None."""
        key: StatusKey | None = None

        def still_due() -> bool:  # and paid from what the job brought (always: it's its first)
            return posting.still_due() and self.allowance.take(chat_id, Need.ACKNOWLEDGE)

        try:
            await self.held(job_id, posting)
            if posting.hold and not posting.answered and self.boards.open_in(chat_id):
                self._list_instead(bot, chat_id, job_id, posting)
                return None
            with outbound.at(Urgency.STATUS), outbound.unless_overtaken(still_due):
                key = await _place(bot, chat_id, answer_to, text, posting.reuse)
        except Overtaken:
            log.debug("job %d was answered before its status message went", job_id)
        except TelegramError as exc:  # the job goes on; its answer comes as a reply of its own
            log.warning("job %d: no status message (%s)", job_id, exc)
        finally:
            posting.settled.set_result(key)
            self._posting.pop(job_id, None)
            self._remember(job_id, key)
        if key is not None:  # also when the answer waits for it: a restart mid-answer edits it
            await self._parking.add_pending(KIND, str(job_id), str(key[1]))
        return key

    def _list_instead(self, bot: Bot, chat_id: int, job_id: int, posting: Posting) -> None:
        """A job held while its chat got a board goes on the board."""
        posting.listed = True
        self.boards.reserve(bot, chat_id, job_id)
        own = self._own.get(chat_id)
        if own is not None:
            own.discard(job_id)
            if not own:
                del self._own[chat_id]

    async def key(self, job: Job) -> StatusKey | None:
        """The job's status message for a progress report: once it went, if it goes at all."""
        posting = self._posting.get(job.id)
        if posting is not None:
            return await asyncio.shield(posting.settled)
        return await self._stored(job)

    async def for_answer(self, job: Job) -> StatusKey | None:
        """The status message the job's answer takes the place of, or None (a new message).
        A status message not yet sent never will be (a reused one takes the answer as it is);
        one on its way is waited for. A job on its chat's board leaves it, or takes its place
        if the board replies to its command (``Boards.hand_over``)."""
        board = await self.boards.hand_over(job.id)
        self.release(job)
        if board is not None:  # its own from here on (a retry finds it; a restart, a picture)
            self._remember(job.id, board)
            return board
        posting = self._posting.get(job.id)
        if posting is not None:
            posting.answered = True
            return await asyncio.shield(posting.settled) if posting.going else posting.reuse
        return await self._stored(job)

    def release(self, job: Job) -> None:
        """The job ends (its answer comes, or it was cancelled): its chat is quieter."""
        chat_id = int(job.owner.chat_id)
        if (holding := self._holding.pop(job.id, None)) is not None:  # nothing to acknowledge
            holding.answered = True
            holding.due.set()
        self.allowance.ended(chat_id, job.id)
        self.boards.leave(job.id)
        own = self._own.get(chat_id)
        if own is not None:
            own.discard(job.id)
            if not own:
                del self._own[chat_id]

    def forget(self, job_id: int) -> None:
        """The job's answer went: its status message is the answer now."""
        self._known.pop(job_id, None)

    async def _stored(self, job: Job) -> StatusKey | None:
        if job.id in self._known:
            return self._known[job.id]
        key = status.key_of(job.owner)  # stored with the job by an older version
        if key is None:
            parked = await self._parking.peek_pending(KIND, str(job.id))
            key = (int(job.owner.chat_id), int(parked[-1])) if parked else None
        self._remember(job.id, key)
        return key

    def _remember(self, job_id: int, key: StatusKey | None) -> None:
        self._known[job_id] = key
        while len(self._known) > REMEMBERED:
            del self._known[next(iter(self._known))]


async def _logged(showing: Coroutine[Any, Any, None]) -> None:
    try:
        await showing
    except Exception:  # a courtesy: the job goes on, and its answer comes all the same
        log.exception("a job's status could not be shown")


async def _place(
    bot: Bot, chat_id: int, answer_to: int, text: Text, reuse: StatusKey | None
) -> StatusKey | None:
    """``text`` on the message ``reuse`` if it can still take it, else in a new reply."""
    if reuse is not None:
        try:
            if await status.edit(bot, reuse, text):
                return reuse
        except TelegramError as exc:
            log.info("could not take up status message %d again: %s", reuse[1], exc)
    sent = await status.send(bot, chat_id, text, answer_to)
    return chat_id, sent.message_id
