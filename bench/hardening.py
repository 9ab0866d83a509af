"""``uv run python -m bench.hardening [--other PATH]``: what one huge request head and big batches cost.

Each scenario runs on a ``herald serve`` of its own (dispatcher off, one process), so that its
peak RSS (``VmHWM``) is the scenario's:

- **head**: one request whose head carries a 120 MB header, written as fast as loopback takes it
  (and on after an answer, as a client that does not read would, until the server stops taking
  it), while ``/health/live`` is polled on other connections every 20 ms. Reported: the time from
  the first byte sent to the server's answer, how much the server took, the health latencies
  meanwhile, and the server's RSS before and at its peak.
- **four batches**: four batch requests at once, each just under ``HERALD_MAX_BATCH_BYTES``'s
  default (16 MiB: 1,000 events of ~16 KiB). Reported: their statuses, the time until all four
  are answered, and the peak RSS.
- **one 400 MB batch**: the request of the issue that led to the batch limit (1,000 events of
  ~400 KB). Reported as above.

With ``--other PATH`` (another checkout, e.g. ``git worktree add /tmp/before <commit>``, run on
this checkout's environment) every scenario runs on that code too. Everything talks to
127.0.0.1. Prints one table and writes ``bench/hardening_results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench.infra import Herald, Postgres, start_herald
from bench.workload import main_event

HERE = Path(__file__).resolve().parents[1]
RESULTS_PATH = Path(__file__).with_name("hardening_results.json")
MIB = 1024 * 1024
HEAD_HEADER_BYTES = 120 * 1000 * 1000
BATCH_EVENTS = 1000
DEFAULT_MAX_BATCH_BYTES = 16 * MIB
WRITE_CHUNK_BYTES = 256 * 1024
HEALTH_EVERY_S = 0.02
ANSWER_TIMEOUT_S = 300.0


def _memory_kib(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def _port(herald: Herald) -> int:
    return int(herald.base_url.rsplit(":", 1)[1])


async def send_and_answer(port: int, parts: Iterable[bytes]) -> dict[str, Any]:
    """Write ``parts`` while reading the answer, and go on writing after it as a client that does
    not read would, until all is sent or the server stops taking it. Reports the status (None if
    the connection closed unanswered), when it came after the first byte sent, and how much was
    sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    sent = 0

    async def write() -> None:
        nonlocal sent
        with contextlib.suppress(OSError):  # the server closed the connection
            for part in parts:
                writer.write(part)
                await writer.drain()
                sent += len(part)

    writing = asyncio.create_task(write())
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            try:
                line = await reader.readline()
            except OSError:  # reset before an answer could be read
                line = b""
            answered_s = time.monotonic() - started
            await writing
        status = int(line.split()[1]) if line.startswith(b"HTTP/") else None
        return {"status": status, "answered_s": round(answered_s, 3), "sent_mib": round(sent / MIB, 1)}
    finally:
        writing.cancel()
        writer.close()


def huge_head_parts() -> Iterator[bytes]:
    yield b"GET /health/live HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nX-Big: "
    piece = b"a" * WRITE_CHUNK_BYTES
    for start in range(0, HEAD_HEADER_BYTES, WRITE_CHUNK_BYTES):
        yield piece[: min(WRITE_CHUNK_BYTES, HEAD_HEADER_BYTES - start)]
    yield b"\r\n\r\n"


async def health_latencies(port: int, stop: asyncio.Event) -> list[float]:
    """``/health/live`` on a new connection every 20 ms until ``stop``: each answer's latency."""
    latencies: list[float] = []
    while not stop.is_set():
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        await reader.read()
        writer.close()
        latencies.append(time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEALTH_EVERY_S)
    return latencies


async def huge_head(herald: Herald) -> dict[str, Any]:
    port = _port(herald)
    before = _memory_kib(herald.child.pid)["VmRSS"]
    stop = asyncio.Event()
    polling = asyncio.create_task(health_latencies(port, stop))
    await asyncio.sleep(0.2)  # a few answers before, for the idle latency
    answer = await send_and_answer(port, huge_head_parts())
    stop.set()
    latencies = await polling
    return {
        **answer,
        "health_polls": len(latencies),
        "health_median_ms": round(1000 * statistics.median(latencies), 1),
        "health_max_ms": round(1000 * max(latencies), 1),
        **_rss(herald, before),
    }


