"""The READMEs' producers and receivers (the client's and the repository's), run as written: the
producer against the test Herald, the receiver on a request Herald signed for a real webhook."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from herald_client import Herald
from herald_process import HeraldServer
from receivers import WebhookReceiver

README = Path(__file__).parents[1] / "README.md"
ROOT_README = Path(__file__).parents[3] / "README.md"


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


def test_the_repository_readme_s_producer_runs(herald_server: HeraldServer) -> None:
    code = example("Producing events", ROOT_README).replace("http://127.0.0.1:8000", herald_server.base_url)
    namespace: dict[str, Any] = {}
    exec(compile(code.replace("ingest-key", herald_server.ingest_key), "README", "exec"), namespace)  # noqa: S102
    assert namespace["accepted"].type == "project:created"
    assert len(namespace["answers"]) == 2500
    assert len({answer.uuid for answer in namespace["answers"]}) == 2500


@pytest.mark.parametrize(
    ("readme", "heading", "shown"),
    [
        (README, "Receive webhooks", "project:created readme"),
        (ROOT_README, "Receiving webhooks", "project:created "),
    ],
)
async def test_the_receiver_example_accepts_herald_s_request_and_refuses_a_forgery(
    herald: Herald,
    receiver: WebhookReceiver,
    project: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    readme: Path,
    heading: str,
    shown: str,
) -> None:
    subscriptions = [{"event_type": "project:*", "project_uuid": project["uuid"]}]
    hook = herald.create_webhook("readme", receiver.url(), subscriptions=subscriptions)
    herald.send_event({"type": "project:created", "project": project})
    [request] = receiver.wait_for(1)
    headers = {k: v for k, v in request.headers if k.lower().startswith(("webhook-", "content-type"))}

    namespace: dict[str, Any] = {"SECRET": hook.secret}
    exec(compile(example(heading, readme), "README", "exec"), namespace)  # noqa: S102
    transport = httpx.ASGITransport(app=namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver.test") as client:
        good = await client.post("/herald", content=request.body, headers=headers)
        forged = await client.post("/herald", content=request.body + b" ", headers=headers)
    assert good.status_code == 204
    assert shown in capsys.readouterr().out
    assert forged.status_code == 400
