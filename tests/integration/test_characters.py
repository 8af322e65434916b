"""Characters through the service, the real Flow client, the fake Flow server and a real store
(each test on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from bot.core import character_texts
from bot.core.buttons import Action, Button
from bot.core.captions import ResultView
from bot.core.errors import InvalidInput
from bot.core.people import Owner, UserKey
from bot.core.service import Service
from bot.providers.flow import FlowClient
from tests.conftest import AnyStore, build_service, image_bytes, owner
from tests.fakes.flow_server import FakeFlowServer, Recorded
from tests.fakes.notifier import RecordingNotifier

ANN = owner("1")


def pictures(*colors: str) -> Any:
    async def fetch() -> Sequence[bytes]:
        return [image_bytes(color=c) for c in colors]

    return fetch


def sent(flow: FakeFlowServer) -> dict[str, Any]:
    request: Recorded = flow.images_requests()[-1]
    assert isinstance(request.json, dict)
    return request.json


def calls(flow: FakeFlowServer, path: str) -> list[Recorded]:
    return [r for r in flow.requests if r.method == "POST" and path in r.path]


async def test_a_character_made_from_two_pictures_is_drawn_by_name(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    made = await service.create_character(ANN, "Carol", images=2, fetch=pictures("red", "blue"))
    assert (made.name, made.account, len(made.images)) == ("Carol", "alice@example.com", 2)
    [created] = calls(flow, "/characters")
    assert isinstance(created.json, dict)
    assert created.json["displayName"] == "Carol"
    assert {"imageReference_1", "imageReference_2"} <= created.json.keys()

    job = await service.submit(ANN, "@carol rides a bike --count 1")
    await told.wait_answered(job.job_id)
    body = sent(flow)
    assert body["prompt"] == "@character_1 rides a bike"
    assert body["character_1"] == made.handle
    assert body["model"] == "nano-banana-2"  # the default (lite) takes no characters
    assert body["email"] == made.account
    view = ResultView.of(told.result(job.job_id), service.models, limit=1024)
    assert "Characters: Carol" in view.caption


async def test_a_character_beside_references_points_at_each(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    made = await service.create_character(ANN, "Tom", images=1, fetch=pictures("red"))
    job = await service.submit(
        ANN,
        "@Tom holds @1 next to @reference_2 --count 1 --model pro",
        images=[image_bytes(color="green"), image_bytes(color="white")],
    )
    await told.wait_answered(job.job_id)
    body = sent(flow)
    assert body["prompt"] == "@character_1 holds @reference_1 next to @reference_2"
    assert body["character_1"] == made.handle
    assert {"reference_1", "reference_2"} <= body.keys()


async def test_an_unknown_name_stays_text_and_the_caption_says_so(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    job = await service.submit(ANN, "@nobody waves, mail jo@example.com --count 1")
    await told.wait_answered(job.job_id)
    body = sent(flow)
    assert body["prompt"] == "@nobody waves, mail jo@example.com"
    assert not [k for k in body if k.startswith("character_")]
    caption = ResultView.of(told.result(job.job_id), service.models, limit=1024).caption
    assert "@nobody: no character of that name, left as text." in caption


@pytest.mark.parametrize(
    ("prompt", "refusal"),
    [
        (
            "@carol @tom with @1 @2 --model pro",
            character_texts.over_budget(4, 8, "Nano Banana Pro", 10),
        ),
        ("@carol --model lite", character_texts.no_characters_on("Nano Banana 2 Lite")),
        ("@character_1 dances", character_texts.forged_marker("@character_1")),
        ("@reference_3 dances --model pro", character_texts.no_such_reference(3, 2)),
    ],
)
async def test_a_prompt_over_the_budget_is_refused_without_an_upstream_call(
    make_service: Any, flow: FakeFlowServer, prompt: str, refusal: str
) -> None:
    service, _ = await make_service()
    await service.create_character(ANN, "Carol", images=2, fetch=pictures("red", "blue"))
    await service.create_character(ANN, "Tom", images=2, fetch=pictures("red", "green"))
    flow.reset_records()
    references = 8 if "@1" in prompt else 2
    with pytest.raises(InvalidInput) as refused:
        await service.submit(ANN, prompt, images=[image_bytes()] * references)
    assert refused.value.message == refusal
    assert flow.requests == []


async def test_names_are_checked_and_one_per_user_before_anything_is_fetched(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, _ = await make_service()
    fetched: list[int] = []

    async def fetch() -> Sequence[bytes]:
        fetched.append(1)
        return [image_bytes()]

    await service.create_character(ANN, "Carol", images=1, fetch=fetch)
    flow.reset_records()
    for name, images, refusal in [
        ("CAROL", 1, character_texts.character_taken("CAROL")),
        ("no spaces", 1, character_texts.bad_character_name("no spaces", 32)),
        ("reference_1", 1, character_texts.bad_character_name("reference_1", 32)),
        ("x" * 33, 1, character_texts.bad_character_name("x" * 33, 32)),
        ("Tom", 3, character_texts.character_count(3)),
    ]:
        with pytest.raises(InvalidInput) as refused:
            await service.create_character(ANN, name, images=images, fetch=fetch)
        assert refused.value.message == refusal
    assert fetched == [1]
    assert flow.requests == []
    # Another user may have a Carol of their own.
    assert await service.create_character(owner("2"), "carol", images=1, fetch=fetch)


async def test_pictures_get_the_checks_references_get(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, _ = await make_service()

    async def fetch() -> Sequence[bytes]:
        return [b"not a picture at all"]

    with pytest.raises(InvalidInput):
        await service.create_character(ANN, "Carol", images=1, fetch=fetch)
    assert await service.characters(ANN.user) == []
    assert calls(flow, "/characters") == []


async def test_list_and_delete(make_service: Any) -> None:
    service, _ = await make_service()
    await service.create_character(ANN, "Tom", images=1, fetch=pictures("red"))
    await service.create_character(ANN, "carol", images=2, fetch=pictures("red", "blue"))
    listed = await service.characters(ANN.user)
    assert [c.name for c in listed] == ["carol", "Tom"]
    assert (await service.character_thumbnail(listed[0]))[:3] == b"\xff\xd8\xff"
    assert await service.delete_character(ANN.user, "TOM") == character_texts.character_deleted(
        "Tom"
    )
    with pytest.raises(InvalidInput) as refused:
        await service.delete_character(ANN.user, "Tom")
    assert refused.value.message == character_texts.no_character("Tom")
    with pytest.raises(InvalidInput):
        await service.delete_character(UserKey("console", "2"), "carol")
    assert [c.name for c in await service.characters(ANN.user)] == ["carol"]


async def test_reroll_and_edit_keep_the_characters(make_service: Any, flow: FakeFlowServer) -> None:
    service, told = await make_service()
    made = await service.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
    first = await service.submit(ANN, "@carol in the rain --count 1")
    await told.wait_answered(first.job_id)
    again = await service.press(ANN, Button(Action.REROLL, first.public_id))
    await told.wait_answered(again.job_id)
    assert sent(flow)["character_1"] == made.handle
    assert sent(flow)["prompt"] == "@character_1 in the rain"
    edit = await service.press(ANN, Button(Action.REUSE, first.public_id, 1), "now smiling")
    await told.wait_answered(edit.job_id)
    assert sent(flow)["character_1"] == made.handle
    assert "reference_1" in sent(flow)


async def test_a_character_on_an_account_gone_is_made_again_on_another_once(
    store: AnyStore,
) -> None:
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:
        made = await _with_service(
            flow, store, lambda s: s.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
        )
        flow.accounts.remove(made.account)  # the operator dropped that account
        flow.reset_records()

        async def use(service: Service) -> Any:
            told = RecordingNotifier()
            service.attach("console", told)
            job = await service.submit(ANN, "@carol waves --count 1")
            await told.wait_answered(job.job_id)
            return told.result(job.job_id)

        await _with_service(flow, store, use)
        [remade] = calls(flow, "/characters")
        assert remade.account == flow.accounts[0]
        assert sent(flow)["email"] == flow.accounts[0]
        assert sent(flow)["character_1"] != made.handle
        [moved] = await store.characters(ANN.user)
        assert (moved.account, moved.handle) == (flow.accounts[0], sent(flow)["character_1"])


async def test_a_character_that_cannot_be_made_again_is_told(store: AnyStore) -> None:
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:
        made = await _with_service(
            flow, store, lambda s: s.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
        )
        flow.accounts.remove(made.account)
        flow.fail_next(400, endpoint="characters")

        async def use(service: Service) -> None:
            with pytest.raises(InvalidInput) as refused:
                await service.submit(ANN, "@carol waves --count 1")
            assert refused.value.message == character_texts.CHARACTER_NOT_MADE

        await _with_service(flow, store, use)
        assert flow.images_requests() == []


async def _with_service(flow: FakeFlowServer, store: AnyStore, act: Any) -> Any:
    async with FlowClient("test-token", flow.base_url) as client:
        service = build_service(store, client)
        service.attach("console", RecordingNotifier())
        async with service:
            return await act(service)


async def test_a_shared_character_is_drawn_by_another_member_there_only(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    made = await service.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
    assert await service.share_character(ANN, "carol") == character_texts.character_shared("Carol")
    member = owner("2")  # the same chat as ANN
    assert [c.name for c in await service.shared_characters(member)] == ["Carol"]
    job = await service.submit(member, "@Carol sings --count 1")
    await told.wait_answered(job.job_id)
    assert sent(flow)["character_1"] == made.handle
    again = await service.press(member, Button(Action.REROLL, job.public_id))
    await told.wait_answered(again.job_id)
    assert sent(flow)["character_1"] == made.handle

    elsewhere = Owner("console", "2", chat_id="another chat")
    job = await service.submit(elsewhere, "@Carol sings --count 1")
    await told.wait_answered(job.job_id)
    assert "character_1" not in sent(flow)


async def test_sharing_is_undone_by_its_owner_or_an_admin_there(make_service: Any) -> None:
    service, _ = await make_service()
    await service.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
    await service.create_character(owner("2"), "carol", images=1, fetch=pictures("blue"))
    await service.share_character(ANN, "Carol")
    with pytest.raises(InvalidInput) as refused:
        await service.share_character(owner("2"), "carol")
    assert refused.value.message == character_texts.shared_name_taken("carol")
    with pytest.raises(InvalidInput) as refused:
        await service.unshare_character(owner("2"), "carol", chat_admin=False)
    assert refused.value.message == character_texts.NOT_YOURS_TO_UNSHARE
    done = await service.unshare_character(owner("2"), "carol", chat_admin=True)
    assert done == character_texts.character_unshared("Carol")
    assert await service.shared_characters(ANN) == []
    await service.share_character(ANN, "Carol")
    assert await service.unshare_character(ANN, "CAROL", chat_admin=False)
    with pytest.raises(InvalidInput) as refused:
        await service.unshare_character(ANN, "carol", chat_admin=False)
    assert refused.value.message == character_texts.not_shared("carol")


async def test_jobs_with_a_character_run_on_its_account(store: AnyStore) -> None:
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:

        async def use(service: Service) -> None:
            told = RecordingNotifier()
            service.attach("console", told)
            made = await service.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
            # Several held at the upstream at once, however slow the machine: unpinned ones
            # spread over both accounts, and the character's stay on its own.
            flow.hold()
            jobs = [await service.submit(owner(str(u)), "a fox --count 1") for u in range(2, 6)]
            jobs += [await service.submit(ANN, f"@carol {n} --count 1") for n in range(3)]
            async with asyncio.timeout(5):
                while len(flow.held) < 4:  # noqa: ASYNC110 - the fake has nothing to await
                    await asyncio.sleep(0.01)
            flow.release()
            await told.wait_answered(*(j.job_id for j in jobs))
            used = {r.json["prompt"]: r.account for r in flow.images_requests()}  # type: ignore[index]
            assert {used[f"@character_1 {n}"] for n in range(3)} == {made.account}
            assert len(set(used.values())) == 2

        await _with_service(flow, store, use)
