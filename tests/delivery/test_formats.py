"""Webhook bodies: standard envelope, form encoding, chat sentences and format defaults."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from service.common.formats import ContentType, Format, effective_content_type, format_for_url
from service.delivery.formats import DISCORD_CONTENT_MAX_CHARS, render_body, summarize

_FAMILIES = {
    "project": "created,updated,deleted",
    "project:pipeline": "created,updated,deleted",
    "project:pipeline:interactive-session": "started,stopped,service-restarted,failed,succeeded",
    "project:pipeline:interactive-session:pipeline-run": "created,started,cancelled,failed,succeeded",
    "project:environment": "created,deleted",
    "project:environment:image-build": "created,started,cancelled,failed,succeeded",
    "project:one-off-job": "created,started,deleted,cancelled,failed,succeeded,updated",
    "project:one-off-job:pipeline-run": "created,started,cancelled,failed,deleted,succeeded",
    "project:cron-job": "created,started,deleted,cancelled,failed,paused,unpaused,updated",
    "project:cron-job:run": "started,succeeded,failed",
    "project:cron-job:run:pipeline-run": "created,started,cancelled,failed,deleted,succeeded",
    "jupyter:image-build": "created,started,cancelled,failed,succeeded",
}
CATALOG = [f"{family}:{action}" for family, actions in _FAMILIES.items() for action in actions.split(",")]
ROOT = {"uuid": "0b3c6a8e-4f7e-4a53-9a38-1b0c8a1f7d10", "timestamp": "2025-01-01T12:00:00Z"}
UPDATE = {"changes": [{"type": "UPDATED", "changed_object": "name", "old_value": "a", "new_value": "b"}]}
PIPELINE_RUN = {
    "uuid": "5e0c",
    "status": "FAILURE",
    "number": 3,
    "number_in_run": 2,
    "failed_steps": [{"uuid": "s1", "title": "Load"}],
}


def sample_event(event_type: str) -> dict[str, Any]:
    """Build a notification payload for ``event_type`` with every layer it has."""
    event: dict[str, Any] = {**ROOT, "type": event_type}
    if event_type.startswith("jupyter:"):
        event["jupyter"] = {"image_build": {"uuid": "b1", "image_tag": "7"}}
        return event
    project: dict[str, Any] = {"uuid": "p1", "name": "demo"}
    event["project"] = project
    family = event_type.rpartition(":")[0]
    updated = event_type.endswith(":updated")
    if family == "project" and updated:
        project["update"] = UPDATE
    if family.startswith("project:pipeline"):
        pipeline: dict[str, Any] = {"uuid": "pl1", "name": "train"}
        project["pipeline"] = pipeline
        if updated:
            pipeline["update"] = UPDATE
        if "interactive-session" in family:
            pipeline["session"] = {"user_services": {}}
            if family.endswith("pipeline-run"):
                pipeline["session"]["pipeline_run"] = dict(PIPELINE_RUN)
    if family.startswith("project:environment"):
        project["environment"] = {"uuid": "e1", "name": "python"}
        if family.endswith("image-build"):
            project["environment"]["image_build"] = {"uuid": "b2", "image_tag": "3"}
    if family.startswith(("project:one-off-job", "project:cron-job")):
        job: dict[str, Any] = {"uuid": "j1", "status": "STARTED", "pipeline_name": "train"}
        project["job"] = job
        if family.startswith("project:one-off-job"):
            job.update(name="nightly", total_runs=2)
        else:
            job.update(name="hourly", schedule="0 * * * *", next_scheduled_time="2025-01-01T13:00:00Z")
        if updated:
            job["update"] = UPDATE
        if family == "project:one-off-job:pipeline-run":
            job["pipeline_run"] = dict(PIPELINE_RUN)
        if family.startswith("project:cron-job:run"):
            job["run"] = {"number": 4, "total_pipeline_runs": 12, "status": "SUCCESS"}
            if family.endswith("pipeline-run"):
                job["run"]["pipeline_run"] = dict(PIPELINE_RUN)
    return event


JUNK: tuple[Any, ...] = (None, 7, "x", [], {}, [None], True, -1.5)
MISSING = object()
DELIVERED_FOR = {"uuid": "d6f1", "name": "ops", "type": "webhook"}


def test_catalog_has_58_types() -> None:
    assert len(CATALOG) == 58


@pytest.mark.parametrize("event_type", [*CATALOG, "ping"])
def test_every_type_gets_a_sentence_not_a_json_dump(event_type: str) -> None:
    sentence = summarize(sample_event(event_type))
    assert sentence
    assert "{" not in sentence
    assert "Herald event" not in sentence
    if event_type.startswith("project:"):
        assert '"demo"' in sentence


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        (
            "project:one-off-job:pipeline-run:failed",
            'Pipeline run #3 of job "nightly" in project "demo" failed (step "Load")',
        ),
        (
            "project:cron-job:run:succeeded",
            'Run #4 of cron job "hourly" in project "demo" succeeded (12 pipeline runs)',
        ),
        (
            "project:cron-job:run:pipeline-run:failed",
            'Pipeline run #2 of run #4 of cron job "hourly" in project "demo" failed (step "Load")',
        ),
        ("project:created", 'Project "demo" was created'),
        ("project:pipeline:updated", 'Pipeline "train" in project "demo" was updated (changed "name")'),
        ("project:cron-job:paused", 'Cron job "hourly" in project "demo" was paused'),
        (
            "project:environment:image-build:succeeded",
            'Image build of environment "python" in project "demo" succeeded (image "3")',
        ),
        ("jupyter:image-build:failed", 'Jupyter image build failed (image "7")'),
        ("ping", "Test notification from Herald (ping)"),
    ],
)
def test_sentences_carry_the_key_facts(event_type: str, expected: str) -> None:
    assert summarize(sample_event(event_type)) == expected


def _truncations(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Every copy of ``event`` with one nested key removed or replaced by junk."""
    copies: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            for replacement in (*JUNK, MISSING):
                copy = json.loads(json.dumps(event))
                target = copy
                for step in path:
                    target = target[step]
                if replacement is MISSING:
                    del target[key]
                else:
                    target[key] = replacement
                copies.append(copy)
            if isinstance(value, dict):
                walk(value, (*path, key))

    walk(event, ())
    return copies


