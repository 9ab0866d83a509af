"""``uv run python -m bench.startup``: how long ``herald --help`` and ``herald serve`` take to start.

``--help`` is timed as the installed script (``.venv/bin/herald``) and through ``uv run``, which
adds its own start. ``serve`` is timed from the spawn to the first 200 of ``/health/ready``, on
the embedded PostgreSQL with an existing data directory (made by a first, untimed ``herald
migrate``), then stopped with SIGTERM. Each figure is the median and the best of ``--runs`` runs:
the machine is shared, the best is the least disturbed.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.infra import cpu_seconds, free_port

HERALD_BIN = Path(sys.executable).parent / "herald"
READY_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.01


def _env(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERALD_")}
    return env | {"HERALD_DATA_DIR": str(data_dir), "HERALD_TELEMETRY_DISABLED": "true"}


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``argv``, its children included."""
    started, cpu_before = time.monotonic(), _children_cpu_s()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started, _children_cpu_s() - cpu_before


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as answer:  # noqa: S310 (http://127.0.0.1 only)
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def time_serve(env: dict[str, str], workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds from the spawn of ``herald serve`` to its first 200 on /health/ready;
    the CPU is the parent's own (not its workers', nor PostgreSQL's)."""
    port = free_port()
    argv = [str(HERALD_BIN), "serve", "--port", str(port), "--workers", str(workers)]
    if workers == 1:
        argv = argv[:-2]  # also runs against a build without --workers
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _ready(f"http://127.0.0.1:{port}/health/ready"):
            if process.poll() is not None:
                raise SystemExit(f"herald serve exited with {process.returncode}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise SystemExit("herald serve was not ready in time")
            time.sleep(POLL_INTERVAL_S)
        return time.monotonic() - started, cpu_seconds(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _summary(name: str, runs: list[tuple[float, float]]) -> str:
    wall, cpu = [run[0] for run in runs], [run[1] for run in runs]
    return (
        f"{name:<30} wall median {statistics.median(wall):6.3f} s, best {min(wall):6.3f} s;"
        f"  CPU median {statistics.median(cpu):6.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hs-") as tmp:
        env = _env(Path(tmp))
        subprocess.run([str(HERALD_BIN), "migrate"], env=env, check=True, stderr=subprocess.DEVNULL)
        help_venv = [time_command([str(HERALD_BIN), "--help"], env) for _ in range(args.runs)]
        help_uv = [time_command(["uv", "run", "herald", "--help"], env) for _ in range(args.runs)]
        serve = [time_serve(env, args.workers) for _ in range(args.runs)]
    print(_summary(".venv/bin/herald --help", help_venv))
    print(_summary("uv run herald --help", help_uv))
    print(_summary(f"herald serve → ready (N={args.workers})", serve))


if __name__ == "__main__":
    main()
