"""The event layers: single-table mapping, notification and telemetry payloads; no database."""

from __future__ import annotations

import json
import warnings
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from sqlalchemy import Select, inspect, select

from service.catalog import CATALOG, PING
from service.models.events import (
    EVENT_CLASSES,
    CronJobEvent,
    CronJobRunEvent,
    CronJobRunPipelineRunEvent,
    Event,
    InteractivePipelineRunEvent,
    JobEvent,
    JupyterImageBuildEvent,
    OneOffJobPipelineRunEvent,
    ProjectEvent,
    event_class_for,
    ping_event,
)
from service.schemas.event_bodies import SECTIONS_BY_KIND
from tests.models.event_helpers import EVENT_TIME, LAYER_PATHS, at, event_from, nulls_in, sample
from tests.support.event_samples import sample_event

ALL_TYPES = list(CATALOG)


# The class expected for each layer (the catalog's ``kind``).
EXPECTED_CLASS = {
    "project": "ProjectEvent",
    "project_update": "ProjectUpdateEvent",
    "pipeline": "PipelineEvent",
    "pipeline_update": "PipelineUpdateEvent",
    "interactive_session": "InteractiveSessionEvent",
    "interactive_pipeline_run": "InteractivePipelineRunEvent",
    "environment": "EnvironmentEvent",
    "environment_image_build": "EnvironmentImageBuildEvent",
    "one_off_job": "OneOffJobEvent",
    "one_off_job_update": "OneOffJobUpdateEvent",
    "one_off_job_pipeline_run": "OneOffJobPipelineRunEvent",
    "cron_job": "CronJobEvent",
    "cron_job_update": "CronJobUpdateEvent",
    "cron_job_run": "CronJobRunEvent",
    "cron_job_run_pipeline_run": "CronJobRunPipelineRunEvent",
    "jupyter_image_build": "JupyterImageBuildEvent",
}


# --- single-table mapping ----------------------------------------------------------------


def test_every_layer_has_sections_and_a_class() -> None:
    kinds = {info.kind for info in CATALOG.values()}
    assert kinds == set(SECTIONS_BY_KIND) == set(EXPECTED_CLASS)
    assert kinds <= set(EVENT_CLASSES)
    # The root (ping), the abstract job layer, the three operational layers (herald:*) and the
    # layer of custom types.
    assert set(EVENT_CLASSES) - kinds == {
        "event",
        "job",
        "operational_subscriber",
        "operational_delivery",
        "operational_circuit",
        "custom",
    }


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_build_event_gives_the_layer_class_with_its_discriminator(type_name: str) -> None:
    _body, event = sample(type_name)
    kind = CATALOG[type_name].kind
    assert type(event).__name__ == EXPECTED_CLASS[kind]
    assert type(event) is event_class_for(type_name)
    assert event.kind == kind
    assert event.type == type_name
    assert event.timestamp == EVENT_TIME
    assert event.seq is None
    assert event.received_at is None
    assert event.payload is None


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_build_event_fills_the_entity_columns(type_name: str) -> None:
    body, event = sample(type_name)

    def uuid_of(section: str, key: str = "uuid") -> UUID | None:
        value = body.get(section, {}).get(key)
        return UUID(value) if value else None

    assert event.project_uuid == uuid_of("project")
    assert event.pipeline_uuid == (uuid_of("pipeline") or uuid_of("job", "pipeline_uuid"))
    assert event.environment_uuid == uuid_of("environment")
    assert event.job_uuid == uuid_of("job")
    assert event.pipeline_run_uuid == uuid_of("pipeline_run")
    assert event.image_build_uuid == uuid_of("image_build")
    assert event.run_number == body.get("run", {}).get("number")


