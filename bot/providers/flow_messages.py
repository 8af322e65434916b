"""The useapi.net Google Flow API's messages: the exception an error answer means, and the images,
ids and pictures in its answers, whichever of its shapes they come in (``flow`` makes the calls).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import httpx

from bot.core.upstream import (
    AccountNotFound,
    AuthError,
    CaptchaFailed,
    ContentPolicyError,
    InvalidRequestError,
    ModerationError,
    PaymentError,
    ReferenceOwnershipError,
    RetryableError,
    SessionExpired,
    Throttled,
    Unavailable,
    UpstreamError,
)
from bot.providers.http import retry_after

UNSAFE_REASON = "PUBLIC_ERROR_UNSAFE_GENERATION"
# Generation and asset ids: printable ASCII, no spaces or control characters (they end up in
# logs and the store), and no longer than an e-mail in hex could make them.
_MEDIA_ID = re.compile(r"[!-~]{1,2048}")


# The exception each error status means (see the tree in ``bot.core.upstream``); 400 and 403
# are told apart by their text, and any other 5xx is Unavailable, any other status a refusal.
_BY_STATUS: dict[int, type[UpstreamError]] = {
    400: InvalidRequestError,
    401: AuthError,
    402: PaymentError,
    403: ReferenceOwnershipError,
    404: AccountNotFound,
    429: Throttled,
    500: ModerationError,
    596: SessionExpired,
}


def error_for(
    status: int, body: Any, headers: httpx.Headers | dict[str, str], account: str | None
) -> UpstreamError:
    """The exception for an error answer."""
    text, reasons = _error_text(body)
    kind = _BY_STATUS.get(status) or (Unavailable if status >= 500 else InvalidRequestError)
    if status == 400 and (UNSAFE_REASON in reasons or UNSAFE_REASON in text):
        kind = ContentPolicyError
    elif status == 403 and text.lower().startswith("captcha"):
        kind = CaptchaFailed
    if issubclass(kind, RetryableError) and kind is not CaptchaFailed:
        return kind(text, status=status, account=account, retry_after=retry_after(headers))
    return kind(text, status=status, account=account)


def _error_text(body: Any) -> tuple[str, set[str]]:
    """Both error forms: ``{"error": "text"}`` (useapi) and ``{"error": {...}}`` (Google)."""
    error = body.get("error") if isinstance(body, dict) else body
    if isinstance(error, str):
        return error, set()
    if isinstance(error, dict):
        reasons = {
            str(d.get("reason"))
            for d in error.get("details") or []
            if isinstance(d, dict) and d.get("reason")
        }
        message = str(error.get("message") or error.get("status") or "")
        return (f"{message} ({', '.join(sorted(reasons))})" if reasons else message), reasons
    return ("" if body is None else str(body)[:200]), set()


def image_entries(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Image records from either answer shape, normalised to one flat dict each."""
    if isinstance(body.get("media"), list):
        out = []
        for item in body["media"]:
            image = item.get("image") if isinstance(item, dict) else None
            generated = image.get("generatedImage") if isinstance(image, dict) else None
            if not isinstance(generated, dict):
                return None  # a shape we don't know: say so rather than drop images silently
            out.append(generated)
        return out
    if isinstance(body.get("imagePanels"), list):
        return [
            image
            for panel in body["imagePanels"]
            if isinstance(panel, dict)
            for image in panel.get("generatedImages") or []
            if isinstance(image, dict)
        ]
    return None


def media_id_of(value: Any) -> str | None:
    """Ids come flat (new answers) or nested one level (uploads and old answers)."""
    if isinstance(value, dict):
        value = value.get("mediaGenerationId")
    return value if isinstance(value, str) and _MEDIA_ID.fullmatch(value) else None


def b64(encoded: str, account: str | None) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unavailable("an image came back with broken base64", account=account) from exc
