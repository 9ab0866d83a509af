"""What a layer of the event hierarchy adds to the two payloads, stated as data (``Layer``).

A layer shows fields of one section of the event in the notification payload (copied as the
producer gave them, optional ones only when given) and carries some of them into the
telemetry record, each through a ``Treatment``: hashed (identifiers), kept (numbers, times),
reduced to a known vocabulary (statuses, field names). A field without a treatment never
reaches telemetry, so free text stays out unless a layer lets it in. ``derived`` adds
numbers computed from the section (counts, durations) to ``derived_properties``.

``service.models.events.Event`` walks the layers of an event's class, root first, and nests
each one's part where it says (``at``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

Anonymize = Callable[[UUID | str], str]
# How telemetry carries one field: its value → what is sent, or OMIT to send nothing.
Treatment = Callable[[Any, Anonymize], Any]
Derive = Callable[[dict[str, Any]], dict[str, Any]]
OMIT = object()

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


def hashed(value: Any, anonymize: Anonymize) -> str:
    """An identifier, replaced by its keyed hash."""
    return anonymize(value)


def kept(value: Any, anonymize: Anonymize) -> Any:
    """A number or a time, sent as given."""
    return value


def known_status(value: Any, anonymize: Anonymize) -> str:
    """A status as given when it is a known one, else "OTHER"."""
    return value if value in KNOWN_STATUSES else "OTHER"


def build_number(value: Any, anonymize: Anonymize) -> Any:
    """An image tag only when it is a build number (an integer); a string tag is free text."""
    return value if type(value) is int else OMIT


def hashed_steps(steps: list[dict[str, Any]], anonymize: Anonymize) -> list[dict[str, str]]:
    """Step references by their hashed uuids only (titles are free text)."""
    return [{"uuid": anonymize(step["uuid"])} for step in steps]


def change_kinds(changes: list[dict[str, Any]], anonymize: Anonymize) -> list[dict[str, str]]:
    """Each change's kind and, when it is a known field name, what it changed (never the values)."""
    return [
        {
            "type": change["type"],
            "changed_object": change["changed_object"]
            if change["changed_object"] in SAFE_CHANGED_OBJECTS
            else "other",
        }
        for change in changes
    ]


def changes_count(update: dict[str, Any]) -> dict[str, Any]:
    """How many changes an update has."""
    return {"changes_count": len(update["changes"])}


def user_services_count(session: dict[str, Any]) -> dict[str, Any]:
    """How many user services a session runs (their definitions carry images, commands and
    environment variables: counted only)."""
    services = session.get("user_services")
    return {} if services is None else {"user_services_count": len(services)}


def pipeline_run_counts(run: dict[str, Any]) -> dict[str, Any]:
    """How many steps, failed steps and parameters a pipeline run has (never which)."""
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
    return derived


# The one section of a custom type's event: ``project_uuid`` (optional) and ``data``, as the
# body gave them at its top level.
CUSTOM_SECTION = "custom"

IMAGE_BUILD_TIMES = ("requested_time", "started_time", "finished_time")


def image_build_durations(build: dict[str, Any]) -> dict[str, Any]:
    """Queueing and build durations (seconds), from the times that were given."""
    times = {key: _moment(build[key]) for key in IMAGE_BUILD_TIMES if key in build}
    derived: dict[str, Any] = {}
    if "requested_time" in times and "started_time" in times:
        derived["queued_seconds"] = (times["started_time"] - times["requested_time"]).total_seconds()
    if "started_time" in times and "finished_time" in times:
        derived["duration_seconds"] = (times["finished_time"] - times["started_time"]).total_seconds()
    return derived


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@dataclass(frozen=True)
class Layer:
    """One layer's own part of both payloads.

    ``section``: the body section it reads. ``at``: the keys of its node below its parent's
    (``()``: it adds to its parent's node). ``shown``: the fields the notification payload
    carries, in this order. ``telemetry``: field → treatment, in this order. ``derived``:
    numbers from the section, at the same place in ``derived_properties``.
    """

    section: str
    at: tuple[str, ...]
    shown: tuple[str, ...]
    telemetry: Mapping[str, Treatment] = field(default_factory=dict)
    derived: Derive | None = None


def node(tree: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The dict at ``path`` in ``tree``, created (empty) where missing."""
    for key in path:
        tree = tree.setdefault(key, {})
    return tree


def add_notification(
    payload: dict[str, Any], path: tuple[str, ...], layer: Layer, section: dict[str, Any]
) -> None:
    """Add ``layer``'s fields of ``section`` at ``path`` (values shared, not copied)."""
    target = node(payload, path)
    for key in layer.shown:
        if key in section:
            target[key] = section[key]


def add_telemetry(
    properties: dict[str, Any],
    derived: dict[str, Any],
    path: tuple[str, ...],
    layer: Layer,
    section: dict[str, Any],
    anonymize: Anonymize,
) -> None:
    """Add ``layer``'s treated fields of ``section`` and its derived numbers at ``path``."""
    target = node(properties, path)
    for key, treatment in layer.telemetry.items():
        if key in section:
            value = treatment(section[key], anonymize)
            if value is not OMIT:
                target[key] = value
    if layer.derived is not None:
        numbers = layer.derived(section)
        if numbers:
            node(derived, path).update(numbers)
