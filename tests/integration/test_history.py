"""Issue 15 through the service: captions that say what a result is, /show, /history, lineage
and /link — against the fake Flow server and a real store (each test on SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from bot.core import history_texts, texts
from bot.core.buttons import Action, Button
from bot.core.captions import ResultView, caption
from bot.core.errors import InvalidInput
from bot.core.history_views import HISTORY_PAGE, ShowView
from bot.core.people import Owner, UserKey
from bot.core.public_ids import PUBLIC_ID
from bot.core.service.identities import MAX_TRIES
from tests.conftest import image_bytes, wait_delivered
from tests.fakes.notifier import RecordingNotifier

CHAT = "chat"


def member(user: str, chat: str = CHAT, platform: str = "console", name: str = "") -> Owner:
    return Owner(platform, user, chat_id=chat, name=name)


async def test_a_caption_says_id_model_seed_ratio_and_the_start_of_the_prompt(
    make_service: Any,
) -> None:
    service, told = await make_service()
    prompt = "a lighthouse in a storm, " * 20 + "the end"
    made = await service.submit(member("1"), f"{prompt} --model 2 --ar 16:9 --seed 9 --count 1")
    assert re.fullmatch(PUBLIC_ID, made.public_id)
    await told.wait_answered(made.job_id)
    result = told.result(made.job_id)
    shown = ResultView.of(result, service.models, limit=200).caption
    head, quoted = shown.splitlines()
    assert head == f"#{made.public_id} · nano-banana-2 · seed 9 · 16:9"
    assert quoted.startswith("“a lighthouse in a storm")
    assert quoted.endswith("…”")
    assert len(shown) <= 200
    # Where there is room, the whole prompt.
    assert prompt in ResultView.of(result, service.models, limit=4096).caption


async def test_a_press_on_another_members_result_says_whose_and_mentions_nobody(
    make_service: Any,
) -> None:
    service, told = await make_service()
    first = await service.submit(member("1", name="@ana"), "@everyone look --count 1 --model 2")
    await told.wait_answered(first.job_id)
    bob = member("2", name="@bob")
    reroll = await service.press(bob, Button(Action.REROLL, first.public_id))
    upscale = await service.press(bob, Button(Action.UPSCALE, first.public_id, 1))
    own = await service.press(member("1", name="@ana"), Button(Action.REROLL, first.public_id))
    await told.wait_answered(reroll.job_id, upscale.job_id, own.job_id)

    rerolled = caption(told.result(reroll.job_id).job, 1024)
    assert rerolled.splitlines()[-1] == f"from #{first.public_id} · 🎲 by @bob"
    assert "@everyone" not in rerolled  # the prompt's @ is defused: it pings nobody
    assert "@\N{WORD JOINER}everyone" in rerolled
    assert "@ana" not in rerolled
    upscaled = caption(told.result(upscale.job_id).job, 1024)
    assert upscaled.splitlines() == [
        f"#{upscale.public_id} · Upscaled image 1 of #{first.public_id} to 2k · nano-banana-2",
        "⬆️ Upscale 1 by @bob",
    ]
    # Pressing one's own result names nobody.
    assert caption(told.result(own.job_id).job, 1024).splitlines()[-1] == (
        f"from #{first.public_id} · 🎲"
    )


async def test_show_brings_a_job_back_with_buttons_for_whoever_may_see_it(
    make_service: Any,
) -> None:
    service, told = await make_service()
    made = await service.submit(member("1"), "a fox --count 2 --model 2")
    await told.wait_answered(made.job_id)
    elsewhere = member("1", chat="elsewhere")  # the owner, in another chat

    job = await service.show(elsewhere, f"#{made.public_id.upper()}")
    # Where they were posted is stored once the platform took them, just after the answer.
    async with asyncio.timeout(5):
        while not (brought := await service.bring(elsewhere, job)).result.images[0].posted:  # noqa: ASYNC110 — the store is polled
            await asyncio.sleep(0.01)
    assert not brought.missing
    assert [image.index for image in brought.result.images] == [1, 2]
    # This front end holds them already: brought back by reference, not as bytes.
    assert [image.posted for image in brought.result.images] == [
        f"held:{made.job_id}:1",
        f"held:{made.job_id}:2",
    ]
    view = ShowView.of(brought.result, missing=False, limit=1024)
    assert view.text.startswith(f"#{made.public_id} · nano-banana-2")
    assert [b.action for row in view.rows for b in row][-1] is Action.REROLL

    # Shown there, its buttons work there, for anyone there.
    someone = member("5", chat="elsewhere")
    rerolled = await service.press(someone, Button(Action.REROLL, made.public_id))
    await told.wait_answered(rerolled.job_id)
    # Anyone in the chat it was answered in may show it; an admin anywhere.
    assert (await service.show(member("6"), made.public_id)).id == made.job_id
    assert (await service.show(member("99", chat="admin"), made.public_id)).id == made.job_id


async def test_show_of_a_job_without_images_says_what_became_of_it(
    make_service: Any, flow: Any
) -> None:
    service, told = await make_service()
    flow.fail_next(400)
    failed = await service.submit(member("1"), "a fox --count 1")
    await told.wait_answered(failed.job_id)
    job = await service.show(member("1"), failed.public_id)
    brought = await service.bring(member("1"), job)
    view = ShowView.of(brought.result, missing=brought.missing, limit=1024)
    assert view.text.splitlines()[-1] == texts.failed(told.failure(failed.job_id))
    assert view.rows == ()

    done = await service.submit(member("1"), "a cat --count 1")
    await told.wait_answered(done.job_id)
    await wait_delivered(service.store, done.job_id)
    assert await service.store.prune(-1, limit=10)  # past BOT_RETENTION_DAYS
    pruned = await service.bring(member("1"), await service.show(member("1"), done.public_id))
    view = ShowView.of(pruned.result, missing=pruned.missing, limit=1024)
    assert view.text.splitlines()[-1] == history_texts.PRUNED
    assert pruned.result.images == ()
    assert view.rows == ()


async def test_history_pages_newest_first_with_states_and_reasons(
    make_service: Any, flow: Any
) -> None:
    service, told = await make_service()
    made = []
    for n in range(HISTORY_PAGE + 1):
        made.append(await service.submit(member("1"), f"fox number {n} --count 1"))
        await told.wait_answered(made[-1].job_id)
    flow.fail_next(400)
    failed = await service.submit(member("1"), "a refused fox --count 1")
    await told.wait_answered(failed.job_id)
    await service.submit(member("2"), "not mine --count 1")

    first = await service.history(UserKey("console", "1"))
    assert [row.public_id for row in first.rows] == [
        failed.public_id,
        *(m.public_id for m in reversed(made[-(HISTORY_PAGE - 1) :])),
    ]
    assert first.more
    assert first.rows[0].status.startswith("❌ ")
    assert first.rows[1].status == "✅ done"
    assert first.rows[1].show == Button(Action.SHOW, made[-1].public_id)
    assert first.text.splitlines()[0] == "Your jobs, newest first (page 1):"
    assert f"#{made[-1].public_id}" in first.text
    second = await service.history(UserKey("console", "1"), 1)
    assert [row.public_id for row in second.rows] == [m.public_id for m in reversed(made[:2])]
    assert not second.more
    assert (await service.history(UserKey("console", "1"), 5)).text == history_texts.HISTORY_END
    assert (await service.history(UserKey("console", "3"))).text == history_texts.HISTORY_EMPTY


async def test_lineage_across_three_generations(make_service: Any) -> None:
    service, told = await make_service()
    first = await service.submit(member("1"), "a fox --count 2 --model 2")
    await told.wait_answered(first.job_id)
    second = await service.press(member("1"), Button(Action.REROLL, first.public_id))
    await told.wait_answered(second.job_id)
    third = await service.press(member("1"), Button(Action.REUSE, second.public_id, 2), "at dusk")
    await told.wait_answered(third.job_id)

    job = await service.show(member("1"), third.public_id)
    view = ShowView.of((await service.bring(member("1"), job)).result, missing=False, limit=1024)
    assert f"from #{second.public_id} · ✏️ Edit 2" in view.text.splitlines()
    assert view.rows[-1] == (Button(Action.SHOW, second.public_id),)  # its parent, offered
    # The parent's own parent, one press further.
    parent = await service.press_show(member("1"), view.rows[-1][0])
    shown = ShowView.of(
        (await service.bring(member("1"), parent)).result, missing=False, limit=1024
    )
    assert f"from #{first.public_id} · 🎲" in shown.text.splitlines()
    assert shown.rows[-1] == (Button(Action.SHOW, first.public_id),)
    rows = (await service.history(UserKey("console", "1"))).rows
    assert [row.lineage for row in rows] == [
        f"from #{second.public_id} · ✏️ Edit 2",
        f"from #{first.public_id} · 🎲",
        "",
    ]


async def test_linked_accounts_share_history_settings_quota_and_show(
    make_service: Any,
) -> None:
    from bot.core.policy import Limits

    service, _ = await make_service(limits=Limits(daily_images_per_user=3))
    service.attach("telegram", told_tg := RecordingNotifier())
    service.attach("discord", told_dc := RecordingNotifier())
    tg, dc = UserKey("telegram", "42"), UserKey("discord", "555")
    made = await service.submit(member("42", "tg-chat", "telegram"), "a fox --count 2")
    await told_tg.wait_answered(made.job_id)
    await service.update_settings(tg, aspect_ratio="16:9")

    offer = await service.link(tg)
    assert not offer.linked
    code = re.search(r"code: (\S+)", offer.text)
    assert code is not None
    with pytest.raises(InvalidInput, match="same platform"):
        await service.link(UserKey("telegram", "7"), code[1])
    offer = await service.link(tg)  # that try used the code up: a new one
    code = re.search(r"code: (\S+)", offer.text)
    assert code is not None
    joined = await service.link(dc, code[1].upper())
    assert joined.linked

    # History, settings and the day's images are the person's now.
    assert [r.public_id for r in (await service.history(dc)).rows] == [made.public_id]
    assert (await service.settings(dc)).aspect_ratio == "16:9"
    with pytest.raises(InvalidInput, match="today's limit of 3 images"):
        await service.submit(member("555", "dc-chat", "discord"), "more --count 2")
    # A Telegram job shown on Discord: its images fetched through Telegram's front end.
    here = member("555", "dc-chat", "discord")
    brought = await service.bring(here, await service.show(here, made.public_id))
    assert [image.data for image in brought.result.images] == [
        told_tg.held[f"held:{made.job_id}:{i}"] for i in (1, 2)
    ]
    assert brought.result.job.owner.platform == "telegram"  # it keeps where it was answered
    assert not told_dc.finished

    assert (await service.link(dc)).linked  # /link again shows the link
    assert await service.unlink(dc) == history_texts.UNLINKED
    # Unlinked, it is theirs no more: shown only where it was shown already.
    assert (await service.show(here, made.public_id)).id == made.job_id
    with pytest.raises(InvalidInput) as unknown:
        await service.show(member("555", "dc-other", "discord"), made.public_id)
    assert unknown.value.message == history_texts.no_such_job(made.public_id)
    with pytest.raises(InvalidInput, match="isn't linked"):
        await service.unlink(dc)


async def test_a_code_is_tried_a_few_times_only(make_service: Any) -> None:
    service, _ = await make_service()
    code = re.search(r"code: (\S+)", (await service.link(UserKey("telegram", "42"))).text)
    assert code is not None
    guesser = UserKey("discord", "666")
    for n in range(MAX_TRIES):
        with pytest.raises(InvalidInput) as wrong:
            await service.link(guesser, f"aaaa-aaa{n}")
        assert wrong.value.message == history_texts.LINK_BAD_CODE
    with pytest.raises(InvalidInput) as refused:
        await service.link(guesser, code[1])  # even the right one, now
    assert refused.value.message == history_texts.LINK_TOO_MANY
    assert not (await service.store.identity(guesser)).linked


async def test_history_and_show_say_which_characters_a_job_drew(make_service: Any) -> None:
    service, told = await make_service()
    ann = member("1")

    async def fetch() -> list[bytes]:
        return [image_bytes()]

    await service.create_character(ann, "Carol", images=1, fetch=fetch)
    await service.create_character(ann, "Tom", images=1, fetch=fetch)
    made = await service.submit(ann, "@tom and @carol meet @nobody --count 1")
    plain = await service.submit(ann, "a fox --count 1")
    await told.wait_answered(made.job_id, plain.job_id)

    rows = {row.public_id: row for row in (await service.history(ann.user)).rows}
    assert rows[made.public_id].characters == ("Tom", "Carol")
    assert rows[made.public_id].text.endswith(" · characters: Tom, Carol")
    assert "characters" not in rows[plain.public_id].text
    brought = await service.bring(ann, await service.show(ann, made.public_id))
    shown = ShowView.of(brought.result, missing=False, limit=1024).text
    assert "Characters: Tom, Carol" in shown.splitlines()
    assert "@nobody: no character of that name, left as text." in shown
    # Deleting a character later leaves what the job drew as it was.
    await service.delete_character(ann.user, "tom")
    rows = {row.public_id: row for row in (await service.history(ann.user)).rows}
    assert rows[made.public_id].characters == ("Tom", "Carol")
