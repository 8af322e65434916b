"""A character on a road without characters, end to end: ``app.run_bot`` as ``python -m bot`` runs
it with Flow first and Gemini next, on both platforms. The same ``@name`` prompt is drawn on Flow
by the character's id, and once Flow is out of credits, by Gemini with the character's pictures
inline (the fake Gemini server decodes each as an image), the prompt naming them in words."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import as_uploaded
from tests.e2e.characters import (
    BLUE,
    RED,
    caption_of,
    create_carol_and_tom,
    draw_on_both,
    flow_then_gemini,
    pictures,
)
from tests.e2e.whole_bot import running
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer, inline_pictures, prompt_of


async def test_the_same_character_prompt_goes_to_gemini_as_pictures_when_flow_cannot(
    tmp_path: Path,
) -> None:
    async with (
        FakeFlowServer(accounts=["alice@example.com"]) as flow,
        FakeGeminiServer() as gemini,
        running(flow_then_gemini(flow, gemini), tmp_path) as (tg, dc),
    ):
        await create_carol_and_tom(tg, dc)
        await draw_on_both(tg, dc, photos=1)  # on Flow, by the characters' ids
        flow.fail_next(402, count=100)  # the subscription ran out
        await draw_on_both(tg, dc, photos=2)  # the same prompts, on Gemini

    on_flow = [r.json for r in flow.images_requests() if r.status == 200]
    assert [(b["prompt"], "character_1" in b) for b in on_flow] == [  # type: ignore[index, operator]
        ("@character_1 rides a bike", True),
        ("@character_1 rides a bike", True),
    ]
    asked = gemini.generate_requests()
    assert [prompt_of(r) for r in asked] == [
        "Carol (shown in images 1 and 2) rides a bike",
        "Tom (shown in image 1) rides a bike",
    ]
    # The character's own pictures, as it was made of them (checked and re-encoded once).
    assert [inline_pictures(r) for r in asked] == [
        [as_uploaded(RED), as_uploaded(BLUE)],
        [as_uploaded(BLUE)],
    ]
    captions = [caption_of(c) for c in pictures(tg)]
    assert "via Gemini API" in captions[-1]
    assert "Characters: Carol" in captions[-1]
