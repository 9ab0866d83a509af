"""``herald serve`` as a real process: its command, its environment, a free port, readiness."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.app import TEST_SECRETS_KEY

HERALD_BIN = Path(sys.executable).parent / "herald"


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (yet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def herald_env(database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without its ``HERALD_*`` variables, plus the test database and
    ``settings`` (dispatcher and start-up migrations off unless given)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERALD_")}
    env |= {
        "HERALD_DATABASE_URL": database_url,
        "HERALD_DISPATCHER_ENABLED": "false",
        "HERALD_MIGRATE_ON_START": "false",
        "HERALD_SECRETS_KEYS": TEST_SECRETS_KEY,
    }
    return env | settings


async def wait_ready(port: int, process: subprocess.Popen[Any], timeout_s: float = 30.0) -> None:
    """Wait until the process on ``port`` answers ``/health/ready`` with 200; fail if it exits."""
    async with httpx.AsyncClient() as client:
        async with asyncio.timeout(timeout_s):
            while True:
                assert process.poll() is None, "herald exited at start"
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/health/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)


def worker_pids(parent: int) -> set[int]:
    """The worker processes of a ``herald serve --workers`` supervisor (multiprocessing's
    resource tracker, also its child, left out)."""
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and b"multiprocessing.spawn" in command:
            pids.add(int(entry.name))
    return pids


def connection_holders(port: int, pids: set[int]) -> set[int]:
    """Which of ``pids`` hold the server side of an established TCP connection on ``port``,
    i.e. accepted it and answer what is asked on it (read from /proc/net/tcp and each
    process's file descriptors)."""
    inodes: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], int(fields[9])
        if local_port == port and state == "01":  # ESTABLISHED
            inodes.add(inode)
    return {pid for pid in pids if _socket_inodes(pid) & inodes}


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # the process is gone
        return inodes
    for fd in descriptors:
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"
