"""A chat's courtesy traffic is paid from what its jobs brought (``allowance``): one call for
each image asked, besides the answer; acknowledgements always, then starts and ends, then
refreshes only with more to spare than jobs open."""

from __future__ import annotations

import random

from bot.frontends.telegram.allowance import Allowance, Need

CHAT = 42


def test_a_one_image_job_pays_its_acknowledgement_and_nothing_more() -> None:
    allowance = Allowance()
    allowance.asked(CHAT, 1, images=1)
    assert allowance.take(CHAT, Need.ACKNOWLEDGE)
    assert allowance.need(CHAT, 1, running=True) is Need.CHANGE
    assert not allowance.take(CHAT, Need.CHANGE, started=1)  # no "generating"
    assert not allowance.take(CHAT, Need.REFRESH)  # no place counted down
    assert allowance.spare(CHAT) == 0


def test_a_board_acknowledging_jobs_with_one_message_keeps_the_rest_for_starts_and_ends() -> None:
    allowance = Allowance()
    for job in range(1, 6):
        allowance.asked(CHAT, job, images=1)
    assert allowance.take(CHAT, Need.ACKNOWLEDGE)  # one board lists all five
    assert allowance.spare(CHAT) == 4
    # A refresh would take what a start or an end will want: never more to spare than open.
    assert not allowance.allows(CHAT, Need.REFRESH)
    told = 0
    for job in range(1, 6):
        need = allowance.need(CHAT, job, running=True)
        assert need is Need.CHANGE
        told += allowance.take(CHAT, need, started=job)
    assert told == 4
    assert allowance.spare(CHAT) == 0


def test_a_start_is_a_change_once_then_the_seconds_are_a_refresh() -> None:
    allowance = Allowance()
    allowance.asked(CHAT, 1, images=4)  # an album: three to spare once acknowledged
    assert allowance.take(CHAT, Need.ACKNOWLEDGE)
    assert allowance.need(CHAT, 1, running=False) is Need.REFRESH  # its place, anew
    assert allowance.take(CHAT, Need.CHANGE, started=1)
    assert allowance.need(CHAT, 1, running=True) is Need.REFRESH
    assert allowance.take(CHAT, Need.REFRESH)  # 2 to spare, 1 open
    assert not allowance.take(CHAT, Need.REFRESH)  # 1 to spare, 1 open: kept
    assert allowance.spare(CHAT) == 1


def test_an_untold_start_stays_a_change_until_it_is_paid_for() -> None:
    allowance = Allowance()
    allowance.asked(CHAT, 1, images=1)
    allowance.take(CHAT, Need.ACKNOWLEDGE)
    assert not allowance.take(CHAT, Need.CHANGE, started=1)
    allowance.asked(CHAT, 2, images=2)  # a later job brings calls
    assert allowance.take(CHAT, Need.ACKNOWLEDGE)
    assert allowance.need(CHAT, 1, running=True) is Need.CHANGE
    assert allowance.take(CHAT, Need.CHANGE, started=1)
    assert allowance.need(CHAT, 1, running=True) is Need.REFRESH


def test_the_account_goes_with_the_chats_last_open_job() -> None:
    allowance = Allowance()
    allowance.asked(CHAT, 1, images=4)
    allowance.asked(CHAT, 2, images=4)
    allowance.ended(CHAT, 1)
    assert allowance.spare(CHAT) == 8  # what job 1 brought stays with the chat's others
    allowance.ended(CHAT, 2)
    assert allowance.spare(CHAT) == 0
    # Progress for a job this process did not queue (a restart's) is told nothing more; what
    # leaves nothing behind (a board removed) still goes.
    assert not allowance.take(CHAT, Need.CHANGE, started=3)
    assert allowance.take(CHAT, Need.ACKNOWLEDGE)
    allowance.asked(CHAT, 4, images=1)
    assert allowance.spare(CHAT) == 1  # a new account: nothing owed from before


def test_whatever_comes_a_chat_never_pays_more_than_its_jobs_brought() -> None:
    # A long queue's worth of reports in any order: places, starts, seconds, jobs ending,
    # while more jobs come; each job acknowledged once.
    chance = random.Random(11)
    for _ in range(200):
        allowance = Allowance()
        brought = paid = 0
        open_jobs: list[int] = []
        for job in range(1, chance.randint(1, 12)):
            images = chance.choice((1, 1, 1, 2, 4))
            allowance.asked(CHAT, job, images)
            brought += images
            open_jobs.append(job)
            paid += allowance.take(CHAT, Need.ACKNOWLEDGE)
            for _ in range(chance.randint(0, 30)):
                if not open_jobs:
                    break
                one = chance.choice(open_jobs)
                if chance.random() < 0.1:
                    open_jobs.remove(one)
                    allowance.ended(CHAT, one)
                    continue
                running = chance.random() < 0.5
                need = allowance.need(CHAT, one, running=running)
                paid += allowance.take(CHAT, need, started=one if running else None)
        assert paid <= brought
