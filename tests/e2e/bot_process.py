"""The bot as an operator runs it, a separate ``python -m bot`` process: its run, a free port for
its listeners, and the token the tests give it (kept out of every output)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

SECRET = "user:42-very-secret-token"


async def start_bot(*args: str, env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """``python -m bot`` started with only ``env`` (plus PATH), as a fresh shell would, its
    standard streams piped to the test."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(Path.cwd()), **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_bot(
    *args: str, env: dict[str, str], cwd: Path, stdin: bytes = b""
) -> tuple[int, str, str]:
    """Run ``python -m bot`` to its end on ``stdin``: its status, standard output and error."""
    process = await start_bot(*args, env=env, cwd=cwd)
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
