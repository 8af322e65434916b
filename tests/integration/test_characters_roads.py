"""Characters on every road, through the service, the real clients, the fake servers and a real
store (each test on SQLite and on PostgreSQL): a character goes to a road without characters as
its pictures, counted against that road's budget, named in words; a job queued with a character
survives its account going away; a deleted character goes from Flow as well."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections.abc import Sequence
from typing import Any

from bot.core import character_texts
from bot.core.captions import ResultView
from bot.core.character_records import CharacterImage
from bot.core.domain import GenerationRequest, JobState
from bot.core.models_table import ModelTable
from bot.core.people import UserKey
from bot.core.policy import Access
from bot.core.service import Service
from bot.core.service.character_making import Making
from bot.providers.flow import FlowClient
from bot.providers.nbpro import NbproClient
from tests.conftest import FAST, AnyStore, TwoRoads, image_bytes, owner, wait_delivered
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import inline_pictures, prompt_of
from tests.fakes.nbpro_server import FakeNbproServer
from tests.fakes.notifier import RecordingNotifier

ANN = owner("1")
ADMIN = UserKey("console", "99")


def pictures(*colors: str) -> Any:
    async def fetch() -> Sequence[bytes]:
        return [image_bytes(color=c, size=(40, 30)) for c in colors]

    return fetch


def on_flow(store: AnyStore, flow: FakeFlowServer) -> tuple[Service, RecordingNotifier]:
    """A service on Flow alone, refreshing its accounts every 0.1 s, told on the console."""
    service = Service(
        store,
        [FlowClient("test-token", flow.base_url)],
        models=ModelTable.builtin(),
        tuning=dataclasses.replace(FAST, accounts_refresh_seconds=0.1),
        access=Access(admins=frozenset({str(ADMIN)})),
        rng=random.Random(7),
    )
    told = RecordingNotifier()
    service.attach("console", told)
    return service, told


async def test_flow_out_of_credits_moves_a_character_job_to_gemini_with_its_pictures(
    store: AnyStore, flow_then_gemini: TwoRoads
) -> None:
    service, told, flow, gemini = flow_then_gemini
    carol = await service.create_character(ANN, "Carol", images=2, fetch=pictures("red", "blue"))
    flow.fail_next(402, count=100)  # the subscription ran out
    job = await service.submit(
        ANN, "@carol rides @1 past @nobody --model 2 --count 1", images=[image_bytes()]
    )
    await told.wait_answered(job.job_id, timeout=20)
    await wait_delivered(store, job.job_id)
    kept = await store.character_images(carol.id)
    assert told.failed == []
    result = told.result(job.job_id)
    assert {image.ref.provider for image in result.images} == {"gemini"}
    [asked] = gemini.generate_requests()
    # The reference first, then Carol's two pictures, each named in words.
    assert prompt_of(asked) == ("Carol (shown in images 2 and 3) rides image 1 past @nobody")
    sent = inline_pictures(asked)
    assert len(sent) == 3
    assert sent[1:] == [p.data for p in kept]
    caption = ResultView.of(result, service.models, limit=1024).caption
    assert "Characters: Carol" in caption
    assert "via Gemini API" in caption
    # Nothing of the job reached Flow's /images after the 402 but the refused call.
    assert all(r.status == 402 for r in flow.images_requests())


async def test_a_character_job_on_gemini_counts_the_pictures_against_its_budget(
    flow_then_gemini: TwoRoads,
) -> None:
    service, told, flow, gemini = flow_then_gemini
    await service.create_character(ANN, "Carol", images=2, fetch=pictures("red", "blue"))
    # Nano Banana 2 takes 10 pictures on Flow, 14 on Gemini: 2 + 9 fits Gemini only.
    job = await service.submit(
        ANN, "@carol and friends --model 2 --count 1", images=[image_bytes()] * 9
    )
    await told.wait_answered(job.job_id, timeout=20)
    assert {i.ref.provider for i in told.result(job.job_id).images} == {"gemini"}
    assert flow.images_requests() == []
    assert len(inline_pictures(gemini.generate_requests()[-1])) == 11


async def test_nano_banana_pro_net_takes_a_character_as_its_pictures_too(store: AnyStore) -> None:
    async with FakeFlowServer(accounts=["alice@example.com"]) as flow, FakeNbproServer() as nbpro:
        client = NbproClient(nbpro.api_key, nbpro.base_url, media_hosts=("127.0.0.1",))
        service = Service(
            store,
            [FlowClient("test-token", flow.base_url), client],
            models=ModelTable.builtin(),
            tuning=FAST,
            access=Access(admins=frozenset({str(ADMIN)})),
            rng=random.Random(7),
        )
        told = RecordingNotifier()
        service.attach("console", told)
        async with service:
            carol = await service.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
            flow.fail_next(402, count=100)
            job = await service.submit(ANN, "@carol on a boat --model 2 --count 1")
            await told.wait_answered(job.job_id, timeout=20)
            kept = await store.character_images(carol.id)
        assert told.failed == []
        assert {i.ref.provider for i in told.result(job.job_id).images} == {"nbpro"}
        assert [[u.data for u in uploads] for uploads in nbpro.uploads] == [[kept[0].data]]
        asked = nbpro.requests[-1].json
        assert isinstance(asked, dict)
        assert asked["prompt"] == "Carol (shown in image 1) on a boat"


async def test_a_queued_character_job_whose_account_went_away_makes_it_again_where_it_runs(
    store: AnyStore,
) -> None:
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:
        service, told = on_flow(store, flow)
        async with service:
            made = await service.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
            await service.admin(ADMIN, "pause")
            job = await service.submit(ANN, "@carol waves --count 1")
            flow.accounts.remove(made.account)  # the operator dropped that account
            await asyncio.sleep(0.5)  # a few refreshes: the account is gone from the list
            queued = await store.get_job(job.job_id)
            assert queued is not None
            assert queued.state is JobState.QUEUED  # not failed as an unusable reference
            await service.admin(ADMIN, "resume")
            await told.wait_answered(job.job_id, timeout=20)
            # Its copy on the account that went away is deleted there, at a refresh.
            await _until(lambda: flow.deleted_characters == [made.handle])
        assert told.failed == []
        [other] = flow.accounts
        [remade] = [
            r for r in flow.requests if r.method == "POST" and r.path.endswith("/characters")
        ][1:]
        assert remade.account == other
        body = flow.images_requests()[-1].json
        assert isinstance(body, dict)
        assert (body["email"], body["prompt"]) == (other, "@character_1 waves")
        [moved] = await store.characters(ANN.user)
        assert (moved.account, moved.handle) == (other, body["character_1"])
        stored = await store.get_job(job.job_id)
        assert stored is not None
        assert isinstance(stored.request, GenerationRequest)
        assert stored.request.characters[0].account == other  # 🎲 on it goes there


async def test_two_jobs_moving_one_character_to_the_same_account_make_it_there_once(
    store: AnyStore,
) -> None:
    """Both jobs find their character's account gone and run on the one left: the second
    waits for the first's copy instead of asking ``POST /characters`` for another (which the
    first one's render would then see deleted under it)."""
    async with FakeFlowServer(accounts=["alice@example.com", "bob@example.com"]) as flow:
        service, told = on_flow(store, flow)
        async with service:
            made = await service.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
            await service.admin(ADMIN, "pause")
            first = await service.submit(ANN, "@carol waves --count 1")
            second = await service.submit(ANN, "@carol sings --count 1")
            flow.accounts.remove(made.account)  # the operator dropped that account
            await asyncio.sleep(0.5)  # a few refreshes: the account is gone from the list
            await service.admin(ADMIN, "resume")
            await told.wait_answered(first.job_id, second.job_id, timeout=20)
            await _until(lambda: flow.deleted_characters == [made.handle])
            await _until(lambda: _forgotten(store))
        assert told.failed == []
        [other] = flow.accounts
        [remade] = _character_posts(flow)[1:]  # one copy made there, for both jobs
        assert remade.account == other
        [moved] = await store.characters(ANN.user)
        sent = [r.json["character_1"] for r in flow.images_requests()]  # type: ignore[index]
        assert sent == [moved.handle, moved.handle]
        assert flow.deleted_characters == [made.handle]  # the copy both used stays


