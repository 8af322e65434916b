"""Characters in the store, on SQLite and on PostgreSQL: per user, names compared by case, their
pictures kept, moved to another account, deleted only by their owner."""

from __future__ import annotations

import asyncio

from bot.core.character_records import CharacterImage
from bot.core.people import UserKey
from tests.conftest import AnyStore

ANN = UserKey("telegram", "1")
BOB = UserKey("discord", "2")
PICTURES = (
    CharacterImage("a" * 64, "image/png", b"one"),
    CharacterImage("b" * 64, "image/jpeg", b"two"),
)


async def test_a_character_is_kept_with_its_pictures_and_its_account(store: AnyStore) -> None:
    made = await store.add_character(ANN, "Carol", "jo@example.com", "user:1-character:c", PICTURES)
    assert made is not None
    [listed] = await store.characters(ANN)
    assert (listed.id, listed.name, listed.account, listed.handle) == (
        made.id,
        "Carol",
        "jo@example.com",
        "user:1-character:c",
    )
    assert [(i.sha256, i.mime, i.data) for i in listed.images] == [
        ("a" * 64, "image/png", None),
        ("b" * 64, "image/jpeg", None),
    ]
    assert await store.character_images(made.id) == list(PICTURES)
    assert await store.character(made.id) == listed
    assert await store.characters(BOB) == []


async def test_a_name_is_one_per_user_whatever_its_case(store: AnyStore) -> None:
    assert await store.add_character(ANN, "Carol", "jo@example.com", "h1", PICTURES[:1])
    assert await store.add_character(ANN, "CAROL", "jo@example.com", "h2", PICTURES[:1]) is None
    assert await store.add_character(BOB, "carol", "jo@example.com", "h3", PICTURES[:1])
    assert [c.handle for c in await store.characters(ANN)] == ["h1"]


async def test_two_creations_of_one_name_at_once_keep_one(store: AnyStore) -> None:
    made = await asyncio.gather(
        *(store.add_character(ANN, "Tom", "a@x", f"h{i}", PICTURES) for i in range(6))
    )
    assert sum(m is not None for m in made) == 1
    [kept] = await store.characters(ANN)
    assert len(await store.character_images(kept.id)) == 2


async def test_a_character_moves_to_another_account(store: AnyStore) -> None:
    made = await store.add_character(ANN, "Carol", "old@example.com", "h-old", PICTURES)
    assert made is not None
    await store.move_character(made.id, "new@example.com", "h-new")
    moved = await store.character(made.id)
    assert moved is not None
    assert (moved.account, moved.handle) == ("new@example.com", "h-new")


async def test_only_its_owner_deletes_a_character_and_its_pictures_go(store: AnyStore) -> None:
    made = await store.add_character(ANN, "Carol", "jo@example.com", "h", PICTURES)
    assert made is not None
    assert not await store.delete_character(BOB, made.id)
    assert await store.character(made.id) is not None
    assert await store.picture("b" * 64) == b"two"  # by its content, as a link names it
    assert await store.delete_character(ANN, made.id)
    assert await store.character(made.id) is None
    assert await store.character_images(made.id) == []
    assert await store.characters(ANN) == []
    assert await store.picture("b" * 64) is None


async def test_a_character_is_shared_in_a_place_once_per_name(store: AnyStore) -> None:
    carol = await store.add_character(ANN, "Carol", "jo@example.com", "h1", PICTURES)
    other = await store.add_character(BOB, "CAROL", "jo@example.com", "h2", PICTURES[:1])
    assert carol is not None
    assert other is not None
    assert await store.share_character("telegram:-100", carol.id, carol.name)
    assert not await store.share_character("telegram:-100", other.id, other.name)
    assert await store.share_character("discord:server:9", other.id, other.name)
    assert [c.id for c in await store.shared_characters("telegram:-100")] == [carol.id]
    assert await store.unshare_character("telegram:-100", carol.id)
    assert not await store.unshare_character("telegram:-100", carol.id)
    assert await store.shared_characters("telegram:-100") == []
    assert await store.delete_character(BOB, other.id)  # deleting it ends its sharing
    assert await store.shared_characters("discord:server:9") == []


async def test_a_deleted_or_moved_characters_upstream_copy_waits_until_it_is_gone(
    store: AnyStore,
) -> None:
    carol = await store.add_character(ANN, "Carol", "jo@example.com", "h-carol", PICTURES[:1])
    tom = await store.add_character(ANN, "Tom", "jo@example.com", "h-tom", PICTURES[:1])
    assert carol is not None
    assert tom is not None
    assert await store.character_deletions() == []
    await store.move_character(tom.id, "al@example.com", "h-tom-2")
    assert not await store.delete_character(BOB, carol.id)  # not Bob's: nothing parked
    assert await store.delete_character(ANN, carol.id)
    assert await store.character_deletions() == [
        ("h-tom", "jo@example.com"),
        ("h-carol", "jo@example.com"),
    ]
    await store.character_deleted("h-tom")
    assert await store.character_deletions() == [("h-carol", "jo@example.com")]
    assert [c.handle for c in await store.characters(ANN)] == ["h-tom-2"]