@pytest.mark.parametrize("event_type", CATALOG)
def test_summaries_never_raise_on_missing_or_odd_fields(event_type: str) -> None:
    for broken in _truncations(sample_event(event_type)):
        for markup in ("plain", "slack", "teams", "discord"):
            assert isinstance(summarize(broken, markup=markup), str)


@pytest.mark.parametrize(
    "junk", [{}, {"type": 5}, {"type": ""}, {"type": "unknown:thing"}, {"type": "project:x"}]
)
def test_summaries_of_unknown_shapes_are_still_sentences(junk: dict[str, Any]) -> None:
    assert summarize(junk)
    for fmt in ("slack", "teams", "discord"):
        assert render_body(fmt, "application/json", DELIVERED_FOR, junk)


def test_standard_json_body_is_the_envelope() -> None:
    event = sample_event("project:created")
    body = render_body("standard", "application/json", DELIVERED_FOR, event)
    assert json.loads(body) == {"delivered_for": DELIVERED_FOR, "event": event}


def test_form_encoded_body_has_two_json_fields() -> None:
    event = sample_event("project:one-off-job:pipeline-run:failed")
    body = render_body("standard", "application/x-www-form-urlencoded", DELIVERED_FOR, event)
    fields = parse_qs(body.decode("ascii"), strict_parsing=True)
    assert set(fields) == {"delivered_for", "event"}
    assert json.loads(fields["delivered_for"][0]) == DELIVERED_FOR
    assert json.loads(fields["event"][0]) == event


@pytest.mark.parametrize(("fmt", "key"), [("slack", "text"), ("teams", "text"), ("discord", "content")])
def test_chat_formats_send_one_sentence(fmt: Format, key: str) -> None:
    event = sample_event("project:cron-job:run:succeeded")
    body = json.loads(render_body(fmt, "application/json", DELIVERED_FOR, event))
    assert body == {key: 'Run #4 of cron job "hourly" in project "demo" succeeded (12 pipeline runs)'}


