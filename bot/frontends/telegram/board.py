"""One status message for a busy chat: the jobs asked there while another is still open, each
with its place or state, in one message edited as they start and end.

Telegram takes about one message a second in a chat (platforms.md, "Flood limits"), and its
answers take that budget first (``outbound``): a status message a job each left the later
commands of a busy chat unacknowledged for seconds, or unacknowledged at all when their
answers overtook them. One message that lists them all acknowledges a command with one edit,
and a burst of them with one. Its edits are coalesced: each is made when its turn comes with
what is true then (``unless_overtaken``), after the answers; a new job's acknowledgement goes
as ``STATUS`` (for a rested chat budget, as a status message waits, or after ``line.PATIENCE``
for any place but the chat's last: a busy chat may not rest for seconds), the rest (a start,
an end, a place counting down) as progress, and only as the chat's ``allowance`` lets them: the
calls its jobs brought that the board's one message did not take go to their starts and ends.

A listed job's answer is a reply of its own and the board drops its line, but the job whose
command the board replies to has its answer take the board's place (``hand_over``), as a
quiet chat's status message does (waiting for it if it is on its way under that command), and
the jobs still listed go on a new board under the latest command (whose job usually ends last,
and takes that one's place). A board with nothing left to list goes.

A chat's board lists only the jobs asked in that chat: a prompt is never shown elsewhere.
Everyone there reads it, so a line says its job's place as it is true for any of them
("2 ahead", never "ahead of you"), in the language of the command that opened it.
Its id is parked (``Parking``, kind ``KIND``, with each job it listed), so that a restarted
process takes it up again: the jobs still open keep their lines, and a board with none left
says it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from telegram import Bot
from telegram.error import TelegramError

from bot.core.cancellation import cancel_until_done
from bot.core.domain import Job, QueueItem
from bot.core.i18n import Language, _, join, reader, reading
from bot.core.ports import Parking
from bot.core.presenters import JobStatus, QueueView
from bot.core.service.api import BotApi
from bot.frontends.telegram import outbound, status, views
from bot.frontends.telegram.allowance import Allowance, Need
from bot.frontends.telegram.line import Overtaken, Urgency
from bot.frontends.telegram.status import StatusKey

log = logging.getLogger(__name__)
KIND = "status.board"  # parked: "<chat id>:<message id>" → each job id it listed
HEADING = _("Jobs in this chat:")


@dataclass
class _Line:
    what: str  # the job's id and its prompt, clipped (or which image it upscales)
    status: str  # its place in the queue, or that it runs, as the whole chat reads it
    answer_to: int | None  # the command that asked for it
    parked: StatusKey | None = None  # the board message its line was parked with
    running: bool = False


@dataclass(eq=False)
class _Going:
    """A board's new message whose turn came: on its way to Telegram, under ``replies_to``'s
    command."""

    replies_to: int
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # Telegram answered


@dataclass(eq=False)
class Board:
    chat_id: int
    reader: Language  # its language: its opener's (a taken-up one's, its earliest job's asker's)
    # Job id → its line; None while its description is on its way (nothing to show yet).
    lines: dict[int, _Line | None] = field(default_factory=dict)
    key: StatusKey | None = None  # the message, once it went
    replies_to: int | None = None  # the job whose command the message replies to
    going: _Going | None = None  # a new message on its way (its answer waits to take its place)
    handed: list[StatusKey] = field(default_factory=list)  # messages answers took: unpark
    version: int = 0  # what it says changes: an edit made before is overtaken
    acknowledge: bool = False  # a job joined since the board last went out: at status urgency
    worth: bool = False  # a job started or left since: a ``CHANGE`` to pay for
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    keeper: asyncio.Task[None] | None = None

    def change(self, *, joined: bool = False, worth: bool = False) -> None:
        self.version += 1
        self.acknowledge |= joined
        self.worth |= worth
        self.changed.set()

    def need(self) -> Need:
        """What saying what it says now is worth (``allowance``): an acknowledgement, or the
        removal of a board with nothing left to list, always."""
        if self.acknowledge or not self.lines:
            return Need.ACKNOWLEDGE
        return Need.CHANGE if self.worth else Need.REFRESH

    def catch_up(self, places: Mapping[int, JobStatus]) -> None:
        """Each line's status as ``places`` says it is now (for the jobs they know waiting or
        running: the others keep what they were told)."""
        for job_id, line in self.lines.items():
            shown = places.get(job_id)
            if line is not None and shown is not None and (shown.running or shown.position):
                line.status, line.running = shown.for_all, shown.running

    def text(self) -> str:
        """Its lines, or the newest that fit in a message (a group's members can list more):
        an ellipsis stands for the older ones, each shown when it was asked."""
        shown = [join(" — ", [ln.what, ln.status]) for ln in self.lines.values() if ln is not None]
        room = outbound.MAX_TEXT - _units(HEADING) - _units("\n…")
        fits = 0
        for line in reversed(shown):
            room -= _units(line) + 1
            if room < 0:
                break
            fits += 1
        kept = shown[len(shown) - fits :]
        return join("\n", [HEADING, *(["…"] if fits < len(shown) else []), *kept])


# Where jobs are now, as the service says (``BotApi.statuses``).
Places = Callable[[Collection[int]], Mapping[int, JobStatus]]


class Boards:
    def __init__(self, parking: Parking, allowance: Allowance, places: Places) -> None:
        self._parking = parking
        self._allowance = allowance
        self._places = places
        self._boards: dict[int, Board] = {}
        self._listed: dict[int, Board] = {}  # job id → the board that lists it

    def open_in(self, chat_id: int) -> bool:
        return chat_id in self._boards

    def reserve(self, bot: Bot, chat_id: int, job_id: int) -> None:
        """Job ``job_id``, just queued in ``chat_id``, goes on the chat's board (its line once
        ``describe`` says what it is). Call before awaiting anything after the queueing."""
        board = self._boards.get(chat_id)
        if board is None:
            board = self._boards[chat_id] = Board(chat_id, reader())
            # Sent in the context of the command that opened it: its sender.
            board.keeper = asyncio.create_task(self._keep(bot, board))
        board.lines[job_id] = None
        self._listed[job_id] = board

    def describe(self, job: Job, shown: JobStatus) -> None:
        """The line of a reserved job: its id, prompt and ``shown`` (its place)."""
        board = self._listed.get(job.id)
        if board is None:  # answered already
            return
        [row] = QueueView.of([QueueItem(job, 0)]).rows
        answer_to = status.answer_to(job.owner)
        board.lines[job.id] = _Line(join(" ", [row.ref, row.what]), shown.for_all, answer_to)
        board.change(joined=True)

    def tell(self, job_id: int, shown: JobStatus) -> bool:
        """A listed job's status now; False if no board lists it."""
        board = self._listed.get(job_id)
        if board is None:
            return False
        line = board.lines.get(job_id)
        if line is not None and line.status != shown.for_all:
            started = shown.running and not line.running
            line.status, line.running = shown.for_all, shown.running
            board.change(worth=started)
        return True

    async def hand_over(self, job_id: int) -> StatusKey | None:
        """The board's message, for the job's answer to take its place, if it replies to the
        job's command (once Telegram has it, if it is on its way); else None. The jobs it still
        lists go on a new board, under the latest command, whose job is usually the last to
        end: its answer takes that one's place."""
        board = self._listed.get(job_id)
        if board is None:
            return None
        going = board.going
        if going is not None and going.replies_to == job_id:  # a picture besides it: 2 calls
            await going.arrived.wait()
        if board.key is None or board.replies_to != job_id:
            return None
        key, board.key = board.key, None
        board.handed.append(key)
        board.worth = True  # the others are shown nowhere until it went
        return key

    def leave(self, job_id: int) -> None:
        """The job was answered or cancelled: its line goes."""
        board = self._listed.pop(job_id, None)
        if board is not None and board.lines.pop(job_id, None) is not None:
            board.change(worth=True)

    async def take_up(self, bot: Bot, service: BotApi) -> None:
        """After a restart: each chat's latest board a previous run left lists the chat's
        jobs still open, and a board with none left says it is done (a removal could take a
        picture away: the last job's answer may have taken its place)."""
        chats: dict[int, list[tuple[StatusKey, list[int]]]] = {}
        for parked in await self._parking.pending_keys(KIND, 0.0):
            chat, _, message = parked.partition(":")
            values = await self._parking.peek_pending(KIND, parked)
            jobs = [int(job) for value in values for job in value.split(",")]
            chats.setdefault(int(chat), []).append(((int(chat), int(message)), jobs))
        for chat_id, boards in chats.items():
            key = max(key for key, _ in boards)
            taken = sorted({job for _, listed in boards for job in listed})
            for job_id in taken:  # before anything is awaited: an answer meanwhile leaves
                self.reserve(bot, chat_id, job_id)
            board = self._boards[chat_id]
            board.key = key
            found = [await service.job(job_id) for job_id in taken]
            still = {j.id: j for j in found if j is not None and not j.state.final}
            if still:  # whoever opened it is unknown now: its earliest job's asker stands in
                board.reader = await service.reader(next(iter(still.values())).owner.user)
            for job_id in taken:
                if (job := still.get(job_id)) is not None:
                    self.describe(job, JobStatus(job.is_upscale))
                    if (line := board.lines.get(job_id)) is not None:
                        line.parked = key  # parked with it already
                else:
                    self.leave(job_id)
            if not board.lines:
                board.key = None
            board.change()
            for old, _ in boards:
                if old != board.key:
                    with contextlib.suppress(TelegramError), reading(board.reader):
                        await status.edit(bot, old, views.DONE)
                    await self._parking.take_pending(KIND, parked_as(old))

    async def close(self) -> None:
        await cancel_until_done([b.keeper for b in self._boards.values() if b.keeper])

    async def _keep(self, bot: Bot, board: Board) -> None:
        """Keep ``board`` saying what is true, one request at a time, until it lists nothing."""
        while True:
            await board.changed.wait()
            board.changed.clear()
            if not board.lines and board.key is None:
                del self._boards[board.chat_id]  # nothing awaited since the check: none joined
            for key in board.handed:  # now an answer: a restart must not take it up
                await self._parking.take_pending(KIND, parked_as(key))
            board.handed.clear()
            if self._boards.get(board.chat_id) is not board:
                return
            need = board.need()
            if not self._allowance.allows(board.chat_id, need):
                continue  # said with the next change the chat can pay for
            version, acknowledge, worth = board.version, board.acknowledge, board.worth
            board.acknowledge = board.worth = False
            urgency = Urgency.STATUS if acknowledge else Urgency.PROGRESS
            due = board_due(board, version, self._allowance, need)
            try:
                with reading(board.reader), outbound.at(urgency), outbound.unless_overtaken(due):
                    await self._say(bot, board, due)
            except Overtaken:  # it changed while waiting its turn, or can't be paid for now
                board.acknowledge |= acknowledge
                board.worth |= worth
                board.changed.set()
            except TelegramError as exc:  # a courtesy: the answers go all the same
                log.warning("chat %d: the board could not be updated (%s)", board.chat_id, exc)
                if not board.lines:
                    board.key = None
                    board.changed.set()
            except Exception:
                log.exception("chat %d: the board could not be updated", board.chat_id)

    async def _say(self, bot: Bot, board: Board, due: Callable[[], bool]) -> None:
        """One request: the board sent, edited or removed, as its lines say now (``due``: what
        its turn asks)."""
        shown = [(job, line) for job, line in board.lines.items() if line is not None]
        key = board.key
        if not shown:
            if key is not None and not board.lines:
                await status.clear(bot, key)
                await self._parking.take_pending(KIND, parked_as(key))
                board.key = None
                board.changed.set()
            return

        def now() -> str:  # at its turn: the places the jobs have when it goes
            board.catch_up(self._places(board.lines.keys()))
            return board.text()

        with outbound.written_at_turn(now):
            if key is None or not await status.edit(bot, key, board.text()):
                key = await self._send(bot, board, shown[-1], due)
        new = [(job, line) for job, line in shown if line.parked != key]
        if new and board.key == key:  # where a restart finds the board (unless answered)
            for _job, line in new:
                line.parked = key
            await self._parking.add_pending(KIND, parked_as(key), ",".join(str(j) for j, _ in new))

    async def _send(
        self, bot: Bot, board: Board, last: tuple[int, _Line], due: Callable[[], bool]
    ) -> StatusKey:
        """The board as a new message under ``last``'s command (the latest: its job usually
        ends last, and its answer takes the board's place); where it is."""
        job_id, line = last
        going = _Going(job_id)

        def sending() -> bool:  # from its turn until Telegram answers: its answer waits
            board.going = going if due() else None
            return board.going is not None

        try:
            with outbound.unless_overtaken(sending):
                sent = await status.send(bot, board.chat_id, board.text(), line.answer_to)
            key = board.key = (board.chat_id, sent.message_id)
            board.replies_to = job_id
        finally:
            board.going = None
            going.arrived.set()
        return key


def board_due(board: Board, version: int, allowance: Allowance, need: Need) -> Callable[[], bool]:
    """Asked at a request's turn: whether the board still says what it said at ``version``,
    and the chat pays for it."""
    return lambda: board.version == version and allowance.take(board.chat_id, need)


def _units(text: str) -> int:
    """``text``'s length as its reader reads it, counted as Telegram counts: UTF-16 units."""
    return len(reader().render(text).encode("utf-16-le")) // 2


def parked_as(key: StatusKey) -> str:
    """The key a board's jobs are parked under."""
    return f"{key[0]}:{key[1]}"
