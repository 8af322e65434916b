"""How values are kept in any store's columns, and read back: requests and settings as JSON,
a request past retention as its tombstone, and a row of ``jobs`` or ``images`` as the domain's
``Job`` or ``ResultImage``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any, Protocol

from bot.core import i18n
from bot.core.buttons import Action
from bot.core.character_records import Character, CharacterImage, CharacterRef
from bot.core.community import ServerSettings
from bot.core.domain import (
    Execution,
    GenerationRequest,
    ImageRef,
    Job,
    JobState,
    Lineage,
    Reference,
    Request,
    ResultImage,
    Upload,
    UpscaleRequest,
    UserSettings,
)
from bot.core.i18n import Text
from bot.core.people import Owner, UserKey


class Row(Protocol):
    """A row by column name: SQLite's and PostgreSQL's both are."""

    def __getitem__(self, key: str) -> Any: ...


# The columns ``job_from_row`` reads but ``created_at``, ``updated_at`` (epoch seconds),
# ``delivered`` and ``pruned`` (booleans), which each store selects its own way; the parent's
# public id and owner come from its own row (selected ``FROM jobs``, unaliased).
JOB_COLUMNS = (
    "id, public_id, platform, user_id, owner_name, chat_id, reply_to, route, server, request, "
    "state, account, attempts, error, execution, source_job, source_action, source_index, "
    "(SELECT p.public_id FROM jobs p WHERE p.id = jobs.source_job) AS parent_public_id, "
    "(SELECT p.platform FROM jobs p WHERE p.id = jobs.source_job) AS parent_platform, "
    "(SELECT p.user_id FROM jobs p WHERE p.id = jobs.source_job) AS parent_user"
)
IMAGE_COLUMNS = "idx, media_id, account, provider, seed, model, mime, data"
# The ``pending`` kind under which admin alerts not given yet wait (keyed ``platform:id``).
ALERTS = "admin.alert"
# The ``pending`` kind under which a deleted character's Flow copy waits to be deleted there
# (keyed by its handle, valued by its account).
CHARACTER_DELETES = "character.delete"
# The quota row of "everyone without one of their own" (no platform is called this).
DEFAULT = UserKey("*", "*")
PAUSED = "paused"  # the queue's switch, a row of ``switches``


def encode_text(text: str) -> str:
    """A sentence as the store keeps it: its message and parameters (JSON), never its words in
    one language, so whoever reads it later gets it in theirs. JSON escapes NUL too, which
    PostgreSQL text can't hold (an upstream's detail might carry one)."""
    return json.dumps(i18n.to_data(text), ensure_ascii=False)


def decode_text(text: str) -> Text:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Words, as a process older than schema step 9 still writes them while the processes
        # sharing a store are upgraded one by one: they are their own message.
        return i18n.Text(text)
    return i18n.from_data(data)


def encode_request(request: Request) -> str:
    if isinstance(request, UpscaleRequest):
        return json.dumps(
            {
                "kind": "upscale",
                "source_job": request.source_job,
                "index": request.index,
                "image": _ref(request.image),
                "resolution": request.resolution,
                "model": request.model,
            }
        )
    return json.dumps(
        {
            "kind": "generate",
            "prompt": request.prompt,
            "model": request.model,
            "aspect_ratio": request.aspect_ratio,
            "count": request.count,
            "seed": request.seed,
            "references": [_ref(r) for r in request.references],
            "characters": [asdict(c) for c in request.characters],
            "size": request.size,
            "fixed_seed": request.fixed_seed,
        }
    )


def lineage_of(request: Request, parent: Lineage | None) -> tuple[int | None, str | None, int]:
    """The columns ``source_job``, ``source_action``, ``source_index``: the result a job was
    made from (an upscale's is its request's), to be found by it."""
    if isinstance(request, UpscaleRequest):
        return request.source_job, Action.UPSCALE.value, request.index
    if parent is None:
        return None, None, 0
    return parent.job_id, parent.action.value, parent.index


def decode_request(text: str) -> Request:
    data = json.loads(text)
    if data["kind"] == "upscale":
        image = _unref(data["image"])
        assert isinstance(image, ImageRef)
        return UpscaleRequest(
            source_job=data["source_job"],
            index=data["index"],
            image=image,
            resolution=data["resolution"],
            model=data["model"],
        )
    return GenerationRequest(
        prompt=data["prompt"],
        model=data["model"],
        aspect_ratio=data["aspect_ratio"],
        count=data["count"],
        seed=data["seed"],
        references=tuple(_unref(r) for r in data["references"]),
        characters=tuple(CharacterRef(**c) for c in data.get("characters", ())),
        size=data.get("size", "1K"),
        fixed_seed=data.get("fixed_seed", False),
    )


def tombstone(text: str) -> str:
    """A stored request past retention: its options stay, its prompt and images go."""
    request = decode_request(text)
    if isinstance(request, UpscaleRequest):
        return encode_request(replace(request, image=ImageRef("", "")))
    return encode_request(replace(request, prompt="", references=(), characters=()))


def kept_uploads(state: str, request: str, made: bool) -> set[str]:
    """The uploads a job's buttons still need once it is answered: those a done job that
    ``made`` images (it has buttons) still names in its request. Where they went as handles
    (uploaded to Flow) the request names the handles instead (``References.remember``); where
    they went as themselves (Gemini) or as links to our copy (Wireflow), 🎲 sends them again."""
    if state != JobState.DONE.value or not made:
        return set()
    decoded = decode_request(request)
    uploads = decoded.uploads if isinstance(decoded, GenerationRequest) else ()
    return {upload.sha256 for upload in uploads}


def encode_execution(execution: Execution | None) -> str | None:
    if execution is None:
        return None
    return json.dumps(
        {"provider": execution.provider, "key": execution.key, "ids": list(execution.ids)}
    )


def decode_execution(text: str | None) -> Execution | None:
    if not text:
        return None
    data = json.loads(text)
    return Execution(data["provider"], data["key"], tuple(data["ids"]))


def _ref(ref: Reference) -> dict[str, str]:
    if isinstance(ref, Upload):
        return {"sha256": ref.sha256, "mime": ref.mime}
    return {"media_id": ref.media_id, "account": ref.account, "provider": ref.provider}


def _unref(data: dict[str, Any]) -> Reference:
    if "sha256" in data:
        return Upload(data["sha256"], data["mime"])
    return ImageRef(data["media_id"], data["account"], data.get("provider", "flow"))


def job_from_row(row: Row) -> Job:
    parent = None
    if row["source_job"] is not None and row["source_action"]:
        parent_user = row["parent_user"]
        parent = Lineage(
            job_id=row["source_job"],
            action=Action(row["source_action"]),
            index=row["source_index"] or 0,
            public_id=row["parent_public_id"] or "",
            owner=UserKey(row["parent_platform"], parent_user) if parent_user else None,
        )
    return Job(
        id=row["id"],
        public_id=row["public_id"] or "",
        parent=parent,
        owner=Owner(
            platform=row["platform"],
            user_id=row["user_id"],
            chat_id=row["chat_id"],
            reply_to=row["reply_to"],
            route=json.loads(row["route"]),
            name=row["owner_name"],
            server=row["server"],
        ),
        request=decode_request(row["request"]),
        state=JobState(row["state"]),
        account=row["account"],
        attempts=row["attempts"],
        error=None if row["error"] is None else decode_text(row["error"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        delivered=bool(row["delivered"]),
        pruned=bool(row["pruned"]),
        execution=decode_execution(row["execution"]),
    )


def image_from_row(row: Row) -> ResultImage:
    return ResultImage(
        index=row["idx"],
        ref=ImageRef(row["media_id"], row["account"], row["provider"]),
        seed=row["seed"],
        model=row["model"],
        mime=row["mime"],
        data=row["data"],
    )


def image_row(job_id: int, image: ResultImage) -> tuple[object, ...]:
    """``image`` as the images table's columns, in the order ``image_from_row`` reads them."""
    ref = image.ref
    return (
        job_id,
        image.index,
        ref.media_id,
        ref.account,
        ref.provider,
        image.seed,
        image.model,
        image.mime,
        image.data,
    )


