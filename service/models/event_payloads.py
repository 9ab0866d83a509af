"""Payload building blocks shared by the event layers of ``service/models/events.py``.

The notification helpers copy what the producer gave (optional fields only when given);
the telemetry helpers keep hashed identifiers, statuses, numbers and timestamps, count
everything else, and never copy free text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from service.common.telemetry import TelemetryData

Anonymize = Callable[[UUID | str], str]

# Field names a producer may report in ``update.changes[].changed_object`` that are safe
# to send as telemetry. ``changed_object`` is a free string; anything else becomes "other"
# so that no producer text can reach the telemetry backend through it.
SAFE_CHANGED_OBJECTS = frozenset(
    {
        *("name", "description", "status", "schedule", "next_scheduled_time", "cron_schedule"),
        *("parameters", "pipeline_parameters", "strategy_json", "env_variables", "environment"),
        *("pipeline", "pipeline_uuid", "pipeline_name", "total_runs", "max_retained_pipeline_runs"),
        *("services", "user_services", "settings", "image", "base_image", "setup_script", "path"),
    }
)


# Statuses of the platform's jobs, runs and builds. ``status`` is a free string from the
# producer; anything outside this vocabulary becomes "OTHER" in telemetry, so that no
# producer text can travel through it.
KNOWN_STATUSES = frozenset(
    {
        *("PENDING", "STARTED", "RUNNING", "SUCCESS", "FAILURE", "ABORTED", "CANCELLED"),
        *("PAUSED", "DONE", "QUEUED", "SCHEDULED", "SUCCEEDED", "FAILED", "STOPPED"),
    }
)


def telemetry_status(section: dict[str, Any]) -> dict[str, str]:
    """``{"status": ...}`` for telemetry: a known status as given, any other as "OTHER"."""
    if "status" not in section:
        return {}
    status = section["status"]
    return {"status": status if status in KNOWN_STATUSES else "OTHER"}


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-ready data (sections are): a payload never aliases its event's sections.

    Containers make a round trip through orjson, several times cheaper than ``copy.deepcopy``.
    """
    return orjson.loads(orjson.dumps(value)) if isinstance(value, dict | list) else value


def pick(section: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The given keys of ``section`` that are present, in that order (absent stays absent)."""
    return {key: copy_json(section[key]) for key in keys if key in section}


def node(tree: dict[str, Any], *path: str) -> dict[str, Any]:
    """The dict at ``path`` in ``tree``, created (empty) where missing."""
    for key in path:
        tree = tree.setdefault(key, {})
    return tree


def update_notification(update: dict[str, Any]) -> dict[str, Any]:
    """An entity's ``update`` layer: ``{"changes": [...]}`` as the producer gave them."""
    return {"changes": copy_json(update["changes"])}


def update_telemetry(data: TelemetryData, path: tuple[str, ...], update: dict[str, Any]) -> None:
    """Add an ``update`` layer under ``path``: kinds of change only, never the values."""
    changes = update["changes"]
    node(data.event_properties, *path)["update"] = {
        "changes": [
            {
                "type": change["type"],
                "changed_object": change["changed_object"]
                if change["changed_object"] in SAFE_CHANGED_OBJECTS
                else "other",
            }
            for change in changes
        ]
    }
    node(data.derived_properties, *path, "update")["changes_count"] = len(changes)


PIPELINE_RUN_FIELDS = ("uuid", "status", "number", "number_in_run", "steps", "parameters", "failed_steps")


def pipeline_run_notification(run: dict[str, Any]) -> dict[str, Any]:
    """A ``pipeline_run`` layer, fields in a stable order, optional ones only when given."""
    return pick(run, *PIPELINE_RUN_FIELDS)


def pipeline_run_telemetry(
    data: TelemetryData, path: tuple[str, ...], run: dict[str, Any], anonymize: Anonymize
) -> None:
    """Add a ``pipeline_run`` layer under ``path``: hashed uuids, status, numbers and counts
    (step titles and parameter values stay out)."""
    properties = {
        "uuid": anonymize(run["uuid"]),
        **telemetry_status(run),
        **pick(run, "number", "number_in_run"),
    }
    if "failed_steps" in run:
        properties["failed_steps"] = [{"uuid": anonymize(step["uuid"])} for step in run["failed_steps"]]
    node(data.event_properties, *path)["pipeline_run"] = properties

    derived: dict[str, Any] = {}
    if "steps" in run:
        derived["steps_count"] = len(run["steps"])
    if "failed_steps" in run:
        derived["failed_steps_count"] = len(run["failed_steps"])
    if "parameters" in run:
        parameters = run["parameters"]
        step_parameters = [values for key, values in parameters.items() if key != "pipeline_parameters"]
        derived["steps_with_parameters_count"] = len(step_parameters)
        derived["parameters_count"] = sum(len(values) for values in step_parameters)
        derived["pipeline_parameters_count"] = len(parameters.get("pipeline_parameters", {}))
    if derived:
        node(data.derived_properties, *path)["pipeline_run"] = derived


IMAGE_BUILD_TIMES = ("requested_time", "started_time", "finished_time")


def image_build_notification(build: dict[str, Any]) -> dict[str, Any]:
    """An ``image_build`` layer as the producer gave it."""
    return pick(build, "uuid", "image_tag", *IMAGE_BUILD_TIMES)


def image_build_telemetry(
    data: TelemetryData, path: tuple[str, ...], build: dict[str, Any], anonymize: Anonymize
) -> None:
    """Add an ``image_build`` layer under ``path``: hashed uuid and times (no image tag), and
    the queueing and build durations derived from the times."""
    properties = pick(build, *IMAGE_BUILD_TIMES)
    if "uuid" in build:
        properties = {"uuid": anonymize(build["uuid"]), **properties}
    node(data.event_properties, *path)["image_build"] = properties

    times = {key: datetime.fromisoformat(build[key]) for key in IMAGE_BUILD_TIMES if key in build}
    derived: dict[str, Any] = {}
    if "requested_time" in times and "started_time" in times:
        derived["queued_seconds"] = (times["started_time"] - times["requested_time"]).total_seconds()
    if "started_time" in times and "finished_time" in times:
        derived["duration_seconds"] = (times["finished_time"] - times["started_time"]).total_seconds()
    if derived:
        node(data.derived_properties, *path)["image_build"] = derived
