"""A character on Wireflow, end to end: ``app.run_bot`` as ``python -m bot`` runs it on both
platforms. Characters made on Flow are drawn, after a restart with only Wireflow configured and
a public address, by the same ``@name`` prompts: Wireflow fetches the characters' pictures from
the bot's public listener over signed links, exactly as the store keeps them, and the prompt names
them in words."""

from __future__ import annotations

from pathlib import Path

from bot.core.people import UserKey
from bot.store import open_store
from tests.conftest import as_uploaded
from tests.e2e.bot_process import free_port
from tests.e2e.characters import (
    BLUE,
    RED,
    caption_of,
    create_carol_and_tom,
    draw_on_both,
    flow_then_gemini,
    pictures,
)
from tests.e2e.whole_bot import DC_USER, TG_USER, running, wireflow_env
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.wireflow_server import FakeWireflowServer


async def test_the_same_character_prompt_is_served_by_wireflow_alone_over_links(
    tmp_path: Path,
) -> None:
    async with (
        FakeFlowServer(accounts=["alice@example.com"]) as flow,
        FakeGeminiServer() as gemini,
        running(flow_then_gemini(flow, gemini), tmp_path) as (tg, dc),
    ):
        await create_carol_and_tom(tg, dc)
        await draw_on_both(tg, dc, photos=1)  # on Flow, by the characters' ids
    assert len([r for r in flow.images_requests() if r.status == 200]) == 2

    port = free_port()
    async with (
        FakeWireflowServer(plan="pro") as wireflow,
        running(wireflow_env(wireflow, port), tmp_path) as (tg, dc),
    ):
        await draw_on_both(tg, dc, photos=1)  # the same prompts, Wireflow the only road
        captions = [caption_of(c) for c in pictures(tg)]

    async with open_store(f"sqlite:///{tmp_path}/bot.sqlite3") as store:
        stored = []
        for user, name in (
            (UserKey("telegram", str(TG_USER)), "Carol"),
            (UserKey("discord", str(DC_USER)), "Tom"),
        ):
            [character] = [c for c in await store.characters(user) if c.name == name]
            stored += [p.data for p in await store.character_images(character.id)]
    assert stored == [as_uploaded(RED), as_uploaded(BLUE), as_uploaded(BLUE)]
    bodies = [r.json for r in wireflow.execute_requests()]
    assert [b["nodes"][0]["data"]["params"]["prompt"] for b in bodies] == [  # type: ignore[index]
        "Carol (shown in images 1 and 2) rides a bike",
        "Tom (shown in image 1) rides a bike",
    ]
    links = [
        v
        for b in bodies
        for k, v in b["nodes"][1]["data"]["params"].items()  # type: ignore[index]
        if k.startswith("image")
    ]
    assert all(link.startswith(f"http://127.0.0.1:{port}/references/") for link in links)
    # Exactly the characters' kept bytes, fetched by Wireflow from the bot, link by link.
    assert [(f.url, f.status, f.data) for f in wireflow.fetched] == list(
        zip(links, [200] * 3, stored, strict=True)
    )
    assert "Characters: Carol" in captions[-1]
