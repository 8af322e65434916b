"""The provider contract's value types and the one-sentence refusals (no I/O)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.core.models_table import ModelOffer
from bot.core.providers import (
    ImageRequest,
    ProviderLimits,
    ProviderProfile,
    Reference,
    ReferenceMode,
    RenderedImage,
    unfit,
)
from bot.providers import gemini, nbpro, wireflow

OFFER = ModelOffer(
    model="nano-banana-2",
    provider_model="wire-nb2",
    max_references=2,
    aspect_ratios=("1:1", "16:9"),
    sizes=("1K", "2K"),
    images_per_call=4,
    prices=(("1K", 0.05), ("2K", 0.08)),
)


def profile(mode: ReferenceMode, max_bytes: int | None = 1024) -> ProviderProfile:
    return ProviderProfile("road", mode, ProviderLimits(), (OFFER,), max_bytes)


def request(**overrides: object) -> ImageRequest:
    fields: dict[str, object] = {"prompt": "p", "model": "wire-nb2", "aspect_ratio": "1:1"}
    fields.update(overrides)
    return ImageRequest(**fields)  # type: ignore[arg-type]


def test_a_reference_is_a_handle_a_link_or_bytes_never_two_or_none() -> None:
    assert Reference(handle="media:1").handle == "media:1"
    assert Reference(data=b"x", mime="image/png").mime == "image/png"
    assert Reference(link="https://bot.example/references/a").link
    for bad in (
        {},
        {"handle": "h", "data": b"x", "mime": "image/png"},
        {"data": b"x"},
        {"handle": "h", "link": "https://bot.example/r"},
        {"link": "https://bot.example/r", "data": b"x", "mime": "image/png"},
    ):
        with pytest.raises(ValueError, match="a handle, a link, or data"):
            Reference(**bad)


def test_a_links_repr_does_not_show_it() -> None:
    """A signed link fetches a user's picture: a log line or traceback must not hold one."""
    assert repr(Reference(link="https://bot.example/references/a/1/sig")) == "Reference(link)"


def test_reprs_do_not_dump_picture_bytes() -> None:
    assert (
        repr(Reference(data=b"\x89PNG" * 1000, mime="image/png"))
        == "Reference(image/png, 4000 bytes)"
    )
    assert (
        repr(RenderedImage(b"x" * 10, "image/jpeg", 3))
        == "RenderedImage(image/jpeg, 10 bytes, seed=3)"
    )


def test_offer_prices_calls_and_lookup() -> None:
    assert (OFFER.price("2K"), OFFER.price("4K")) == (0.08, None)
    assert [OFFER.calls_for(n) for n in (1, 4, 5)] == [1, 1, 2]
    road = profile(ReferenceMode.BYTES)
    assert road.offer("nano-banana-2") is OFFER
    assert road.offer_for_wire("wire-nb2") is OFFER
    assert road.offer("nano-banana-pro") is None


@pytest.mark.parametrize(
    ("mode", "overrides", "sentence"),
    [
        (
            ReferenceMode.BYTES,
            {"aspect_ratio": "4:3"},
            "nano-banana-2 takes the aspect ratios 1:1, 16:9",
        ),
        (ReferenceMode.BYTES, {"size": "4K"}, "nano-banana-2 renders at 1K, 2K"),
        (ReferenceMode.BYTES, {"count": 0}, "nano-banana-2 makes 1 to 4 images at a time"),
        (
            ReferenceMode.BYTES,
            {"references": (Reference(data=b"x", mime="image/png"),) * 3},
            "nano-banana-2 takes at most 2 reference images",
        ),
        (
            ReferenceMode.BYTES,
            {"references": (Reference(handle="h"),)},
            "road needs the reference pictures themselves",
        ),
        (
            ReferenceMode.HANDLE,
            {"references": (Reference(data=b"x", mime="image/png"),)},
            "road takes only references it made itself",
        ),
        (
            ReferenceMode.BYTES,
            {"references": (Reference(data=b"x" * 1025, mime="image/png"),)},
            "road takes reference pictures up to 1 KiB",
        ),
    ],
)
def test_unfit_says_what_is_wrong_in_one_sentence(
    mode: ReferenceMode, overrides: dict[str, object], sentence: str
) -> None:
    assert unfit(profile(mode), OFFER, request(**overrides)) == sentence


def test_auto_ratio_needs_the_offer_and_a_reference() -> None:
    road = profile(ReferenceMode.HANDLE)
    auto_offer = ModelOffer("m", "w", 4, ("1:1",), auto_aspect=True)
    with_ref = request(aspect_ratio="auto", references=(Reference(handle="h"),))
    assert unfit(road, auto_offer, with_ref) is None
    assert unfit(road, auto_offer, request(aspect_ratio="auto")) == (
        "the ratio auto comes from a reference picture: add one, or choose a ratio"
    )
    assert unfit(road, OFFER, with_ref) == "nano-banana-2 takes the aspect ratios 1:1, 16:9"


def test_a_link_goes_only_to_a_road_that_fetches_links() -> None:
    linked = request(references=(Reference(link="https://bot.example/references/a"),))
    assert unfit(profile(ReferenceMode.HANDLE), OFFER, linked) == (
        "road fetches no pictures from links"
    )
    assert unfit(profile(ReferenceMode.BYTES), OFFER, linked) == (
        "road fetches no pictures from links"
    )
    fetching = ProviderProfile("road", ReferenceMode.HANDLE, ProviderLimits(), (OFFER,), links=True)
    assert unfit(fetching, OFFER, linked) is None


def test_a_fitting_request_is_fit() -> None:
    refs = (Reference(data=b"x" * 1024, mime="image/png"),) * 2
    assert unfit(profile(ReferenceMode.BYTES), OFFER, request(references=refs, count=4)) is None
    assert (
        unfit(profile(ReferenceMode.HANDLE), OFFER, request(references=(Reference(handle="h"),)))
        is None
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: gemini.GeminiClient("k"),
        lambda: nbpro.NbproClient("k"),
        lambda: nbpro.NbproClient("k", plan="pro"),
        lambda: wireflow.WireflowClient("k", "w"),
    ],
    ids=["gemini", "nbpro-standard", "nbpro-pro", "wireflow"],
)
async def test_every_road_describes_itself_consistently(
    make: Callable[[], gemini.GeminiClient | nbpro.NbproClient | wireflow.WireflowClient],
) -> None:
    """Each offer is reachable by both ids, renders at 1K, and prices only its own sizes."""
    async with make() as client:
        road = client.profile
    assert road.models
    assert len({m.model for m in road.models}) == len(road.models)
    for offer in road.models:
        assert road.offer(offer.model) is road.offer_for_wire(offer.provider_model) is offer
        assert "1K" in offer.sizes
        assert set(offer.aspect_ratios) >= {"1:1", "16:9", "9:16"}
        assert {size for size, _ in offer.prices} <= set(offer.sizes)
        assert offer.images_per_call == 1  # Flow's four-per-call is the exception