def encode_settings(settings: UserSettings) -> str:
    return json.dumps(asdict(settings))


def decode_settings(text: str) -> UserSettings:
    """Settings as saved; a setting this version no longer has is dropped."""
    known = UserSettings.__dataclass_fields__
    return UserSettings(**{k: v for k, v in json.loads(text).items() if k in known})


# The columns ``characters_from_rows`` reads: a character joined with its images, one row each.
CHARACTER_COLUMNS = "c.id, c.platform, c.user_id, c.name, c.account, c.handle, i.sha256, i.mime"


def characters_from_rows(rows: Sequence[Row]) -> list[Character]:
    """Characters from their rows (one per image, in order), images without their bytes."""
    found: dict[int, Character] = {}
    for row in rows:
        image = CharacterImage(row["sha256"], row["mime"])
        known = found.get(row["id"])
        if known is None:
            owner = UserKey(row["platform"], row["user_id"])
            found[row["id"]] = Character(
                row["id"], owner, row["name"], row["account"], row["handle"], (image,)
            )
        else:
            found[row["id"]] = replace(known, images=(*known.images, image))
    return list(found.values())


def encode_server(settings: ServerSettings) -> str:
    return json.dumps(asdict(settings))


def decode_server(text: str) -> ServerSettings:
    """Server settings as saved; a setting this version no longer has is dropped."""
    known = ServerSettings.__dataclass_fields__
    data = {k: v for k, v in json.loads(text).items() if k in known}
    if "channels" in data:
        data["channels"] = tuple(data["channels"])
    return ServerSettings(**data)
