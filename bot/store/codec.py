"""Requests to and from JSON, for any store."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from bot.core.domain import GenerationRequest, ImageRef, Reference, Request, Upload, UpscaleRequest


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
        }
    )


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
    )


def tombstone(text: str) -> str:
    """A stored request past retention: its options stay, its prompt and images go."""
    request = decode_request(text)
    if isinstance(request, UpscaleRequest):
        return encode_request(replace(request, image=ImageRef("", "")))
    return encode_request(replace(request, prompt="", references=()))


def _ref(ref: Reference) -> dict[str, str]:
    if isinstance(ref, Upload):
        return {"sha256": ref.sha256, "mime": ref.mime}
    return {"media_id": ref.media_id, "account": ref.account}


def _unref(data: dict[str, Any]) -> Reference:
    if "sha256" in data:
        return Upload(data["sha256"], data["mime"])
    return ImageRef(data["media_id"], data["account"])