def test_the_hierarchy_follows_the_design() -> None:
    assert issubclass(CronJobRunPipelineRunEvent, CronJobRunEvent)
    assert issubclass(CronJobRunEvent, CronJobEvent)
    assert issubclass(CronJobEvent, JobEvent)
    assert issubclass(OneOffJobPipelineRunEvent, JobEvent)
    assert issubclass(JobEvent, ProjectEvent)
    assert issubclass(InteractivePipelineRunEvent, ProjectEvent)
    assert not issubclass(JupyterImageBuildEvent, ProjectEvent)
    table = inspect(Event).local_table
    assert all(inspect(cls).local_table is table for cls in EVENT_CLASSES.values())


def _sql(statement: Select[Any]) -> str:
    return str(statement.compile(compile_kwargs={"literal_binds": True}))


def test_selecting_a_layer_filters_on_its_kind_and_its_sublayers() -> None:
    sql = _sql(select(JobEvent))
    assert "FROM events" in sql
    assert "events.kind IN" in sql
    job_kinds = {
        "job",
        *("one_off_job", "one_off_job_update", "one_off_job_pipeline_run"),
        *("cron_job", "cron_job_update", "cron_job_run", "cron_job_run_pipeline_run"),
    }
    listed = sql.split("events.kind IN (", 1)[1].split(")", 1)[0]
    assert {kind.strip(" '") for kind in listed.split(",")} == job_kinds
    assert "kind IN ('cron_job_run_pipeline_run')" in _sql(select(CronJobRunPipelineRunEvent))
    assert "WHERE" not in _sql(select(Event))


def test_subclass_fields_keep_their_defaults() -> None:
    # The pitfall the metaclass works around: pydantic would take the parent's mapped
    # attributes as the subclass fields' defaults.
    for cls in EVENT_CLASSES.values():
        assert cls.model_fields["kind"].is_required()
        assert cls.model_fields["seq"].default is None
        assert cls.model_fields["project_uuid"].default is None


def test_defining_and_building_events_raises_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample("project:cron-job:run:pipeline-run:failed")
        CronJobEvent.model_validate(
            {"uuid": str(uuid4()), "type": "project:cron-job:created", "kind": "cron_job",
             "timestamp": "2026-01-01T00:00:00Z", "sections": {}}
        )  # fmt: skip


def test_ping_events_are_root_events() -> None:
    event = ping_event(uuid4(), EVENT_TIME)
    assert type(event) is Event
    assert event.kind == "event"
    assert event_class_for(PING) is Event
    assert event.to_notification_payload() == {
        "uuid": str(event.uuid),
        "type": "ping",
        "timestamp": "2026-01-02T03:04:05Z",
    }


def test_an_unknown_type_has_no_class() -> None:
    with pytest.raises(KeyError):
        event_class_for("project:nope")


# --- notification payloads ---------------------------------------------------------------


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_notification_payload_nests_each_layer(type_name: str) -> None:
    body, event = sample(type_name)
    payload = event.to_notification_payload()
    assert payload["uuid"] == body["uuid"]
    assert payload["type"] == type_name
    assert payload["timestamp"] == "2026-01-02T03:04:05Z"
    assert set(payload) - {"uuid", "type", "timestamp"} == (
        {"jupyter"} if "jupyter" in type_name else {"project"}
    )
    for path in LAYER_PATHS[CATALOG[type_name].kind]:
        assert isinstance(at(payload, path), dict)
    if "project" in body:
        assert payload["project"]["uuid"] == body["project"]["uuid"]
        assert payload["project"]["name"] == body["project"]["name"]
    if "pipeline" in body:  # the pipeline's uuid, not the event's (a defect of the original system)
        assert payload["project"]["pipeline"] == {**body["pipeline"], **payload["project"]["pipeline"]}
        assert payload["project"]["pipeline"]["uuid"] == body["pipeline"]["uuid"] != body["uuid"]
    if "job" in body:
        job = payload["project"]["job"]
        assert {k: job[k] for k in body["job"]} == body["job"]
    if CATALOG[type_name].kind.startswith("cron_job"):
        assert payload["project"]["job"]["schedule"] == "0 3 * * *"
        assert payload["project"]["job"]["next_scheduled_time"] == "2026-01-03T03:00:00Z"
    if "update" in body:
        [path] = LAYER_PATHS[CATALOG[type_name].kind]
        assert at(payload, path) == {"changes": body["update"]["changes"]}  # one level, not update.update
    if "pipeline_run" in body:
        [path] = LAYER_PATHS[CATALOG[type_name].kind]
        assert at(payload, path) == body["pipeline_run"]
    assert not nulls_in(payload)
    assert orjson.loads(orjson.dumps(payload)) == payload


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_optional_fields_left_out_stay_out_of_the_notification(type_name: str) -> None:
    body = sample_event(type_name)
    specs = SECTIONS_BY_KIND[CATALOG[type_name].kind]
    for name, spec in specs.items():
        if name in body:
            required = spec.model.__required_keys__
            body[name] = {k: v for k, v in body[name].items() if k in required}
    payload = event_from(body).to_notification_payload()
    assert not nulls_in(payload)
    for path in LAYER_PATHS[CATALOG[type_name].kind]:
        node = at(payload, path)
        assert not {"pipeline_uuid", "pipeline_name", "next_scheduled_time", "steps", "image_tag"} & set(node)
    if "job" in body:
        assert not {"pipeline_uuid", "pipeline_name", "next_scheduled_time"} & set(payload["project"]["job"])


