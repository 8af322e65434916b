"""JSON logs: one object per line, with the job the line is about."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import sys
import threading
from collections.abc import Iterator

import pytest

from bot import logs
from bot.config import Secret, Settings
from bot.core.context import current_job


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """``logs.configure`` with BOT_LOG_FORMAT=json on a buffer, undone afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.excepthook, threading.excepthook)
    buffer = io.StringIO()
    settings = dataclasses.replace(Settings(useapi_token=Secret("t")), log_format="json")
    logs.configure(settings, stream=buffer)
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]
    sys.excepthook, threading.excepthook = saved[2], saved[3]
    logging.captureWarnings(False)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_time_level_logger_and_message(
    json_logs: io.StringIO,
) -> None:
    logging.getLogger("bot.test").warning("queue is %d deep\nand growing", 12)
    [line] = lines(json_logs)
    assert line["level"] == "WARNING"
    assert line["logger"] == "bot.test"
    assert line["message"] == "queue is 12 deep\nand growing"
    assert str(line["time"]).endswith("Z")
    assert "job" not in line
    assert "exception" not in line


def test_a_line_written_while_a_job_runs_carries_its_id(json_logs: io.StringIO) -> None:
    token = current_job.set(42)
    try:
        logging.getLogger("bot.test").info("generating")
    finally:
        current_job.reset(token)
    logging.getLogger("bot.test").info("idle")
    first, second = lines(json_logs)
    assert first["job"] == 42
    assert "job" not in second


def test_an_exception_goes_in_its_own_field(json_logs: io.StringIO) -> None:
    try:
        raise ValueError("bad answer")
    except ValueError:
        logging.getLogger("bot.test").exception("call failed")
    [line] = lines(json_logs)
    assert line["message"] == "call failed"
    assert str(line["exception"]).startswith("Traceback")
    assert "ValueError: bad answer" in str(line["exception"])
