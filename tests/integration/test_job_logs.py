"""JSON logs name the job a line is about: the runner sets ``current_job`` for a job's work (its
attempts, retries and answer), and nothing else carries it."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bot import logs
from bot.config import Secret, Settings
from tests.conftest import owner
from tests.fakes.flow_server import FakeFlowServer


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook)
    buffer = io.StringIO()
    settings = dataclasses.replace(
        Settings(useapi_token=Secret("not-in-any-line")), log_format="json"
    )
    logs.configure(settings, stream=buffer)
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]
    sys.excepthook, threading.excepthook = saved[2], saved[3]
    logging.captureWarnings(False)


async def test_the_lines_a_job_writes_carry_its_id(
    json_logs: io.StringIO, make_service: Any, flow: FakeFlowServer
) -> None:
    service, told = await make_service()
    flow.fail_next(503)
    first = await service.submit(owner(), "a fox --count 1")
    second = await service.submit(owner("2"), "a cat --count 1")
    await told.wait_answered(first.job_id, second.job_id)
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    retry = next(line for line in lines if "retry in" in str(line["message"]))
    assert retry["logger"] == "bot.core.service.endings"
    assert retry["job"] == first.job_id
    queued = next(
        line
        for line in lines
        if line["message"]
        == f"job {second.job_id} (#{second.public_id}) queued for console:2 (GenerationRequest)"
    )
    assert "job" not in queued  # written by the one asking, before the job had work of its own
    refresh = next(line for line in lines if str(line["message"]).startswith("flow accounts:"))
    assert "job" not in refresh  # the accounts' refresh is about no job
