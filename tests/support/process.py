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
