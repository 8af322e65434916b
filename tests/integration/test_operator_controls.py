"""What the operator's admins (/admin) and a server's admins (/server, /group) set, as the
service obeys it: stored (both stores), at once, recorded with who and when; and the images a
user sees left, given back when a job makes none."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from bot.core import admin_texts, option_texts, rules_texts, texts
from bot.core.buttons import Action, Button
from bot.core.domain import JobState
from bot.core.errors import InvalidInput
from bot.core.people import Owner, UserKey
from bot.core.policy import Limits
from bot.core.service import Service
from bot.core.service.rules import today
from bot.core.stats import StatsView
from bot.providers.flow import FlowClient
from tests.conftest import AnyStore, build_service, owner
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.notifier import RecordingNotifier

ADMIN = UserKey("console", "99")


async def refusal(service: Service, who: Owner, prompt: str) -> str:
    with pytest.raises(InvalidInput) as refused:
        await service.submit(who, prompt)
    return refused.value.message


async def test_someone_not_an_admin_learns_nothing(make_service: Any) -> None:
    service, _ = await make_service()
    for line in ("stats", "ban console:2", "pause", "nonsense", "", "quota default 5"):
        with pytest.raises(InvalidInput) as refused:
            await service.admin(UserKey("console", "1"), line)
        assert refused.value.message == admin_texts.ADMIN_ONLY
    assert not await service.store.is_banned(UserKey("console", "2"))
    assert not await service.store.paused()
    with pytest.raises(InvalidInput) as usage:
        await service.admin(ADMIN, "nonsense")
    assert usage.value.message == admin_texts.ADMIN_USAGE  # an admin is told what there is


async def test_a_ban_refuses_everything_and_cancels_what_waits(make_service: Any) -> None:
    service, told = await make_service()
    assert await service.admin(ADMIN, "pause") == admin_texts.PAUSED
    waiting = await service.submit(owner("2"), "a fox --count 1")
    assert waiting.paused
    answer = await service.admin(ADMIN, "ban console:2")
    assert answer == admin_texts.banned(UserKey("console", "2"), 1, changed=True)
    await told.wait_answered(waiting.job_id)
    assert told.failure(waiting.job_id) == rules_texts.CANCELLED_BY_ADMIN
    assert await refusal(service, owner("2"), "another fox") == rules_texts.BANNED
    with pytest.raises(InvalidInput) as pressed:
        await service.press(owner("2"), Button(Action.REROLL, waiting.public_id))
    assert pressed.value.message == texts.JOB_NOT_FOUND  # nothing to press: it was cancelled
    assert await service.admin(ADMIN, "ban 2") == admin_texts.banned(
        UserKey("console", "2"), 0, changed=False
    )
    with pytest.raises(InvalidInput) as refused:
        await service.admin(ADMIN, "ban console:99")
    assert refused.value.message == admin_texts.not_bannable(ADMIN)
    with pytest.raises(InvalidInput) as refused:
        await service.admin(ADMIN, "ban telegram:someone")
    assert refused.value.message == admin_texts.ADMIN_WHO
    await service.admin(ADMIN, "unban console:2")
    await service.admin(ADMIN, "resume")
    again = await service.submit(owner("2"), "a fox --count 1")
    await told.wait_answered(again.job_id)
    assert told.result(again.job_id).images


async def test_quotas_for_one_user_and_for_everyone(make_service: Any) -> None:
    service, told = await make_service(limits=Limits(daily_images_per_user=10))
    assert await service.admin(ADMIN, "quota console:2 2") == admin_texts.quota_set(
        UserKey("console", "2"), 2, 10
    )
    first = await service.submit(owner("2"), "a fox --count 2")
    assert await refusal(service, owner("2"), "a fox --count 1") == option_texts.daily_quota(2)
    await service.admin(ADMIN, "quota default 1")
    assert await refusal(service, owner("3"), "a fox --count 2") == option_texts.daily_quota(1)
    assert await service.admin(ADMIN, "quota console:2 default") == admin_texts.quota_set(
        UserKey("console", "2"), None, 1
    )
    await told.wait_answered(first.job_id)
    assert await service.admin(ADMIN, "quota console:2") == admin_texts.quota_shown(
        UserKey("console", "2"), 2, 1, own=False
    )
    await service.admin(ADMIN, "quota default 0")  # no limit at all
    await service.submit(owner("3"), "a fox --count 4")
    for bad in ("quota console:2 many", "quota default", "quota console:2 -1"):
        with pytest.raises(InvalidInput) as refused:
            await service.admin(ADMIN, bad)
        assert refused.value.message in (admin_texts.ADMIN_IMAGES, admin_texts.ADMIN_WHO)


async def test_blocked_words_are_whole_words_in_any_case(
    store: AnyStore, flow: FakeFlowServer
) -> None:
    async with FlowClient("test-token", flow.base_url) as client:
        seeded = ("red fox", "ugly")
        async with build_service(store, client, blocked_words=seeded) as service:
            told = RecordingNotifier()
            service.attach("console", told)
            assert await refusal(service, owner(), "a RED\n fox, running") == rules_texts.blocked(
                "RED fox"  # as the prompt is read: its words one space apart
            )
            assert await refusal(service, owner(), "so ugly!") == rules_texts.blocked("ugly")
            await service.submit(owner(), "a redfox and an uglyduckling --count 1")
            assert await service.admin(ADMIN, "unblock  Ugly") == admin_texts.unblocked(
                "ugly", changed=True
            )
            assert await service.admin(ADMIN, "block Grey  Wolf") == admin_texts.blocked_now(
                "grey wolf", changed=True
            )
            assert await refusal(service, owner(), "a grey wolf") == rules_texts.blocked(
                "grey wolf"
            )
            job = await service.submit(owner(), "a wolf --count 1")
            await told.wait_answered(job.job_id)
            await service.admin(ADMIN, "block wolf")
            with pytest.raises(InvalidInput) as pressed:  # a 🎲 runs the old prompt again
                await service.press(owner(), Button(Action.REROLL, job.public_id))
            assert pressed.value.message == rules_texts.blocked("wolf")
        # BOT_BLOCKED_WORDS seeds the list once: what an admin unblocked stays allowed.
        async with build_service(store, client, blocked_words=seeded) as service:
            assert await store.blocked_words() == ["grey wolf", "red fox", "wolf"]
            await service.submit(owner(), "so ugly --count 1")


async def test_a_paused_queue_accepts_and_waits(make_service: Any) -> None:
    service, told = await make_service()
    await service.admin(ADMIN, "pause")
    assert await service.admin(ADMIN, "pause") == admin_texts.ALREADY_PAUSED
    submitted = await service.submit(owner(), "a fox --count 1")
    assert submitted.paused
    [item] = await service.queue(owner().user)
    assert item.paused
    stats = await service.admin(ADMIN, "stats")
    assert isinstance(stats, StatsView)
    assert (stats.queued, stats.paused) == (1, True)
    assert await service.admin(ADMIN, "resume") == admin_texts.RESUMED
    await told.wait_answered(submitted.job_id)


async def test_an_admin_cancels_a_users_waiting_jobs(make_service: Any) -> None:
    service, told = await make_service()
    await service.admin(ADMIN, "pause")
    jobs = [await service.submit(owner("5"), f"fox {n} --count 1") for n in range(3)]
    answer = await service.admin(ADMIN, "cancel console:5")
    assert answer == admin_texts.cancelled_jobs(UserKey("console", "5"), 3)
    await told.wait_answered(*(job.job_id for job in jobs))
    assert {told.failure(job.job_id) for job in jobs} == {rules_texts.CANCELLED_BY_ADMIN}
    assert await service.store.images_on(UserKey("console", "5"), today()) == 0


async def test_an_admin_cancels_a_running_job_too(make_service: Any, flow: FakeFlowServer) -> None:
    service, told = await make_service()
    flow.latency = 0.5
    running = await service.submit(owner("5"), "a fox --count 2")
    await until_running(service, running.job_id)
    answer = await service.admin(ADMIN, "cancel console:5")
    assert answer == admin_texts.cancelled_jobs(UserKey("console", "5"), 1)
    await told.wait_answered(running.job_id)
    assert told.failure(running.job_id) == rules_texts.CANCELLED_BY_ADMIN
    async with asyncio.timeout(5):  # the call ends: what it made is thrown away, not sent
        while any(account.in_flight for account in service.snapshot().accounts):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert told.answers(running.job_id) == 1
    assert await service.store.images_on(UserKey("console", "5"), today()) == 2  # it was made


async def test_stats_say_what_happened_today_and_who_did_what(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    done = await service.submit(owner("2"), "a fox --count 2")
    await told.wait_answered(done.job_id)
    flow.fail_next(400)
    failed = await service.submit(owner("3"), "a fox --count 1")
    await told.wait_answered(failed.job_id)
    await service.admin(ADMIN, "block ugly")
    await service.admin(ADMIN, "ban console:4")
    stats = await service.admin(ADMIN, "stats")
    assert isinstance(stats, StatsView)
    assert dict(stats.states) == {
        "queued": 0,
        "running": 0,
        "done": 1,
        "failed": 1,
        "cancelled": 0,
    }
    assert dict(stats.outcomes) == {"done": 1, "refused": 1}
    assert stats.top_users == ((UserKey("console", "2"), 2),)  # the failure gave its image back
    [account] = stats.accounts
    assert (account.name, account.limit, account.in_flight, account.serving) == (
        "alice@example.com",
        3,
        0,
        True,
    )
    assert [(e.actor, e.action, e.target) for e in stats.recent] == [
        ("console:99", "ban", "console:4"),
        ("console:99", "block", "ugly"),
    ]
    text = "\n".join(line for _, lines in stats.sections() for line in lines)
    assert "alice@example.com: 0 of 3 in flight, serving" in text
    assert "console:2: 2" in text


# Images given back: every way a job can end without images (both stores).


async def used(service: Service, user: str = "1") -> int:
    return await service.store.images_on(UserKey("console", user), today())


async def test_a_failed_job_gives_its_images_back(make_service: Any, flow: FakeFlowServer) -> None:
    service, told = await make_service()
    flow.fail_next(400)
    submitted = await service.submit(owner(), "a fox --count 3")
    assert await used(service) == 3
    await told.wait_answered(submitted.job_id)
    assert await used(service) == 0
    # A failure recorded twice gives back once.
    assert not await service.store.fail_job(submitted.job_id, "again")
    assert await used(service) == 0


async def test_a_moderated_job_gives_its_images_back(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    flow.fail_next(500, count=10)
    submitted = await service.submit(owner(), "a fox --count 2 --model pro")
    await told.wait_answered(submitted.job_id)
    assert told.failure(submitted.job_id) == texts.moderated(texts.naming("console"))
    assert await used(service) == 0


async def test_a_cancelled_job_gives_its_images_back(make_service: Any) -> None:
    service, _ = await make_service()
    await service.admin(ADMIN, "pause")
    submitted = await service.submit(owner(), "a fox --count 4")
    assert await used(service) == 4
    await service.cancel(owner().user, submitted.job_id)
    assert await used(service) == 0


async def test_a_job_cancelled_while_it_runs_still_counts(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, _ = await make_service()
    flow.latency = 0.5
    submitted = await service.submit(owner(), "a fox --count 2")
    await until_running(service, submitted.job_id)
    await service.cancel(owner().user, submitted.job_id)
    assert await used(service) == 2  # the upstream makes (and bills) it all the same
    with pytest.raises(InvalidInput):  # and the images it makes are thrown away
        await service.press(owner(), Button(Action.REROLL, submitted.public_id))


async def test_done_jobs_and_upscales_count(make_service: Any) -> None:
    service, told = await make_service()
    done = await service.submit(owner(), "a fox --count 2 --model 2")
    await told.wait_answered(done.job_id)
    up = await service.press(owner(), Button(Action.UPSCALE, done.public_id, 1))
    await told.wait_answered(up.job_id)
    assert await used(service) == 3
    info = await service.info(owner())
    assert (info.today.used, info.today.limit, info.today.left) == (3, 0, None)


async def test_info_says_what_is_used_and_left(make_service: Any, flow: FakeFlowServer) -> None:
    service, told = await make_service(limits=Limits(daily_images_per_user=10))
    await service.update_settings(owner().user, model="pro")
    done = await service.submit(owner(), "a fox --count 3")
    await told.wait_answered(done.job_id)
    await service.admin(ADMIN, "pause")
    waiting = await service.submit(owner(), "a cat --count 2")
    info = await service.info(owner())
    assert (info.today.used, info.today.left) == (5, 5)
    assert info.here is None
    assert [row.public_id for row in info.queue.rows] == [waiting.public_id]
    assert info.settings["model"].current == "nano-banana-pro"
    assert info.usage == rules_texts.usage(5, 10)
    assert "5 of your 10 images; 5 left" in info.usage


# A server's admins (the front end vouches for them).


def member(user: str, chat: str = "general", *, parent: str | None = None) -> Owner:
    return Owner("discord", user, chat, server="guild", parent=parent)


async def test_a_servers_settings_hold_there_at_once(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    service.attach("discord", told)
    boss = member("7")
    panel = await service.update_server(boss, enabled=False)
    assert not panel.settings.enabled
    assert await refusal(service, member("1"), "a fox") == rules_texts.switched_off("discord")
    await service.submit(Owner("discord", "1", "dm"), "elsewhere it works --count 1")

    await service.update_server(boss, enabled=True, channels=("art",))
    assert await refusal(service, member("1"), "a fox") == rules_texts.CHANNEL_OFF
    in_thread = await service.submit(member("1", "thread-9", parent="art"), "ok --count 1")

    await service.update_server(boss, model="pro", daily_images=3)
    here = await service.submit(member("1", "art"), "a fox --count 2")  # the thread's job: 1
    assert await refusal(
        service, member("1", "art"), "a fox --count 1"
    ) == rules_texts.server_quota(3)
    await told.wait_answered(in_thread.job_id, here.job_id)
    sent = flow.images_requests()[-1].json
    assert isinstance(sent, dict)
    assert sent["model"] == "nano-banana-pro"  # the server's default, under the member's own
    info = await service.info(member("1", "art"))
    assert info.here is not None
    assert (info.here.used, info.here.limit, info.here.left) == (3, 3, 0)
    with pytest.raises(InvalidInput):
        await service.update_server(boss, model="dalle")

    audit = await service.store.audit_log(10)
    assert audit[0].actor == "discord:7"
    assert audit[0].target == "discord:guild daily_images=3 model=pro"
    assert (await service.server_panel(member("1"))).settings.channels == ("art",)
    with pytest.raises(InvalidInput) as refused:
        await service.server_panel(Owner("discord", "7", "dm"))
    assert refused.value.message == rules_texts.SERVER_ONLY


async def test_a_server_can_keep_buttons_to_the_one_who_asked(make_service: Any) -> None:
    service, told = await make_service()
    service.attach("discord", told)
    await service.update_server(member("7"), shared_buttons=False)
    asked = await service.submit(member("1"), "a fox --count 1 --model 2")
    await told.wait_answered(asked.job_id)
    reroll = Button(Action.REROLL, asked.public_id)
    with pytest.raises(InvalidInput) as refused:
        await service.press(member("2"), reroll)
    assert refused.value.message == rules_texts.NOT_YOUR_BUTTONS
    mine = await service.press(member("1"), reroll)
    admins = await service.press(replace(member("99"), platform="console"), reroll)
    await told.wait_answered(mine.job_id, admins.job_id)
    await service.update_server(member("7"), shared_buttons=True)
    await service.press(member("2"), reroll)


async def until_running(service: Service, job_id: int) -> None:
    """Until the job's call upstream has begun ("running" is stored beside it)."""
    async with asyncio.timeout(5):
        while (job := await service.store.get_job(job_id)) is None or (  # noqa: ASYNC110
            job.state is not JobState.RUNNING
        ):
            await asyncio.sleep(0.01)