def test_the_contract_example_comes_out_in_that_shape() -> None:
    project, job, run, step, event_uuid = (str(uuid4()) for _ in range(5))
    body = {
        "type": "project:one-off-job:pipeline-run:failed",
        "uuid": event_uuid,
        "timestamp": "2026-01-02T04:04:05+01:00",
        "project": {"uuid": project, "name": "demo"},
        "job": {
            "uuid": job,
            "name": "nightly",
            "status": "STARTED",
            "pipeline_name": "train",
            "total_runs": 2,
        },
        "pipeline_run": {
            "uuid": run,
            "status": "FAILURE",
            "number": 0,
            "parameters": {step: {"rows": 10}},
            "failed_steps": [{"uuid": step, "title": "Load"}],
        },
    }
    assert event_from(body).to_notification_payload() == {
        "uuid": event_uuid,
        "type": "project:one-off-job:pipeline-run:failed",
        "timestamp": "2026-01-02T03:04:05Z",
        "project": {
            "uuid": project,
            "name": "demo",
            "job": {
                "uuid": job,
                "name": "nightly",
                "status": "STARTED",
                "pipeline_name": "train",
                "total_runs": 2,
                "pipeline_run": {
                    "uuid": run,
                    "status": "FAILURE",
                    "number": 0,
                    "parameters": {step: {"rows": 10}},
                    "failed_steps": [{"uuid": step, "title": "Load"}],
                },
            },
        },
    }


def test_building_a_payload_does_not_alias_the_stored_sections() -> None:
    _, event = sample("project:one-off-job:pipeline-run:failed")
    before = json.dumps(event.sections, sort_keys=True)
    payload = event.to_notification_payload()
    payload["project"]["job"]["pipeline_run"]["parameters"].clear()
    payload["project"]["name"] = "changed"
    assert json.dumps(event.sections, sort_keys=True) == before


def test_deeply_nested_update_values_still_serialize() -> None:
    body = sample_event("project:cron-job:updated")
    nested: Any = "leaf"
    for _ in range(120):
        nested = [nested]
    body["update"]["changes"][0]["new_value"] = nested
    event = event_from(body)
    orjson.dumps(event.to_notification_payload())
    orjson.dumps(event.sections)


@pytest.mark.parametrize("tag", [0, 7, "lab-4.1", "7"])
def test_the_notification_carries_the_image_tag_as_given(tag: int | str) -> None:
    body = sample_event("project:environment:image-build:succeeded")
    body["image_build"]["image_tag"] = tag
    build = event_from(body).to_notification_payload()["project"]["environment"]["image_build"]
    assert build["image_tag"] == tag
    assert type(build["image_tag"]) is type(tag)
