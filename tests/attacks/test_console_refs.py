"""``--ref PATH`` in the console, pointed at things that are not image files.

The console reads the file before the service sees it, so its read must be bounded on its own:
a path is only a name, and what it names may never end or never start.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.fakes.flow_server import FakeFlowServer

# The bot runs with its address space capped, so that today's unbounded read fails fast with a
# MemoryError instead of eating the machine.
CAPPED = """
import resource, runpy
resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))
runpy.run_module("bot", run_name="__main__")
"""


async def console(line: str, cwd: Path, timeout: float = 30) -> str:
    """Run ``python -m bot console`` on ``line``; its output, or an AssertionError if it hangs."""
    async with FakeFlowServer() as flow:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CAPPED,
            "console",
            cwd=cwd,
            env={
                "PATH": os.environ["PATH"],
                "PYTHONPATH": str(Path.cwd()),
                "USEAPI_TOKEN": "test-token",
                "USEAPI_BASE_URL": flow.base_url,
            },
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(line.encode()), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"the console hung on {line!r}") from None
    assert process.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_a_ref_to_dev_zero_is_refused_without_reading_it(tmp_path: Path) -> None:
    out = await console("a cat --ref /dev/zero\n", tmp_path)
    assert "❌ /dev/zero isn't a regular file: give the path of an image file." in out


async def test_a_ref_to_a_fifo_does_not_hang_the_console(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # nobody will ever write to it
    out = await console(f"a cat --ref {fifo}\n", tmp_path, timeout=20)
    assert f"❌ {fifo} isn't a regular file: give the path of an image file." in out


async def test_a_ref_to_a_5_gb_file_is_refused_before_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    with huge.open("wb") as file:
        file.truncate(5 * 2**30)  # sparse: costs no disk
    out = await console(f"a cat --ref {huge}\n", tmp_path)
    assert "❌ That image is 5120.0 MB; the limit is 25 MB." in out