def _rss(herald: Herald, before_kib: int) -> dict[str, float]:
    memory = _memory_kib(herald.child.pid)
    return {"rss_before_mib": round(before_kib / 1024, 1), "peak_rss_mib": round(memory["VmHWM"] / 1024, 1)}


def batch_body(size: int) -> bytes:
    """A batch of 1,000 events whose JSON text is just under ``size`` bytes."""
    event = main_event()
    event["pipeline_run"]["parameters"]["pipeline_parameters"]["blob"] = ""
    base = len(orjson.dumps({"events": [event] * BATCH_EVENTS}))
    event["pipeline_run"]["parameters"]["pipeline_parameters"]["blob"] = "x" * ((size - base) // BATCH_EVENTS)
    body = orjson.dumps({"events": [event] * BATCH_EVENTS})
    assert len(body) <= size
    return body


async def batches(herald: Herald, count: int, size: int) -> dict[str, Any]:
    port = _port(herald)
    before = _memory_kib(herald.child.pid)["VmRSS"]
    body = batch_body(size)
    head = (
        b"POST /api/v1/events/batch HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    started = time.monotonic()
    answers = await asyncio.gather(*(send_and_answer(port, (head, body)) for _ in range(count)))
    return {
        "body_mib": round(len(body) / MIB, 1),
        "statuses": [answer["status"] for answer in answers],
        "all_answered_s": round(time.monotonic() - started, 2),
        **_rss(herald, before),
    }


Scenario = Callable[[Herald], Awaitable[dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {
    "120 MB header": huge_head,
    "four 16 MiB batches at once": lambda herald: batches(herald, 4, DEFAULT_MAX_BATCH_BYTES),
    "one 400 MB batch": lambda herald: batches(herald, 1, 400 * 1000 * 1000),
}


def _commit(tree: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    trees = {"this": HERE}
    if args.other:
        trees["other"] = Path(args.other).resolve()
    workdir = Path(tempfile.mkdtemp(prefix="herald-hardening-"))
    pg = Postgres(workdir)
    await pg.start()
    figures: dict[str, dict[str, Any]] = {}
    try:
        for name, scenario in SCENARIOS.items():
            for side, tree in trees.items():
                database = await pg.create_database(f"hardening_{side}", migrate=False)
                herald = await start_herald(workdir, database, dispatcher=False, tree=tree)
                try:
                    result = await scenario(herald)
                finally:
                    herald.child.stop()
                figures.setdefault(name, {})[side] = result
                print(f"{name} | {side}: {result}", flush=True)
    finally:
        await pg.stop()
    return {
        "command": " ".join(["python -m bench.hardening", *sys.argv[1:]]),
        "commits": {side: _commit(tree) for side, tree in trees.items()},
        "figures": figures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hardening", description=__doc__)
    parser.add_argument("--other", help="another checkout (a git worktree) to run beside this one")
    args = parser.parse_args(argv)
    results = uvloop.run(run(args))
    RESULTS_PATH.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(table(results))
    return 0


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table, one row per scenario and checkout."""
    rows = [
        "| scenario | code | answer | answered after | /health/live meanwhile (median / max) "
        "| RSS before → peak |",
        "|---|---|---|---|---|---|",
    ]
    for name, sides in results["figures"].items():
        for side, figures in sides.items():
            statuses = figures.get("statuses", [figures.get("status")])
            health = (
                f"{figures['health_median_ms']} / {figures['health_max_ms']} ms"
                if "health_median_ms" in figures
                else ""
            )
            answered = figures.get("answered_s", figures.get("all_answered_s"))
            sent = f" (took {figures['sent_mib']} MiB)" if "sent_mib" in figures else ""
            rows.append(
                f"| {name} | {results['commits'][side]} | {', '.join(map(str, statuses))}{sent} "
                f"| {answered} s | {health} | {figures['rss_before_mib']} → {figures['peak_rss_mib']} MiB |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
