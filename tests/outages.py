"""The outages every layer is tested against (the service, each front end): an upstream that can
serve no one, as found at start, and how it is mended, with the reason the admins are told.

``@every_outage`` parametrizes a test with ``break_it(flow)``, ``mend_it(flow)`` and ``reason``.
"""

from __future__ import annotations

import pytest

from bot.core import admin_texts
from tests.fakes.flow_server import DEFAULT_TOKEN

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
