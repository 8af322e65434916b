"""How the roads to the image models fail: one documented tree of exceptions.

Every provider (``bot.providers``: Flow, Gemini, nano-banana-pro.net, Wireflow) speaks the
contract in ``bot.core.providers`` and raises only these; the core decides what each means for a
job from the tree alone (``bot.core.service.endings._ENDINGS``)::

    UpstreamError                  base: .status (HTTP status or None), .account, .detail
    ├── RetryableError             try again later: .retry_after is the server's hint in seconds
    │   ├── Throttled              429 — over the parallel capacity or the per-minute rate
    │   ├── Unavailable            503, 5xx from the edge, network failure, a broken answer
    │   │   └── ExecutionFailed    an asynchronous execution ended without a result (FAILED):
    │   │                          submit it again, under a new idempotency key
    │   ├── UpstreamTimeout        no answer within the configured timeout
    │   ├── CaptchaFailed          403 whose error starts with "captcha": the vendor's solve failed
    │   └── ExecutionLost          the provider forgot a submitted execution: submit it again,
    │                              under a new idempotency key
    ├── ModerationError            500, or a 200 that carried no image: retry once, or another model
    ├── MediaRefused               an image we won't fetch or pass on: a link off the media hosts
    │                              or to an internal address, too large, or not a whole PNG, JPEG
    │                              or WebP picture. Not retried: each try is a paid generation and
    │                              the same upstream would send the same thing again
    ├── RejectedError              the request itself is refused; never retried as is
    │   ├── ContentPolicyError     400 PUBLIC_ERROR_UNSAFE_GENERATION, a prompt the filter blocks
    │   ├── InvalidRequestError    any other 400 (options, reference count, a refused upload)
    │   └── ReferenceOwnershipError 403 — a reference belongs to another account
    └── OperatorError              the operator must act; alert admins, take the account (or the
                                   whole provider) out; unpinned jobs move to the next provider
        ├── AuthError              401 (or a refused API key) — every account is affected
        ├── PaymentError           402 — no subscription or credits
        │   └── InsufficientCredits 402 naming .required and .available credits
        ├── AccountNotFound        404 — the account (or the configured workflow) does not exist
        ├── SessionExpired         596 — the account's Google cookies must be renewed
        ├── QuotaExhausted         a daily quota is used up; the provider serves again after reset
        └── ModelUnavailable       the provider no longer serves this model (retired, not enabled)

``detail`` is the upstream's own text with e-mail addresses masked; it is for logs and admins.
It is clipped before masking, so that no text the upstream sends can make masking slow.
"""

from __future__ import annotations

import re

DETAIL_CHARS = 500
_EMAIL = re.compile(r"([A-Za-z0-9._%+-]{1,2})[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")


def mask_emails(text: str) -> str:
    """``alice@example.com`` → ``al***@example.com``, as the upstream itself prints them."""
    return _EMAIL.sub(r"\1***@\2", text)


class UpstreamError(Exception):
    def __init__(self, detail: str, *, status: int | None = None, account: str | None = None):
        self.detail = mask_emails(detail[: DETAIL_CHARS * 2])[:DETAIL_CHARS]
        self.status = status
        self.account = account
        super().__init__(f"{status or '-'} {self.detail}")


class RetryableError(UpstreamError):
    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        account: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(detail, status=status, account=account)
        self.retry_after = retry_after


class Throttled(RetryableError):
    pass


class Unavailable(RetryableError):
    pass


class ExecutionFailed(Unavailable):
    pass


class UpstreamTimeout(RetryableError):
    pass


class CaptchaFailed(RetryableError):
    pass


class ExecutionLost(RetryableError):
    pass


class ModerationError(UpstreamError):
    pass


class MediaRefused(UpstreamError):
    pass


class RejectedError(UpstreamError):
    pass


class ContentPolicyError(RejectedError):
    pass


class InvalidRequestError(RejectedError):
    pass


class ReferenceOwnershipError(RejectedError):
    pass


class OperatorError(UpstreamError):
    pass


class AuthError(OperatorError):
    pass


class PaymentError(OperatorError):
    pass


class InsufficientCredits(PaymentError):
    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        account: str | None = None,
        required: float | None = None,
        available: float | None = None,
    ):
        super().__init__(detail, status=status, account=account)
        self.required = required
        self.available = available


class AccountNotFound(OperatorError):
    pass


class SessionExpired(OperatorError):
    pass


class QuotaExhausted(OperatorError):
    pass


class ModelUnavailable(OperatorError):
    pass