async def test_one_character_made_again_on_two_accounts_at_once_leaves_no_copy_behind(
    store: AnyStore,
) -> None:
    """Two moves of one character to two different accounts, at the same time: each makes
    its copy, one after the other, and every copy the character doesn't live in any more is
    deleted from its account."""
    accounts = ["alice@example.com", "bob@example.com", "cara@example.com"]
    async with FakeFlowServer(accounts=accounts) as flow:
        client = FlowClient("test-token", flow.base_url)
        async with client:
            making = Making(store, client)
            [alice, bob, cara] = accounts
            picture = image_bytes(color="red")
            handle = await making.make(alice, "Carol", [_kept(picture)])
            carol = await store.add_character(ANN.user, "Carol", alice, handle, [_kept(picture)])
            assert carol is not None
            on_bob, on_cara = await asyncio.gather(
                making.remake(carol, bob), making.remake(carol, cara)
            )
            await making.purge()
        assert on_bob is not None
        assert on_cara is not None
        assert len(_character_posts(flow)) == 3  # made on alice, then once on each
        [now] = await store.characters(ANN.user)
        assert now.handle in (on_bob.handle, on_cara.handle)
        assert sorted(flow.deleted_characters) == sorted(
            {handle, on_bob.handle, on_cara.handle} - {now.handle}
        )
        assert await store.character_deletions() == []


