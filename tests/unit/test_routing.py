"""Which roads may serve a request, in the operator's order: pure, from the model table."""

from __future__ import annotations

from bot.core import routing
from bot.core.character_records import CharacterRef
from bot.core.domain import GenerationRequest, ImageRef, Upload
from bot.core.models_table import ModelTable

ALL = ("flow", "gemini", "nbpro", "wireflow")
# Roads that take a picture a user sent: Flow uploads it, Gemini and nbpro take the bytes.
PICTURES = frozenset({"flow", "gemini", "nbpro"})


def table(*roads: str) -> ModelTable:
    return ModelTable.builtin().serving(roads or ALL)


def roads_for(request: GenerationRequest, models: ModelTable | None = None) -> list[str]:
    models = models or table()
    spec = models.resolve(request.model)
    assert spec is not None
    return [o.provider for o in routing.serving(spec, request, PICTURES)]


def ask(model: str = "nano-banana-2", **fields: object) -> GenerationRequest:
    base: dict[str, object] = {
        "prompt": "a fox",
        "model": model,
        "aspect_ratio": "1:1",
        "count": 1,
        "seed": 5,
    }
    return GenerationRequest(**{**base, **fields})  # type: ignore[arg-type]


def test_every_road_serving_the_model_in_the_operators_order() -> None:
    assert roads_for(ask()) == ["flow", "gemini", "nbpro", "wireflow"]
    assert roads_for(ask(), table("wireflow", "gemini")) == ["wireflow", "gemini"]


def test_a_model_only_one_road_has_goes_only_there() -> None:
    assert roads_for(ask("nano-banana-2-lite")) == ["flow"]
    assert roads_for(ask("nano-banana-1")) == ["gemini", "wireflow"]


def test_a_ratio_flow_lacks_skips_flow() -> None:
    assert roads_for(ask(aspect_ratio="21:9")) == ["gemini", "nbpro", "wireflow"]
    assert roads_for(ask(aspect_ratio="4:1")) == ["gemini"]  # Nano Banana 2's extra ratios


def test_a_size_flow_does_not_render_skips_flow() -> None:
    assert roads_for(ask(size="4K")) == ["gemini", "nbpro", "wireflow"]


def test_an_asked_seed_goes_only_where_seeds_are_taken() -> None:
    assert roads_for(ask(fixed_seed=True)) == ["flow", "gemini"]


def test_a_users_picture_goes_only_where_pictures_are_taken() -> None:
    request = ask(references=(Upload("ab" * 32, "image/png"),))
    assert roads_for(request) == ["flow", "gemini", "nbpro"]  # Wireflow takes only its own


def test_an_image_a_road_made_ties_the_job_to_that_road() -> None:
    gemini_made = ask(references=(ImageRef("", "gemini", "gemini"),))
    assert roads_for(gemini_made) == ["gemini"]
    made_there = ImageRef("https://cdn.atomu.ai/x.png", "wireflow", "wireflow")
    wireflow_made = ask(references=(made_there,))
    assert roads_for(wireflow_made) == ["wireflow"]


def test_more_references_than_a_road_takes_skips_that_road() -> None:
    four = tuple(Upload(f"{i:064x}", "image/png") for i in range(4))
    assert roads_for(ask("nano-banana-1", references=four[:3])) == ["gemini"]
    assert roads_for(ask("nano-banana-1", references=four)) == []
    eleven = tuple(Upload(f"{i:064x}", "image/png") for i in range(11))
    assert roads_for(ask(references=eleven)) == ["gemini", "nbpro"]  # Flow takes ten


def test_auto_ratio_needs_a_reference_and_a_road_that_reads_it() -> None:
    assert roads_for(ask(aspect_ratio="auto")) == []
    with_ref = ask(aspect_ratio="auto", references=(Upload("cd" * 32, "image/png"),))
    assert roads_for(with_ref) == ["flow", "gemini"]


def test_a_character_goes_only_where_characters_are_and_counts_against_its_budget() -> None:
    carol = CharacterRef(1, "carol", "char-1", "alice@example.com", images=2)
    assert roads_for(ask(characters=(carol,))) == ["flow"]
    assert roads_for(ask("nano-banana-2-lite", characters=(carol,))) == []  # Imagen took none
    nine = tuple(Upload(f"{i:064x}", "image/png") for i in range(9))
    assert roads_for(ask(references=nine[:8], characters=(carol,))) == ["flow"]
    assert roads_for(ask(references=nine, characters=(carol,))) == []  # 9 + 2 > Flow's 10


def test_a_character_goes_as_its_pictures_where_pictures_go_within_that_budget() -> None:
    carol = CharacterRef(1, "carol", "char-1", "alice@example.com", images=2)
    inline = frozenset({"gemini", "nbpro"})

    def roads(request: GenerationRequest, as_pictures: frozenset[str] = inline) -> list[str]:
        spec = table().resolve(request.model)
        assert spec is not None
        return [o.provider for o in routing.serving(spec, request, PICTURES, as_pictures)]

    # Without links to give, Wireflow (which fetches pictures by link) takes no character.
    assert roads(ask(characters=(carol,))) == ["flow", "gemini", "nbpro"]
    nine = tuple(Upload(f"{i:064x}", "image/png") for i in range(9))
    assert roads(ask(references=nine, characters=(carol,))) == ["gemini", "nbpro"]  # 11 > 10
    # With them, it takes a character as links to its pictures, within its budget (14).
    linked = inline | {"wireflow"}
    with_links = PICTURES | {"wireflow"}
    assert roads(ask(characters=(carol,)), linked) == ["flow", "gemini", "nbpro", "wireflow"]
    spec = table().resolve("nano-banana-2")
    assert spec is not None
    for count, served in ((12, ["gemini", "nbpro", "wireflow"]), (13, [])):  # 14 a request
        refs = tuple(Upload(f"{i:064x}", "image/png") for i in range(count))
        request = ask(references=refs, characters=(carol,))
        assert [o.provider for o in routing.serving(spec, request, with_links, linked)] == served
    # An image Flow made ties the request to Flow, characters or not.
    made = ImageRef("media-1", "alice@example.com", "flow")
    assert roads(ask(references=(made,), characters=(carol,))) == ["flow"]
