"""The README's blocks, run in order as a newcomer pastes them into one shell.

Shell blocks run as they are, in one bash session (so the variables one block exports reach
the next); Python blocks run with ``uv run python``, in the same session. A block preceded by
``<!-- readme-test: skip (why) -->`` is not run, and one marked ``part of <file>`` must appear
in that file word for word. The only changes made to the text are the two ports (8000 and 9000
become free ones, given to ``herald serve --port`` and the receiver) and the environment: the
test's database and a data directory of its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.process import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
_BLOCK_RE = re.compile(
    r"(?:<!-- readme-test: (?P<mark>[^>]*?) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```\n", re.S
)
SCRIPT_TIMEOUT_S = 90
EVENT_TYPE = "project:one-off-job:pipeline-run:failed"


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    mark: str | None


def readme_blocks() -> list[Block]:
    return [
        Block(match["lang"], match["code"], match["mark"]) for match in _BLOCK_RE.finditer(README.read_text())
    ]


def test_blocks_marked_as_part_of_a_file_are_that_files_text() -> None:
    parts = [block for block in readme_blocks() if block.mark and block.mark.startswith("part of ")]
    assert parts, "the README shows the example receiver's handler"
    for block in parts:
        assert block.mark is not None
        path = ROOT / block.mark.removeprefix("part of ").split()[0]
        assert block.code in path.read_text(), f"the README's block differs from {path.name}"


def _script(blocks: list[Block], herald_port: int, receiver_port: int, workdir: Path) -> str:
    lines = ["set -eu -o pipefail", f"cd {shlex.quote(str(ROOT))}"]
    for number, block in enumerate(blocks):
        if block.mark is not None or block.lang not in ("sh", "python"):
            continue
        code = block.code.replace("127.0.0.1:8000", f"127.0.0.1:{herald_port}")
        code = code.replace("127.0.0.1:9000", f"127.0.0.1:{receiver_port}")
        code = code.replace("receiver.py 9000", f"receiver.py {receiver_port}")
        code = code.replace("uv run herald serve", f"uv run herald serve --port {herald_port}")
        if block.lang == "python":
            source = workdir / f"block_{number}.py"
            source.write_text(code)
            code = f"uv run python {shlex.quote(str(source))}"
        lines += [f"echo '--- README block {number}'", code]
    return "\n".join(lines) + "\n"


async def _wait_for(output: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float) -> str:
    async with asyncio.timeout(timeout_s):
        while text not in (seen := output.read_text(errors="replace")):
            assert process.poll() in (None, 0), f"the README's blocks failed:\n{seen}"
            await asyncio.sleep(0.1)
    return seen


@pytest.mark.slow
@pytest.mark.timeout(SCRIPT_TIMEOUT_S + 60)
async def test_the_readme_runs_as_pasted(database_url: str, tmp_path: Path) -> None:
    herald_port, receiver_port = free_port(), free_port()
    script = tmp_path / "readme.sh"
    script.write_text(_script(readme_blocks(), herald_port, receiver_port, tmp_path))
    output = tmp_path / "output.txt"
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERALD_")}
    env |= {"HERALD_DATABASE_URL": database_url, "HERALD_DATA_DIR": str(tmp_path / "data")}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            ["bash", str(script)], stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        async with asyncio.timeout(SCRIPT_TIMEOUT_S):
            while process.poll() is None:
                await asyncio.sleep(0.1)
        seen = output.read_text(errors="replace")
        assert process.returncode == 0, f"the README's blocks failed:\n{seen}"
        # Every answer the blocks printed was a success: an error body is {"detail": ...}.
        assert '"detail"' not in seen, seen
        assert '"deliveries":1' in seen.replace(" ", ""), seen
        assert "/portal/enter/" in seen, seen
        assert "2500 events recorded" in seen, seen
        # The receiver (still running in the background) verified and printed the event.
        seen = await _wait_for(output, f"received {EVENT_TYPE}", process, timeout_s=20)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{herald_port}") as client:
            assert (await client.get("/health/ready")).status_code == 200
    finally:
        await _stop_group(process.pid)


async def _stop_group(pgid: int) -> None:
    """SIGTERM to what the blocks left running (Herald, the receiver), SIGKILL if it lingers."""
    try:
        os.killpg(pgid, signal.SIGTERM)
        async with asyncio.timeout(15):
            while True:
                os.killpg(pgid, 0)
                await asyncio.sleep(0.1)
    except ProcessLookupError:
        return
    except TimeoutError:
        os.killpg(pgid, signal.SIGKILL)