async def test_two_sweeps_at_once_delete_a_deleted_character_upstream_once(
    store: AnyStore,
) -> None:
    """The sweep after a delete and a refresh's sweep meeting: each read the same handle to
    delete, and the second DELETE met the first's 404. One sweep at a time, each reading what
    is left after the one before."""
    async with FakeFlowServer(accounts=["alice@example.com"]) as flow:
        client = FlowClient("test-token", flow.base_url)
        async with client:
            making = Making(store, client)
            picture = image_bytes(color="red")
            handle = await making.make("alice@example.com", "Carol", [_kept(picture)])
            carol = await store.add_character(
                ANN.user, "Carol", "alice@example.com", handle, [_kept(picture)]
            )
            assert carol is not None
            assert await store.delete_character(ANN.user, carol.id)
            await asyncio.gather(making.purge(), making.purge(), making.purge())
        deletes = [r for r in flow.requests if r.method == "DELETE"]
        assert [r.status for r in deletes] == [200]
        assert await store.character_deletions() == []


def _character_posts(flow: FakeFlowServer) -> list[Any]:
    return [r for r in flow.requests if r.method == "POST" and r.path.endswith("/characters")]


def _kept(picture: bytes) -> CharacterImage:
    return CharacterImage(hashlib.sha256(picture).hexdigest(), "image/png", picture)


async def test_a_deleted_character_goes_from_flow_too_and_a_failed_delete_is_tried_again(
    store: AnyStore,
) -> None:
    async with FakeFlowServer(accounts=["alice@example.com"]) as flow:
        service = Service(
            store,
            [FlowClient("test-token", flow.base_url)],
            models=ModelTable.builtin(),
            tuning=dataclasses.replace(FAST, accounts_refresh_seconds=0.2),
            access=Access(admins=frozenset({str(ADMIN)})),
            rng=random.Random(7),
        )
        service.attach("console", RecordingNotifier())
        async with service:
            carol = await service.create_character(ANN, "Carol", images=1, fetch=pictures("red"))
            tom = await service.create_character(ANN, "Tom", images=1, fetch=pictures("blue"))
            assert await service.delete_character(ANN.user, "carol") == (
                character_texts.character_deleted("Carol")
            )
            await _until(lambda: flow.deleted_characters == [carol.handle])
            await _until(lambda: _forgotten(store))  # the answer reaches the bot a little later

            flow.fail_next(503, endpoint="character-delete")  # the upstream is down a moment
            await service.delete_character(ANN.user, "Tom")
            # The user's list is right at once, whatever the upstream said.
            assert await service.characters(ANN.user) == []
            await _until(lambda: flow.deleted_characters == [carol.handle, tom.handle])
            await _until(lambda: _forgotten(store))
        deletes = [r for r in flow.requests if r.method == "DELETE"]
        assert [r.status for r in deletes] == [200, 503, 200]


async def _until(condition: Any, timeout: float = 10.0) -> None:
    """Wait for what the bot does in the background (no event to wait on from outside);
    ``condition`` may be a coroutine (a store read)."""
    async with asyncio.timeout(timeout):
        while not await _truth(condition()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _truth(value: Any) -> bool:
    return bool(await value) if asyncio.iscoroutine(value) else bool(value)


async def _forgotten(store: AnyStore) -> bool:
    """No deleted character's handle is kept any more."""
    return await store.character_deletions() == []
