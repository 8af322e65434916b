"""The outages every layer is tested against (the service, each front end): an upstream that can
serve no one, as found at start, and how it is mended, with the reason the admins are told.

``@every_outage`` parametrizes a test with ``break_it(flow)``, ``mend_it(flow)`` and ``reason``;
``OUTAGE_TUNING`` lets an outage be declared after ``GRACE`` seconds instead of minutes.
"""

from __future__ import annotations

import pytest

from bot.core import admin_texts
from bot.core.policy import Tuning
from tests.fakes.flow_server import DEFAULT_TOKEN

GRACE = 0.6
OUTAGE_TUNING = Tuning(
    retry_min_seconds=0.01,
    retry_max_seconds=0.05,
    job_deadline_seconds=5,
    outage_grace_seconds=GRACE,
)

every_outage = pytest.mark.parametrize(
    ("break_it", "mend_it", "reason"),
    [
        (
            lambda flow: setattr(flow, "token", "revoked"),
            lambda flow: setattr(flow, "token", DEFAULT_TOKEN),
            admin_texts.ADMIN_REASONS["auth"],
        ),
        (
            lambda flow: setattr(flow, "accounts", []),
            lambda flow: setattr(flow, "accounts", ["alice@example.com"]),
            admin_texts.ADMIN_REASONS["no_accounts"],
        ),
    ],
    ids=["token refused", "no account linked"],
)
