"""The READMEs' producers and receivers (the client's and the repository's), run as written: the
producer against the test Herald, the receiver on a request Herald signed for a real webhook."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from herald_client import Herald
from herald_process import HeraldServer
from receivers import WebhookReceiver

README = Path(__file__).parents[1] / "README.md"
# The repository's README runs its producer as pasted (tests/test_readme.py) and shows the handler
# of this example receiver, which "Try it" runs.
EXAMPLE_RECEIVER = Path(__file__).parents[3] / "docs" / "examples" / "receiver.py"


def example(heading: str, readme: Path = README) -> str:
    """The first python block after ``heading``."""
    text = readme.read_text()
    section = text[text.index(f"## {heading}\n") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_producer_example_runs(herald_server: HeraldServer, capsys: pytest.CaptureFixture[str]) -> None:
    code = example("Send events").replace("http://127.0.0.1:8000", herald_server.base_url)
    namespace: dict[str, Any] = {}
    exec(compile(code.replace("ingest-key", herald_server.ingest_key), "README", "exec"), namespace)  # noqa: S102
    assert namespace["accepted"].replayed is False
    assert len(namespace["answers"]) == 2500
    assert namespace["accepted"].uuid in capsys.readouterr().out


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        (lambda: example("Receive webhooks"), "project:created readme"),
        (EXAMPLE_RECEIVER.read_text, "received project:created "),
    ],
    ids=["client-readme", "example-receiver"],
)
async def test_the_receiver_example_accepts_herald_s_request_and_refuses_a_forgery(
    herald: Herald,
    receiver: WebhookReceiver,
    project: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    source: Callable[[], str],
    shown: str,
) -> None:
    subscriptions = [{"event_type": "project:*", "project_uuid": project["uuid"]}]
    hook = herald.create_webhook("readme", receiver.url(), subscriptions=subscriptions)
    herald.send_event({"type": "project:created", "project": project})
    [request] = receiver.wait_for(1)
    headers = {k: v for k, v in request.headers if k.lower().startswith(("webhook-", "content-type"))}

    assert hook.secret is not None
    monkeypatch.setenv("WEBHOOK_SECRET", hook.secret)  # what the example receiver reads
    namespace: dict[str, Any] = {"SECRET": hook.secret}
    exec(compile(source(), "README", "exec"), namespace)  # noqa: S102
    transport = httpx.ASGITransport(app=namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver.test") as client:
        good = await client.post("/herald", content=request.body, headers=headers)
        forged = await client.post("/herald", content=request.body + b" ", headers=headers)
    assert good.status_code == 204
    assert shown in capsys.readouterr().out
    assert forged.status_code == 400
