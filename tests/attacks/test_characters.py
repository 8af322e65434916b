"""Characters, as an attacker tries them: another member's private character by name (on Flow,
and on a road that takes its pictures), a forged marker, a press on someone else's result to draw
with their character, a job left waiting to draw a character its owner deleted, names built to
confuse. Each gets a sentence or plain text, and never another user's character on the wire (nor
a link to it)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pytest

from bot.core import character_texts, texts
from bot.core.buttons import Action, Button
from bot.core.character_records import CharacterImage
from bot.core.errors import InvalidInput
from bot.core.models_table import ModelTable
from bot.core.people import Owner, UserKey
from bot.core.policy import Limits
from bot.core.service import Service
from bot.reference_links import ReferenceLinks
from tests.conftest import FAST, AnyStore, TwoRoads, image_bytes, wait_delivered
from tests.e2e.telegram.harness import USER, BotUnderTest, png
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import inline_pictures, prompt_of
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.wireflow_server import FakeWireflowServer
from tests.roads import answering, wireflow_client

ANN = Owner("console", "1", chat_id="group")
MALLORY = Owner("console", "666", chat_id="group")


async def one_picture() -> Sequence[bytes]:
    return [image_bytes()]


def characters_sent(flow: FakeFlowServer) -> list[str]:
    return [
        v
        for r in flow.images_requests()
        if isinstance(r.json, dict)
        for k, v in r.json.items()
        if k.startswith("character_")
    ]


async def test_another_members_private_character_by_name_is_only_text(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    await service.create_character(ANN, "Carol", images=1, fetch=one_picture)
    job = await service.submit(MALLORY, "@carol in a bank vault --count 1")
    await told.wait_answered(job.job_id)
    assert characters_sent(flow) == []
    assert flow.images_requests()[-1].json["prompt"] == "@carol in a bank vault"  # type: ignore[index]


async def test_another_members_private_character_on_gemini_sends_none_of_their_pictures(
    store: AnyStore, flow_then_gemini: TwoRoads
) -> None:
    service, told, flow, gemini = flow_then_gemini
    await service.create_character(ANN, "Carol", images=2, fetch=two_pictures)
    flow.fail_next(402, count=100)  # Gemini serves: characters go as pictures there
    job = await service.submit(MALLORY, "@carol in a bank vault --model 2 --count 1")
    await told.wait_answered(job.job_id, timeout=20)
    await wait_delivered(store, job.job_id)
    [asked] = gemini.generate_requests()
    assert inline_pictures(asked) == []
    assert prompt_of(asked) == "@carol in a bank vault"
    assert characters_sent(flow) == []


async def test_another_members_private_character_on_wireflow_is_never_linked(
    store: AnyStore,
) -> None:
    """Where Wireflow fetches characters' pictures by link, a name that is only another
    member's private character gets no link: nothing of hers is fetched, and the word stays."""
    face = image_bytes(color="pink")
    kept = [CharacterImage(hashlib.sha256(face).hexdigest(), "image/png", face)]
    assert await store.add_character(ANN.user, "Carol", "jo@example.com", "char-1", kept)
    async with FakeWireflowServer(plan="pro") as wireflow, answering(store, "sk-w") as address:
        client = wireflow_client(wireflow)
        async with client:
            service = Service(
                store,
                [client],
                models=ModelTable.builtin(),
                tuning=FAST,
                links=ReferenceLinks.keyed_by("sk-w", address),
            )
            told = RecordingNotifier()
            service.attach("console", told)
            async with service:
                job = await service.submit(MALLORY, "@carol in a bank vault --count 1")
                await told.wait_answered(job.job_id, timeout=20)
    [asked] = wireflow.execute_requests()
    nodes = asked.json["nodes"]  # type: ignore[index]
    assert nodes[0]["data"]["params"]["prompt"] == "@carol in a bank vault"
    assert [k for k in nodes[1]["data"]["params"] if k.startswith("image")] == []
    assert wireflow.fetched == []


