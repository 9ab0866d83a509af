"""A real browser for the console tests: Debian's Chromium driven by Playwright.

Playwright cannot download a browser here, so it drives ``/usr/bin/chromium`` (or
``HERALD_TEST_CHROMIUM``). Without one, the browser tests skip and say how to install it.
Every page a test opens goes through ``guard``: a request to any host but 127.0.0.1 is
refused and recorded, so a test can assert that a page made none.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = "no Chromium: install it with `apt-get install chromium` to run the browser tests"
LOCAL_HOSTS = {"127.0.0.1"}


def chromium_path() -> str:
    """The Chromium to drive; skips the test when there is none."""
    path = os.environ.get("HERALD_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        pytest.skip(INSTALL_HINT)
    return path


@dataclass
class OffMachine:
    """Requests that tried to leave the machine (refused)."""

    urls: list[str] = field(default_factory=list)

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return True
        if parts.hostname in LOCAL_HOSTS:
            return True
        self.urls.append(url)
        return False