def test_chat_formats_are_json_whatever_the_content_type() -> None:
    body = render_body("slack", "application/x-www-form-urlencoded", DELIVERED_FOR, sample_event("ping"))
    assert json.loads(body) == {"text": "Test notification from Herald (ping)"}
    assert effective_content_type("slack", "application/x-www-form-urlencoded") == "application/json"
    assert effective_content_type("standard", "application/x-www-form-urlencoded") == (
        "application/x-www-form-urlencoded"
    )


def _with_names(event_type: str, name: str) -> dict[str, Any]:
    event = sample_event(event_type)
    event["project"]["name"] = name
    event["project"]["job"]["name"] = name
    steps = [{"uuid": str(i), "title": name} for i in range(50)]
    event["project"]["job"]["pipeline_run"]["failed_steps"] = steps
    return event


def test_discord_content_is_capped_at_2000_characters() -> None:
    event = _with_names("project:one-off-job:pipeline-run:failed", "@everyone " + "\\*x" * 5000)
    content = json.loads(render_body("discord", "application/json", DELIVERED_FOR, event))["content"]
    assert len(content) <= DISCORD_CONTENT_MAX_CHARS
    assert "and 47 more" in content


def test_slack_and_teams_text_is_bounded() -> None:
    event = _with_names("project:one-off-job:pipeline-run:failed", "&<>" * 5000)
    formats: tuple[Format, ...] = ("slack", "teams")
    for fmt in formats:
        text = json.loads(render_body(fmt, "application/json", DELIVERED_FOR, event))["text"]
        assert len(text) <= 3000


def test_slack_markup_in_names_is_neutralized() -> None:
    event = _with_names("project:one-off-job:pipeline-run:failed", "<!channel> <http://evil.test|click> & co")
    text = json.loads(render_body("slack", "application/json", DELIVERED_FOR, event))["text"]
    assert "<" not in text
    assert ">" not in text
    assert "&lt;!channel&gt;" in text
    assert "&amp; co" in text


def test_discord_mentions_and_links_in_names_are_neutralized() -> None:
    event = _with_names(
        "project:one-off-job:pipeline-run:failed", "@everyone @here <@123> [click](http://evil.test)"
    )
    content = json.loads(render_body("discord", "application/json", DELIVERED_FOR, event))["content"]
    assert "@everyone" not in content
    assert "@here" not in content
    assert "<@123>" not in content
    assert "[click](" not in content


def test_teams_markup_in_names_is_neutralized() -> None:
    event = _with_names("project:one-off-job:pipeline-run:failed", "[click](http://evil.test) <b>x</b>")
    text = json.loads(render_body("teams", "application/json", DELIVERED_FOR, event))["text"]
    assert "[click](" not in text
    assert "<b>" not in text


def test_newlines_in_names_are_flattened() -> None:
    event = sample_event("project:created")
    event["project"]["name"] = "line one\n# heading\r\n\tend"
    assert summarize(event) == 'Project "line one # heading end" was created'


def test_long_names_are_shortened() -> None:
    event = sample_event("project:created")
    event["project"]["name"] = "n" * 500
    assert len(summarize(event)) < 200


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXX", "slack"),
        ("https://HOOKS.SLACK.COM/services/T000/B000/XXX", "slack"),
        ("https://discord.com/api/webhooks/123/abc", "discord"),
        ("https://discordapp.com/api/webhooks/123/abc", "discord"),
        ("https://discord.com/channels/123", "standard"),
        ("https://example.webhook.office.com/webhookb2/abc", "teams"),
        ("https://webhook.office.com/webhookb2/abc", "standard"),
        ("https://hooks.slack.com.evil.test/services/x", "standard"),
        ("https://example.com/api/webhooks/1", "standard"),
        ("http://[::1", "standard"),
        ("not a url", "standard"),
    ],
)
def test_format_for_url(url: str, fmt: str) -> None:
    assert format_for_url(url) == fmt


def test_catalog_pairs_render_in_every_format_and_content_type() -> None:
    formats: tuple[Format, ...] = ("standard", "slack", "teams", "discord")
    content_types: tuple[ContentType, ...] = ("application/json", "application/x-www-form-urlencoded")
    for event_type, fmt, content_type in itertools.product(CATALOG, formats, content_types):
        assert render_body(fmt, content_type, DELIVERED_FOR, sample_event(event_type))