async def test_a_character_deleted_while_a_members_job_waits_is_not_drawn(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    await service.create_character(ANN, "Carol", images=1, fetch=one_picture)
    await service.share_character(ANN, "Carol")
    await service.admin(UserKey("console", "99"), "pause")
    job = await service.submit(MALLORY, "@carol at the gate --count 1")
    await service.delete_character(ANN.user, "carol")  # its owner changed their mind
    await service.admin(UserKey("console", "99"), "resume")
    await told.wait_answered(job.job_id)
    assert told.failure(job.job_id) == character_texts.CHARACTER_GONE
    assert flow.images_requests() == []


async def test_a_character_deleted_while_a_job_waits_for_gemini_sends_no_picture(
    flow_then_gemini: TwoRoads,
) -> None:
    service, told, flow, gemini = flow_then_gemini
    await service.create_character(ANN, "Carol", images=1, fetch=one_picture)
    await service.share_character(ANN, "Carol")
    flow.fail_next(402, count=100)
    fox = await service.submit(ANN, "a fox --model 2 --count 1")
    await told.wait_answered(fox.job_id, timeout=20)  # Flow is out: Gemini serves
    await service.admin(UserKey("console", "99"), "pause")
    job = await service.submit(MALLORY, "@carol at the door --model 2 --count 1")
    await service.delete_character(ANN.user, "carol")
    await service.admin(UserKey("console", "99"), "resume")
    await told.wait_answered(job.job_id, timeout=20)
    assert told.failure(job.job_id) == character_texts.CHARACTER_GONE
    assert [prompt_of(r) for r in gemini.generate_requests()] == ["a fox"]


async def two_pictures() -> Sequence[bytes]:
    return [image_bytes(color="red"), image_bytes(color="blue")]


async def test_a_forged_character_marker_is_refused_without_an_upstream_call(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, _ = await make_service()
    await service.create_character(ANN, "Carol", images=1, fetch=one_picture)
    flow.reset_records()
    for forged in ("@character_1 smiles", "@CHARACTER_7 smiles", "x @character_99"):
        with pytest.raises(InvalidInput):
            await service.submit(MALLORY, forged)
    assert flow.requests == []


async def test_a_press_on_someone_elses_result_cannot_draw_their_character(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    await service.create_character(ANN, "Carol", images=1, fetch=one_picture)
    first = await service.submit(ANN, "@carol at home --count 1")
    await told.wait_answered(first.job_id)
    flow.reset_records()
    for button, prompt in [
        (Button(Action.REROLL, first.public_id), None),
        (Button(Action.REUSE, first.public_id, 1), "@carol signs a cheque"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            await service.press(MALLORY, button, prompt)
        assert refused.value.message == character_texts.NOT_YOUR_CHARACTER
    assert flow.requests == []


@pytest.mark.parametrize(
    "name",
    ["character_1", "Reference_2", "@", "", "a b", "carol\u202e", "1abc", "x" * 100, "<b>x</b>"],
)
async def test_a_name_built_to_confuse_is_refused(
    make_service: Any, flow: FakeFlowServer, name: str
) -> None:
    service, _ = await make_service()
    with pytest.raises(InvalidInput):
        await service.create_character(ANN, name, images=1, fetch=one_picture)
    assert flow.requests == [r for r in flow.requests if r.path.endswith("/accounts")]


async def test_a_deleted_character_is_not_drawn_by_an_old_button(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    await service.create_character(ANN, "Carol", images=1, fetch=one_picture)
    first = await service.submit(ANN, "@carol at home --count 1")
    await told.wait_answered(first.job_id)
    await service.delete_character(ANN.user, "carol")
    with pytest.raises(InvalidInput) as refused:
        await service.press(ANN, Button(Action.REROLL, first.public_id))
    assert refused.value.message == character_texts.CHARACTER_GONE


async def test_a_character_shared_in_one_group_is_only_text_in_another(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    await service.create_character(ANN, "Carol", images=1, fetch=one_picture)
    await service.share_character(ANN, "Carol")
    elsewhere = Owner("console", "666", chat_id="another group")
    job = await service.submit(elsewhere, "@carol in a bank vault --count 1")
    await told.wait_answered(job.job_id)
    assert characters_sent(flow) == []


async def test_a_member_cannot_share_or_unshare_someone_elses_character(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, _ = await make_service()
    await service.create_character(ANN, "Carol", images=1, fetch=one_picture)
    with pytest.raises(InvalidInput):
        await service.share_character(MALLORY, "carol")
    await service.share_character(ANN, "Carol")
    with pytest.raises(InvalidInput) as refused:
        await service.unshare_character(MALLORY, "carol", chat_admin=False)
    assert refused.value.message == character_texts.NOT_YOURS_TO_UNSHARE
    with pytest.raises(InvalidInput):
        await service.delete_character(MALLORY.user, "carol")
    assert [c.name for c in await service.shared_characters(MALLORY)] == ["Carol"]


async def test_listing_characters_over_and_over_is_slowed_down(telegram: BotUnderTest) -> None:
    await telegram.start()
    tg = telegram.tg
    await tg.post_photo(USER, USER, png(), caption="/character create Carol")
    await tg.wait_for("sendMessage")
    for _ in range(15):
        await tg.post_message(USER, USER, "/character list")
    slow = texts.failed(texts.SLOW_DOWN)
    await tg.wait_for("sendMessage", predicate=lambda c: c.params.get("text") == slow)
    # The burst a member may press at once (creating counted), not one list per message.
    assert len(tg.calls_of("sendPhoto")) <= Limits().press_burst


async def test_a_lookalike_name_in_two_alphabets_is_refused(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, _ = await make_service()
    with pytest.raises(InvalidInput) as refused:
        await service.create_character(MALLORY, "\u0421arol", images=1, fetch=one_picture)
    assert refused.value.message == character_texts.mixed_scripts("\u0421arol")
    made = await service.create_character(
        MALLORY, "\u041a\u0430\u0440\u043b", images=1, fetch=one_picture
    )
    assert made.name == "Карл"  # one alphabet: a name like any other


async def test_a_name_written_with_a_combining_accent_is_the_same_name(
    make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    made = await service.create_character(ANN, "Ren\u00e9e", images=1, fetch=one_picture)
    job = await service.submit(ANN, "@rene\u0301e smiles --count 1")
    await told.wait_answered(job.job_id)
    assert characters_sent(flow) == [made.handle]
