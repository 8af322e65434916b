"""What a chat's courtesy traffic may cost: its jobs' acknowledgements and progress, paid from
what its jobs brought.

Telegram takes about one message a second in a chat and thirty in all (platforms.md, "Flood
limits"), sends and edits alike, and issue 11 holds a one-image job to two Bot API calls. So
each job asked in a chat brings its answer (paid apart: it always goes), plus one call for each
image it asks for. A one-image job has one, which its acknowledgement takes (its status
message, or its line on the chat's board): two calls in all, however long the queue. A
four-image job's answer takes two (the album and its keyboard) and its acknowledgement one,
and it has three left for telling that it started and how it goes. The calls a chat has left,
its spare, are spent where they tell most (a board that acknowledges several jobs with one
message leaves the others' for their starts and ends):

- ``ACKNOWLEDGE``: a job shown for the first time, a board with nothing left to list removed:
  always (the job brought the call, or nothing stays behind saying "queued");
- ``CHANGE``: a job started ("generating"), or a line left its board (its answer came), or a
  board said anew under another command: while a call is to spare;
- ``REFRESH``: the same state said anew (a place counting down, the seconds run): only with more
  to spare than the chat has jobs open, so that it never takes the call a start or an end will
  want.

A chat's account lasts while it has jobs open (a restarted process's jobs brought theirs to
the one before: they are answered, and told nothing more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Need(IntEnum):
    ACKNOWLEDGE = 0
    CHANGE = 1
    REFRESH = 2


@dataclass
class _Account:
    spare: int = 0  # calls brought less calls made (below 0 only if a bug spent too much)
    open: set[int] = field(default_factory=set)  # its jobs not yet answered
    started: set[int] = field(default_factory=set)  # those whose start was told


class Allowance:
    def __init__(self) -> None:
        self._chats: dict[int, _Account] = {}

    def asked(self, chat_id: int, job_id: int, images: int) -> None:
        """Job ``job_id`` was queued in ``chat_id``, for ``images`` pictures."""
        account = self._chats.setdefault(chat_id, _Account())
        account.spare += max(1, images)
        account.open.add(job_id)

    def ended(self, chat_id: int, job_id: int) -> None:
        """The job was answered or cancelled: it wants nothing more told."""
        account = self._chats.get(chat_id)
        if account is None:
            return
        account.open.discard(job_id)
        account.started.discard(job_id)
        if not account.open:
            del self._chats[chat_id]

    def need(self, chat_id: int, job_id: int, *, running: bool) -> Need:
        """What telling that ``job_id`` waits or runs is worth: its start, once, a change."""
        account = self._chats.get(chat_id)
        if running and account is not None and job_id not in account.started:
            return Need.CHANGE
        return Need.REFRESH

    def allows(self, chat_id: int, need: Need) -> bool:
        """Whether the chat can pay a call for ``need`` now."""
        if need is Need.ACKNOWLEDGE:
            return True
        account = self._chats.get(chat_id)
        if account is None:  # no job of this process open there
            return False
        if need is Need.CHANGE:
            return account.spare >= 1
        return account.spare > len(account.open)

    def take(self, chat_id: int, need: Need, started: int | None = None) -> bool:
        """Pay a call for ``need`` if the chat can (asked when the call's turn comes: nothing
        runs between the answer and the call going); ``started``: the job whose start it tells."""
        if not self.allows(chat_id, need):
            return False
        account = self._chats.get(chat_id)
        if account is not None:
            account.spare -= 1
            if started is not None:
                account.started.add(started)
        return True

    def spare(self, chat_id: int) -> int:
        """The calls the chat has to spare now (0 with no job open)."""
        account = self._chats.get(chat_id)
        return account.spare if account is not None else 0
