"""The telemetry record of every layer: anonymized completely; the anonymizer; no database."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from service.catalog import CATALOG
from service.common.telemetry import TelemetryData
from service.core.analytics import Anonymizer
from tests.models.event_helpers import ANONYMIZER, LAYER_PATHS, at, event_from, nulls_in, sample
from tests.support.event_samples import sample_event, uuids_in

ALL_TYPES = list(CATALOG)


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_telemetry_carries_no_free_text_and_no_raw_identifier(type_name: str) -> None:
    canary = "Zq9-leak-canary"
    body, event = sample(type_name, canary)
    telemetry = event.to_telemetry_payload(ANONYMIZER)
    assert isinstance(telemetry, TelemetryData)
    text = json.dumps(telemetry.model_dump())
    assert canary not in text
    assert "0 3 * * *" not in text  # cron schedules are free text too
    raw_uuids = uuids_in(body)
    assert body["uuid"] in raw_uuids
    assert len(raw_uuids) >= 2
    assert not [value for value in raw_uuids if value in text]
    assert not uuids_in(text)


def _with_status(value: Any, status: str) -> Any:
    if isinstance(value, dict):
        return {key: status if key == "status" else _with_status(item, status) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_status(item, status) for item in value]
    return value


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_telemetry_keeps_known_statuses_and_hides_free_text_ones(type_name: str) -> None:
    canary = "Zq9 leak in a status"
    body = sample_event(type_name)
    event = event_from(_with_status(body, canary), datetime(2026, 1, 2, tzinfo=UTC))
    text = json.dumps(event.to_telemetry_payload(ANONYMIZER).model_dump())
    assert canary not in text
    if "job" in body or "pipeline_run" in body or "run" in body:
        assert '"OTHER"' in text
    known_event = event_from(_with_status(body, "FAILURE"), datetime(2026, 1, 2, tzinfo=UTC))
    if "job" in body:
        assert known_event.to_telemetry_payload(ANONYMIZER).event_properties["project"]["job"]["status"] == (
            "FAILURE"
        )


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_telemetry_has_the_same_layers_with_hashed_identifiers(type_name: str) -> None:
    body, event = sample(type_name)
    properties = event.to_telemetry_payload(ANONYMIZER).event_properties
    assert properties["uuid"] == ANONYMIZER(body["uuid"])
    assert properties["type"] == type_name
    assert properties["timestamp"] == "2026-01-02T03:04:05Z"
    for path in LAYER_PATHS[CATALOG[type_name].kind]:
        assert isinstance(at(properties, path), dict)
    if "project" in body:
        assert properties["project"]["uuid"] == ANONYMIZER(body["project"]["uuid"])
    if "pipeline" in body:
        assert properties["project"]["pipeline"]["uuid"] == ANONYMIZER(body["pipeline"]["uuid"])
    if "job" in body:
        job = properties["project"]["job"]
        assert job["uuid"] == ANONYMIZER(body["job"]["uuid"])
        assert job["status"] == body["job"]["status"]
        assert job["pipeline_uuid"] == ANONYMIZER(body["job"]["pipeline_uuid"])
    assert not nulls_in(properties)


def test_pipeline_run_telemetry_counts_instead_of_contents() -> None:
    body, event = sample("project:cron-job:run:pipeline-run:failed")
    telemetry = event.to_telemetry_payload(ANONYMIZER)
    run = telemetry.event_properties["project"]["job"]["run"]
    assert run["number"] == 7
    assert run["total_pipeline_runs"] == 3
    step = body["pipeline_run"]["failed_steps"][0]["uuid"]
    assert run["pipeline_run"] == {
        "uuid": ANONYMIZER(body["pipeline_run"]["uuid"]),
        "status": "FAILURE",
        "number": 1,
        "number_in_run": 2,
        "failed_steps": [{"uuid": ANONYMIZER(step)}],
    }
    assert telemetry.derived_properties["project"]["job"]["run"]["pipeline_run"] == {
        "steps_count": 2,
        "failed_steps_count": 1,
        "steps_with_parameters_count": 2,
        "parameters_count": 4,
        "pipeline_parameters_count": 1,
    }


def test_update_telemetry_keeps_only_known_field_names() -> None:
    _, event = sample("project:one-off-job:updated")
    telemetry = event.to_telemetry_payload(ANONYMIZER)
    assert telemetry.event_properties["project"]["job"]["update"] == {
        "changes": [
            {"type": "UPDATED", "changed_object": "name"},
            {"type": "CREATED", "changed_object": "other"},
            {"type": "DELETED", "changed_object": "env_variables"},
        ]
    }
    assert telemetry.derived_properties["project"]["job"]["update"] == {"changes_count": 3}


def test_session_and_image_build_telemetry_derive_numbers() -> None:
    _, session = sample("project:pipeline:interactive-session:started")
    derived = session.to_telemetry_payload(ANONYMIZER).derived_properties
    assert derived["project"]["pipeline"]["session"] == {"user_services_count": 1}
    _, build = sample("jupyter:image-build:succeeded")
    telemetry = build.to_telemetry_payload(ANONYMIZER)
    assert telemetry.derived_properties["jupyter"]["image_build"] == {
        "queued_seconds": 30.25,
        "duration_seconds": 269.75,
    }
    assert "image_tag" not in telemetry.event_properties["jupyter"]["image_build"]


# --- the anonymizer ----------------------------------------------------------------------


def test_anonymizer_is_stable_keyed_and_canonical() -> None:
    value = uuid4()
    assert ANONYMIZER(value) == ANONYMIZER(str(value)) == ANONYMIZER(str(value).upper())
    assert re.fullmatch(r"[0-9a-f]{32}", ANONYMIZER(value))
    assert Anonymizer(b"another-key")(value) != ANONYMIZER(value)
    assert ANONYMIZER(uuid4()) != ANONYMIZER(value)
    assert ANONYMIZER("not a uuid") == ANONYMIZER("not a uuid")


def test_anonymizer_as_uuid_is_a_stable_version_8_uuid() -> None:
    value = uuid4()
    hashed = ANONYMIZER.as_uuid(value)
    assert hashed == ANONYMIZER.as_uuid(str(value))
    assert hashed != value
    assert hashed.version == 8
    assert hashed.variant == "specified in RFC 4122"
    assert Anonymizer(b"another-key").as_uuid(value) != hashed


def test_anonymizer_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError, match="empty"):
        Anonymizer(b"")


def test_telemetry_data_is_exactly_two_objects() -> None:
    with pytest.raises(ValueError, match="extra"):
        TelemetryData.model_validate({"event_properties": {}, "derived_properties": {}, "more": {}})


@pytest.mark.parametrize(
    "type_name", ["project:environment:image-build:succeeded", "jupyter:image-build:created"]
)
def test_telemetry_carries_an_image_tag_only_when_it_is_a_build_number(type_name: str) -> None:
    body = sample_event(type_name)
    path = LAYER_PATHS[CATALOG[type_name].kind][0]
    body["image_build"]["image_tag"] = 41
    properties = event_from(body).to_telemetry_payload(ANONYMIZER).event_properties
    assert at(properties, path)["image_tag"] == 41
    assert list(at(properties, path))[:2] == ["uuid", "image_tag"]
    for text_tag in ("41", "lab-Zq9-canary"):
        body["image_build"]["image_tag"] = text_tag
        telemetry = event_from(body).to_telemetry_payload(ANONYMIZER)
        assert "image_tag" not in at(telemetry.event_properties, path)
        assert json.dumps(text_tag) not in json.dumps(telemetry.model_dump())
