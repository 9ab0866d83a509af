"""Strict ingest validation (docs/events.md, "Ingest rules"); no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from service.catalog import CATALOG
from service.schemas.event_bodies import SECTIONS_BY_KIND
from service.schemas.events import EVENT_ADAPTER
from tests.schemas.validation_helpers import errors, locs, valid
from tests.support.event_samples import sample_event

ALL_TYPES = list(CATALOG)


def minimal(type_name: str) -> dict[str, Any]:
    """The body with only what ``type_name`` requires."""
    body = sample_event(type_name)
    for key in ("uuid", "timestamp", "session"):
        body.pop(key, None)
    for name, section in list(body.items()):
        if name == "type":
            continue
        required = SECTIONS_BY_KIND[CATALOG[type_name].kind][name].model.__required_keys__
        body[name] = {k: v for k, v in section.items() if k in required}
    return body


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_the_sample_of_every_type_is_valid(type_name: str) -> None:
    body = sample_event(type_name)
    event = valid(body)
    assert event.type == type_name
    assert event.kind == CATALOG[type_name].kind
    assert event.uuid == UUID(body["uuid"])
    assert event.timestamp == datetime(2026, 1, 2, 3, 5, 6, 123456, tzinfo=UTC)
    assert set(event.sections) == set(SECTIONS_BY_KIND[event.kind])
    json.dumps(event.sections)  # JSON-ready


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_the_minimal_body_of_every_type_is_valid(type_name: str) -> None:
    event = valid(minimal(type_name))
    assert event.uuid is None
    assert event.timestamp is None


def test_timestamps_are_normalized_to_utc_and_optional_fields_stay_out() -> None:
    body = sample_event("project:environment:image-build:succeeded")
    body["image_build"] = {"requested_time": "2026-01-02T05:00:00+02:00"}
    event = valid(body)
    assert event.sections["image_build"] == {"requested_time": "2026-01-02T03:00:00Z"}
    assert event.timestamp is not None
    assert event.timestamp.tzinfo is UTC


def test_equal_requests_give_equal_sections_whatever_their_spelling() -> None:
    body = sample_event("project:cron-job:created")
    other = json.loads(json.dumps(body))
    other["project"]["uuid"] = body["project"]["uuid"].upper()
    other["job"]["next_scheduled_time"] = "2026-01-03T04:00:00+01:00"
    other["job"]["pipeline_name"] = body["job"]["pipeline_name"]
    assert valid(body).sections == valid(other).sections


def test_null_for_an_optional_field_means_left_out() -> None:
    body = minimal("project:environment:created")
    body["environment"]["name"] = None
    body["uuid"] = None
    event = valid(body)
    assert event.sections["environment"] == {"uuid": body["environment"]["uuid"]}
    assert event.uuid is None


def test_update_values_keep_an_explicit_null() -> None:
    body = minimal("project:updated")
    body["update"]["changes"] = [{"type": "UPDATED", "changed_object": "name", "old_value": None}]
    changes = valid(body).sections["update"]["changes"]
    assert changes == [{"type": "UPDATED", "changed_object": "name", "old_value": None}]


@pytest.mark.parametrize("raw", [[], [1, 2], 1, 1.5, None, "x", True, 10**100])
def test_a_body_that_is_not_an_object_is_refused(raw: object) -> None:
    assert locs(raw) == [("body",)]


@pytest.mark.parametrize(
    ("type_value", "needle"),
    [("ping", "ping"), ("project:nope", "project:nope"), ("Project:Created", "Project:Created"), ("", "")],
)
def test_unknown_types_and_ping_are_refused_naming_the_field(type_value: str, needle: str) -> None:
    [error] = errors({"type": type_value})
    assert error["loc"] == ("body", "type")
    assert needle in error["msg"]


@pytest.mark.parametrize("type_value", [None, 1, [], {}])
def test_type_must_be_a_string(type_value: object) -> None:
    assert ("body", "type") in locs({"type": type_value})


def test_missing_type_is_named() -> None:
    assert locs({}) == [("body", "type")]


def test_unknown_top_level_key_is_named() -> None:
    body = sample_event("project:created")
    body["colour"] = "blue"
    assert locs(body) == [("body", "colour")]


def test_unknown_key_inside_a_section_is_named() -> None:
    body = sample_event("project:created")
    body["project"]["colour"] = "blue"
    assert locs(body) == [("body", "project", "colour")]


@pytest.mark.parametrize(
    ("type_name", "section"),
    [
        ("project:created", "project"),
        ("project:pipeline:created", "pipeline"),
        ("project:environment:created", "environment"),
        ("project:environment:image-build:started", "image_build"),
        ("project:one-off-job:created", "job"),
        ("project:cron-job:run:started", "run"),
        ("project:cron-job:run:pipeline-run:failed", "pipeline_run"),
        ("project:one-off-job:pipeline-run:failed", "pipeline_run"),
        ("project:pipeline:interactive-session:pipeline-run:started", "pipeline_run"),
        ("project:updated", "update"),
        ("project:pipeline:updated", "update"),
        ("project:one-off-job:updated", "update"),
        ("project:cron-job:updated", "update"),
        ("jupyter:image-build:created", "image_build"),
    ],
)
def test_a_missing_required_section_is_named(type_name: str, section: str) -> None:
    body = sample_event(type_name)
    del body[section]
    [error] = errors(body)
    assert error["loc"] == ("body", section)
    assert error["type"] == "missing"


@pytest.mark.parametrize(
    ("type_name", "section", "field"),
    [
        ("project:created", "project", "uuid"),
        ("project:created", "project", "name"),
        ("project:pipeline:deleted", "pipeline", "name"),
        ("project:environment:created", "environment", "uuid"),
        ("project:cron-job:created", "job", "schedule"),
        ("project:one-off-job:created", "job", "total_runs"),
        ("project:one-off-job:created", "job", "status"),
        ("project:cron-job:run:failed", "run", "number"),
        ("project:cron-job:run:failed", "run", "total_pipeline_runs"),
        ("project:one-off-job:pipeline-run:failed", "pipeline_run", "uuid"),
        ("jupyter:image-build:failed", "image_build", "uuid"),
        ("project:updated", "update", "changes"),
    ],
)
def test_a_missing_required_field_is_named(type_name: str, section: str, field: str) -> None:
    body = sample_event(type_name)
    del body[section][field]
    [error] = errors(body)
    assert error["loc"] == ("body", section, field)
    assert error["type"] == "missing"


def test_environment_image_builds_do_not_need_a_build_uuid() -> None:
    body = sample_event("project:environment:image-build:created")
    del body["image_build"]["uuid"]
    valid(body)


@pytest.mark.parametrize(
    "type_name",
    [name for name in ALL_TYPES if name.startswith("project:pipeline:interactive-session:")],
)
def test_session_is_optional_for_interactive_session_types(type_name: str) -> None:
    body = sample_event(type_name)
    del body["session"]
    assert "session" not in valid(body).sections
    body["session"] = None
    assert "session" not in valid(body).sections
    body["session"] = {}
    assert valid(body).sections["session"] == {}


@pytest.mark.parametrize(
    ("type_name", "section"),
    [
        ("project:created", "job"),
        ("project:created", "pipeline"),
        ("project:created", "update"),
        ("project:pipeline:created", "session"),
        ("project:one-off-job:created", "pipeline_run"),
        ("project:one-off-job:created", "run"),
        ("project:cron-job:created", "run"),
        ("jupyter:image-build:created", "project"),
    ],
)
def test_a_section_the_type_does_not_take_is_refused(type_name: str, section: str) -> None:
    body = sample_event(type_name)
    body[section] = sample_event("project:cron-job:run:pipeline-run:failed").get(
        section, {"uuid": str(uuid4())}
    )
    [error] = errors(body)
    assert error["loc"] == ("body", section)
    assert error["type"] == "extra_forbidden"


@pytest.mark.parametrize(
    ("type_name", "section", "field", "value"),
    [
        ("project:one-off-job:pipeline-run:failed", "pipeline_run", "number_in_run", 1),
        ("project:pipeline:interactive-session:pipeline-run:failed", "pipeline_run", "number_in_run", 1),
        ("project:one-off-job:created", "job", "schedule", "0 * * * *"),
        ("project:cron-job:created", "job", "total_runs", 3),
    ],
)
def test_fields_of_other_job_kinds_are_refused(type_name: str, section: str, field: str, value: Any) -> None:
    body = sample_event(type_name)
    body[section][field] = value
    assert locs(body) == [("body", section, field)]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("timestamp",), "2026-01-02T03:04:05"),
        (("timestamp",), "2026-01-02"),
        (("timestamp",), 1767322800),
        (("timestamp",), "1767322800"),
        (("timestamp",), "yesterday"),
        (("uuid",), "not-a-uuid"),
        (("uuid",), 12),
        (("project", "uuid"), "1234"),
        (("job", "next_scheduled_time"), "2026-01-03T03:00:00"),
        (("job", "pipeline_uuid"), "zzz"),
        (("job", "status"), "S" * 65),
        (("job", "status"), 3),
        (("job", "name"), "n" * 1001),
        (("job", "name"), 12),
        (("run", "number"), -1),
        (("run", "number"), 10**100),
        (("run", "number"), True),
        (("run", "number"), 1.0),
        (("run", "number"), "1"),
        (("run", "status"), "S" * 65),
        (("pipeline_run", "steps"), {"uuid": "x"}),
        (("pipeline_run", "failed_steps", 0, "uuid"), "x"),
        (("pipeline_run", "steps", 0, "title"), None),
        (("pipeline_run", "parameters"), []),
        (("update", "changes", 0, "type"), "MOVED"),
        (("update", "changes", 0, "type"), "updated"),
        (("update", "changes", 0, "changed_object"), None),
        (("update", "changes"), {}),
    ],
)
def test_bad_values_are_refused_at_their_location(path: tuple[str | int, ...], value: Any) -> None:
    type_name = "project:cron-job:run:pipeline-run:failed"
    if path[0] == "update":
        type_name = "project:cron-job:updated"
    body = sample_event(type_name)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    found = locs(body)
    assert all(loc[: len(path) + 1] == ("body", *path) for loc in found), found


def test_a_status_of_64_characters_is_fine() -> None:
    body = sample_event("project:cron-job:run:failed")
    body["job"]["status"] = body["run"]["status"] = "S" * 64
    valid(body)


def test_parameters_keys_must_be_step_uuids_or_pipeline_parameters() -> None:
    body = sample_event("project:one-off-job:pipeline-run:failed")
    body["pipeline_run"]["parameters"]["load step"] = {"a": 1}
    [error] = errors(body)
    assert error["loc"][:4] == ("body", "pipeline_run", "parameters", "load step")


def test_batch_items_are_located_by_index() -> None:
    body = sample_event("project:created")
    body["project"]["colour"] = "blue"
    del body["project"]["name"]
    found = locs(body, ("body", "events", 7))
    assert sorted(map(str, found)) == sorted(
        map(str, [("body", "events", 7, "project", "colour"), ("body", "events", 7, "project", "name")])
    )


def test_every_problem_is_reported_at_once() -> None:
    body = {
        "type": "project:cron-job:run:pipeline-run:failed",
        "uuid": "nope",
        "timestamp": "2026-01-01T00:00:00",
        "extra": 1,
        "job": {"uuid": str(uuid4()), "name": "j", "status": "S"},
        "pipeline_run": {"uuid": str(uuid4()), "status": "x" * 100},
    }
    assert set(locs(body)) == {
        ("body", "uuid"),
        ("body", "timestamp"),
        ("body", "extra"),
        ("body", "project"),
        ("body", "job", "schedule"),
        ("body", "run"),
        ("body", "pipeline_run", "status"),
    }


def test_the_documented_example_is_a_valid_event() -> None:
    [example] = EVENT_ADAPTER.json_schema()["examples"]
    assert valid(example).type == "project:one-off-job:pipeline-run:failed"


@pytest.mark.parametrize("tag", [0, 12, 2**63 - 1, "", "lab-4.1", "t" * 64, "12"])
def test_an_image_tag_is_a_build_number_or_a_short_string_kept_as_given(tag: int | str) -> None:
    for type_name in ("project:environment:image-build:succeeded", "jupyter:image-build:started"):
        body = sample_event(type_name)
        body["image_build"]["image_tag"] = tag
        kept = valid(body).sections["image_build"]["image_tag"]
        assert kept == tag
        assert type(kept) is type(tag)


@pytest.mark.parametrize("tag", [True, False, -1, 1.0, 12.5, 2**63, "t" * 65, [], {}])
def test_any_other_image_tag_is_refused_naming_it(tag: object) -> None:
    body = sample_event("project:environment:image-build:failed")
    body["image_build"]["image_tag"] = tag
    [error] = errors(body)
    assert error["loc"] == ("body", "image_build", "image_tag")
    assert error["type"] == "image_tag_type"
    assert "build number" in error["msg"]


def test_a_null_image_tag_is_left_out() -> None:
    body = sample_event("jupyter:image-build:failed")
    body["image_build"]["image_tag"] = None
    assert "image_tag" not in valid(body).sections["image_build"]
