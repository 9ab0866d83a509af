"""The command line: the process set-up, the checks of the keys, and ``serve``'s options."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import pytest

from service.cli import build_parser, check_api_keys, main, serve_overrides
from service.config import Settings
from service.serving import GC_YOUNG_THRESHOLD, pause_garbage_collector, tune_garbage_collector


def test_serving_freezes_start_up_objects_and_enlarges_the_young_generation() -> None:
    thresholds = gc.get_threshold()
    try:
        pause_garbage_collector()
        assert not gc.isenabled()
        tune_garbage_collector()
        assert gc.isenabled()
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_a_short_api_key_is_a_warning_naming_its_entry_never_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(_env_file=None, api_keys="admin:0123456789abcdef,ingest:short-key-42")
    with caplog.at_level(logging.WARNING, logger="herald"):
        assert check_api_keys(settings, "0.0.0.0")
    [warning] = [r.getMessage() for r in caplog.records if r.name == "herald"]
    assert "HERALD_API_KEYS entry #2 is shorter than 16 characters" in warning
    assert "short-key-42" not in caplog.text


def test_long_keys_start_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(_env_file=None, api_keys="admin:0123456789abcdef")
    with caplog.at_level(logging.WARNING, logger="herald"):
        assert check_api_keys(settings, "0.0.0.0")
    assert not [r for r in caplog.records if r.name == "herald"]


def test_serve_refuses_a_key_under_two_scopes_naming_the_entries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("HERALD_API_KEYS", "admin:the-same-key-0123456789,ingest:the-same-key-0123456789")
    with pytest.raises(SystemExit) as refused:
        main(["serve"])
    message = str(refused.value.code)
    assert "HERALD_API_KEYS entries #1 (admin) and #2 (ingest) hold the same key" in message
    assert "the-same-key" not in message


def serve_options(*argv: str) -> dict[str, Any]:
    return serve_overrides(build_parser().parse_args(["serve", *argv]))


def test_serve_options_override_the_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert serve_options() == {}  # the environment decides
    given = serve_options("--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8, 192.0.2.1")
    settings = Settings(_env_file=None, **given)
    assert settings.proxy_headers
    assert settings.trusted_proxies.trust("10.1.2.3")
    assert not settings.trusted_proxies.trust("127.0.0.1")
    monkeypatch.setenv("HERALD_PROXY_HEADERS", "true")
    assert not Settings(_env_file=None, **serve_options("--no-proxy-headers")).proxy_headers


def test_serve_refuses_a_forwarded_allow_ips_entry_that_is_no_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as refused:
        serve_options("--forwarded-allow-ips", "127.0.0.1,proxy.internal")
    assert refused.value.code == 2
    assert (
        "entry #2 ('proxy.internal') is neither an IP address, a CIDR network nor *"
        in capsys.readouterr().err
    )
