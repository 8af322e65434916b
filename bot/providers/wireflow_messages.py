"""Wireflow's messages: the two-node workflow an execution runs, what an execution's state says
when it ends, and the exception an error answer means (the table is in ``wireflow``'s docstring).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from bot.core.providers import ImageRequest
from bot.core.upstream import (
    AccountNotFound,
    AuthError,
    ExecutionFailed,
    InsufficientCredits,
    InvalidRequestError,
    ModerationError,
    QuotaExhausted,
    RetryableError,
    Throttled,
    Unavailable,
    UpstreamError,
)
from bot.providers.http import Answer, retry_after

PROMPT_NODE, RENDER_NODE = "prompt", "render"
MAX_KEY = 255
# An execution in one of these states has not ended yet.
RUNNING = frozenset({"RUNNING", "PENDING", "QUEUED"})
# A failed execution whose error names one of these was blocked by a filter.
BLOCK_WORDS = ("safety", "moderat", "blocked", "prohibited", "policy", "nsfw")
# A failed fetch may be told with the address it failed on: one of our signed links, still valid
# for an hour, which must reach neither the logs nor the job's stored reason (``unlinked``).
_PATH = "/references/"
_REST = re.compile(r"[0-9a-f]*(?:/[0-9]*(?:/[0-9a-f]*)?)?")  # its id, expiry and signature
_BEFORE = frozenset("'\"<>()")  # what may stand before an address (or whitespace)

_BY_STATUS: Mapping[int, type[UpstreamError]] = {
    400: InvalidRequestError,
    401: AuthError,
    402: InsufficientCredits,
    403: AuthError,
    404: AccountNotFound,
    429: Throttled,
    500: Unavailable,
}


def error_for(answer: Answer) -> UpstreamError:
    """The exception for an error answer ``{"error": "text", ...}``, by HTTP status."""
    body = answer.body if isinstance(answer.body, dict) else {}
    # It may name an image input by our link: a capability, never shown, alerted or logged.
    detail = unlinked(str(body.get("error") or answer.body or f"HTTP {answer.status}"))
    kind = _BY_STATUS.get(answer.status) or (
        Unavailable if answer.status >= 500 else InvalidRequestError
    )
    if kind is Throttled and "daily" in detail.lower():
        kind = QuotaExhausted
    if kind is InsufficientCredits:
        return InsufficientCredits(
            detail,
            status=answer.status,
            required=_number(body.get("requiredCredits")),
            available=_number(body.get("availableCredits")),
        )
    if issubclass(kind, RetryableError):
        # Retry-After is relative; the body's "retryAfter" is a Unix time and is not used.
        return kind(detail, status=answer.status, retry_after=retry_after(answer.headers))
    return kind(detail, status=answer.status)


def outcome(state: dict[str, Any], execution_id: str) -> str:
    """The image URL of a finished execution, or the error its failure means."""
    status = state.get("status")
    runs = state.get("nodeRuns")
    if runs is None and isinstance(state.get("nodeResults"), dict):
        runs = state["nodeResults"].get("nodeRuns")
    render = next(
        (r for r in runs or [] if isinstance(r, dict) and r.get("nodeId") == RENDER_NODE), {}
    )
    if status == "COMPLETED":
        output = render.get("output")
        images = output.get("images") if isinstance(output, dict) else None
        first = images[0] if isinstance(images, list) and images else None
        url = first.get("url") if isinstance(first, dict) else None
        if not isinstance(url, str) or not url:
            raise ModerationError(
                f"execution {execution_id} completed without an image", status=200
            )
        return url
    error = str(state.get("error") or render.get("error") or f"execution {execution_id} {status}")
    error = unlinked(error)
    if status == "FAILED" and any(word in error.lower() for word in BLOCK_WORDS):
        raise ModerationError(error, status=200)
    raise ExecutionFailed(error)


def unlinked(text: str) -> str:
    """``text`` with each of our links in it, whole or cut short, as ‹link›. In time linear in
    its length: a regular expression looking back for each address's start took an hour over
    a megabyte of one word, which a hostile upstream may send."""
    parts, at = [], 0
    while (found := text.find(_PATH, at)) >= 0:
        start = found
        while start > at and not text[start - 1].isspace() and text[start - 1] not in _BEFORE:
            start -= 1
        rest = _REST.match(text, found + len(_PATH))
        parts += [text[at:start], "‹link›"]
        at = rest.end() if rest else found + len(_PATH)
    return "".join(parts) + text[at:]


def graph(request: ImageRequest) -> dict[str, Any]:
    """The two-node workflow: a text input wired into the generation node."""
    params: dict[str, Any] = {"resolution": request.size, "aspect_ratio": request.aspect_ratio}
    # Each image input is a URL Wireflow fetches: an image it made, or our link to a picture.
    params.update({f"image{i}": r.handle or r.link for i, r in enumerate(request.references, 1)})
    return {
        "nodes": [
            {
                "id": PROMPT_NODE,
                "type": "basedNode",
                "position": {"x": 0, "y": 0},
                "data": {
                    "label": "Prompt",
                    "nodeType": "input:text",
                    "category": "input",
                    "params": {"prompt": request.prompt},
                },
            },
            {
                "id": RENDER_NODE,
                "type": "basedNode",
                "position": {"x": 500, "y": 0},
                "data": {
                    "label": "Render",
                    "nodeType": request.model,
                    "category": "generate",
                    "params": params,
                },
            },
        ],
        "edges": [
            {
                "source": PROMPT_NODE,
                "target": RENDER_NODE,
                "sourceHandle": "out-prompt",
                "targetHandle": "in-prompt",
            }
        ],
    }


def idempotency_key(key: str) -> str:
    """An Idempotency-Key: the job's own key, or its digest when too long to send."""
    if len(key) <= MAX_KEY and key.isascii() and key.isprintable():
        return key
    return "sha256-" + hashlib.sha256(key.encode()).hexdigest()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
