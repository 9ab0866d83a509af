"""Event rows built from sample bodies, and where each layer sits in the payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson

from service.core.analytics import Anonymizer
from service.models.events import Event, build_event
from service.schemas.events import validate_event
from tests.support.event_samples import DEFAULT_CANARY, sample_event

ANONYMIZER = Anonymizer(b"test-installation-key")
EVENT_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def event_from(body: dict[str, Any], timestamp: datetime = EVENT_TIME) -> Event:
    """The row of a valid ``body`` (validated as its JSON text), at ``timestamp``."""
    validated = validate_event(json.dumps(body).encode())
    event_uuid = UUID(body["uuid"]) if "uuid" in body else uuid4()
    # A row holds its sections as stored: JSON.
    return build_event(validated.type, orjson.loads(validated.sections_json), event_uuid, timestamp)


def sample(type_name: str, canary: str = DEFAULT_CANARY) -> tuple[dict[str, Any], Event]:
    body = sample_event(type_name, canary)
    return body, event_from(body)


def nulls_in(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(nulls_in(item) for item in value.values())
    if isinstance(value, list):
        return any(nulls_in(item) for item in value)
    return False


# Where each layer's own entity sits in the notification payload.
LAYER_PATHS: dict[str, list[tuple[str, ...]]] = {
    "project": [("project",)],
    "project_update": [("project", "update")],
    "pipeline": [("project", "pipeline")],
    "pipeline_update": [("project", "pipeline", "update")],
    "interactive_session": [("project", "pipeline", "session")],
    "interactive_pipeline_run": [("project", "pipeline", "session", "pipeline_run")],
    "environment": [("project", "environment")],
    "environment_image_build": [("project", "environment", "image_build")],
    "one_off_job": [("project", "job")],
    "one_off_job_update": [("project", "job", "update")],
    "one_off_job_pipeline_run": [("project", "job", "pipeline_run")],
    "cron_job": [("project", "job")],
    "cron_job_update": [("project", "job", "update")],
    "cron_job_run": [("project", "job", "run")],
    "cron_job_run_pipeline_run": [("project", "job", "run", "pipeline_run")],
    "jupyter_image_build": [("jupyter", "image_build")],
}


def at(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree
