"""Users' pictures for Wireflow over signed links (``bot.reference_links``), with the real
service, the real ``WireflowClient`` against the fake (which fetches what it is given), the
bot's real HTTP server and a real store (each test on SQLite and on PostgreSQL)."""

from __future__ import annotations

import hashlib
import random

import httpx
import pytest

from bot.core import character_texts
from bot.core.buttons import Action, Button
from bot.core.character_records import CharacterImage
from bot.core.domain import GenerationRequest, Upload
from bot.core.errors import InvalidInput
from bot.core.models_table import ModelTable
from bot.core.people import Owner
from bot.core.service import Service
from bot.reference_links import ReferenceLinks
from bot.store import open_store
from tests.conftest import FAST, AnyStore, as_uploaded, image_bytes, owner, wait_delivered
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.wireflow_server import FakeWireflowServer
from tests.roads import answering, wireflow_client


async def test_wireflow_takes_a_users_picture_by_link_and_again_for_a_new_seed(
    store: AnyStore,
) -> None:
    picture = image_bytes(size=(64, 48), color="navy")
    async with FakeWireflowServer(plan="pro") as wireflow, answering(store, "sk-w") as address:
        links = ReferenceLinks.keyed_by("sk-w", address)
        client = wireflow_client(wireflow)
        async with client:
            service = Service(
                store,
                [client],
                models=ModelTable.builtin(),
                tuning=FAST,
                rng=random.Random(3),
                links=links,
            )
            told = RecordingNotifier()
            service.attach("console", told)
            async with service:
                first = await service.submit(owner(), "a fox --count 1", images=[picture])
                await told.wait_answered(first.job_id, timeout=20)
                await wait_delivered(store, first.job_id)
                again = await service.press(owner(), Button(Action.REROLL, first.public_id, 0))
                await told.wait_answered(again.job_id, timeout=20)
    assert not told.failed
    sent = [r.json["nodes"][1]["data"]["params"]["image1"] for r in wireflow.execute_requests()]  # type: ignore[index]
    assert all(link.startswith(f"{address}/references/") for link in sent)
    assert [(f.url, f.status, f.data) for f in wireflow.fetched] == [
        (sent[0], 200, as_uploaded(picture)),
        (sent[1], 200, as_uploaded(picture)),
    ]
    # The job keeps the user's picture (🎲 links it again), never the link, which expires.
    job = await store.get_job(first.job_id)
    assert job is not None
    assert isinstance(job.request, GenerationRequest)
    [kept] = job.request.references
    assert isinstance(kept, Upload)


async def test_a_link_one_process_made_is_answered_by_another_until_the_picture_is_dropped(
    store: AnyStore, store_url: str
) -> None:
    """Two processes share the store and the configuration: whichever answers the public
    address serves a link the other made; once no job holds the picture, it is a 404."""
    photo = image_bytes(color="olive")
    sha = hashlib.sha256(photo).hexdigest()
    request = GenerationRequest("a fox", "nano-banana-2", "1:1", 1, 5, (Upload(sha, "image/png"),))
    job = await store.add_job(Owner("telegram", "7", "7"), request, {sha: photo}, day="2026-11-26")
    async with (
        open_store(store_url) as other_process,
        answering(other_process, "sk-same-key") as there,
        httpx.AsyncClient(base_url=there) as http,
    ):
        # The public address (a proxy in front of both) is the same for both processes.
        made_here = ReferenceLinks.keyed_by("sk-same-key", "").link(sha)
        answer = await http.get(made_here)
        assert (answer.status_code, answer.content) == (200, photo)
        forged = await http.get(ReferenceLinks.keyed_by("sk-another-key", "").link(sha))
        assert forged.status_code == 404
        await store.cancel_job(job.id)
        assert (await http.get(made_here)).status_code == 404


async def test_a_character_goes_to_wireflow_as_links_to_its_kept_pictures(
    store: AnyStore,
) -> None:
    """A character made on Flow earlier, drawn where only Wireflow serves: its pictures follow
    the user's references as links Wireflow fetches, the prompt naming each image by order."""
    red, blue = image_bytes(color="red"), image_bytes("JPEG", color="blue")
    kept = [CharacterImage(hashlib.sha256(p).hexdigest(), "image/png", p) for p in (red, blue)]
    await store.add_character(owner().user, "Carol", "jo@example.com", "char-1", kept)
    photo = image_bytes(size=(64, 48), color="navy")
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
                job = await service.submit(owner(), "@carol rides @1 --count 1", images=[photo])
                await told.wait_answered(job.job_id, timeout=20)
    assert not told.failed
    [asked] = wireflow.execute_requests()
    nodes = asked.json["nodes"]  # type: ignore[index]
    assert nodes[0]["data"]["params"]["prompt"] == "Carol (shown in images 2 and 3) rides image 1"
    links = [nodes[1]["data"]["params"][f"image{i}"] for i in (1, 2, 3)]
    assert [(f.url, f.status, f.data) for f in wireflow.fetched] == [
        (links[0], 200, as_uploaded(photo)),
        (links[1], 200, red),
        (links[2], 200, blue),
    ]


async def test_without_a_public_address_a_character_on_wireflow_is_refused_naming_the_fix(
    store: AnyStore,
) -> None:
    """The model is not at fault (it takes characters as pictures): the bot has no address to
    link them from, which its operator can give it."""
    picture = image_bytes(color="red")
    carol = [CharacterImage(hashlib.sha256(picture).hexdigest(), "image/png", picture)]
    await store.add_character(owner().user, "Carol", "jo@example.com", "char-1", carol)
    async with FakeWireflowServer(plan="pro") as wireflow:
        client = wireflow_client(wireflow)
        async with client:
            service = Service(store, [client], models=ModelTable.builtin(), tuning=FAST)
            async with service:
                with pytest.raises(InvalidInput) as refused:
                    await service.submit(owner(), "@carol rides a bike --count 1")
    assert refused.value.message == character_texts.CHARACTERS_NEED_ADDRESS
    assert "BOT_PUBLIC_URL" in refused.value.message
    assert wireflow.execute_requests() == []
