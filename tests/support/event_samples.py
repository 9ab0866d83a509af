"""Complete, valid ingest bodies for every catalog type, for unit, DB and API tests.

``sample_event(type_name, canary)`` fills every section the type takes and every optional
field, and puts ``canary`` into every free-text field (names, titles, parameter values,
update values, user-service definitions, image tags, unknown ``changed_object`` names),
so a test can check that no free text reaches telemetry.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

from service.catalog import CATALOG
from service.schemas.event_bodies import SECTIONS_BY_KIND

DEFAULT_CANARY = "CANARY-7f3a9c"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# A status that fits the verb of the type.
_STATUS_BY_VERB = {
    "created": "PENDING",
    "started": "STARTED",
    "succeeded": "SUCCESS",
    "failed": "FAILURE",
    "cancelled": "ABORTED",
    "deleted": "ABORTED",
    "paused": "PAUSED",
    "unpaused": "STARTED",
    "updated": "STARTED",
    "stopped": "STOPPED",
    "service-restarted": "RUNNING",
}


def _uuid() -> str:
    return str(uuid4())


def sample_sections(type_name: str, canary: str = DEFAULT_CANARY) -> dict[str, Any]:
    """Every section ``type_name`` takes, every optional field filled."""
    kind = CATALOG[type_name].kind
    status = _STATUS_BY_VERB[type_name.rsplit(":", 1)[1]]
    cron = kind.startswith("cron_job")
    step_a, step_b = _uuid(), _uuid()
    all_sections: dict[str, Any] = {
        "project": {"uuid": _uuid(), "name": f"project {canary}"},
        "pipeline": {"uuid": _uuid(), "name": f"pipeline {canary}"},
        "session": {
            "user_services": {
                f"tensorboard-{canary}": {
                    "image": f"tensorflow/tensorflow:{canary}",
                    "command": f"tensorboard --logdir /data/{canary}",
                    "env_variables": {"TOKEN": canary},
                    "ports": [6006],
                    "exposed": True,
                }
            }
        },
        "environment": {"uuid": _uuid(), "name": f"environment {canary}"},
        "image_build": {
            "uuid": _uuid(),
            "image_tag": f"tag-{canary}",
            "requested_time": "2026-01-02T03:00:00Z",
            "started_time": "2026-01-02T03:00:30.250000Z",
            "finished_time": "2026-01-02T03:05:00Z",
        },
        "job": {
            "uuid": _uuid(),
            "name": f"job {canary}",
            "status": status,
            "pipeline_uuid": _uuid(),
            "pipeline_name": f"pipeline {canary}",
            **(
                {"schedule": "0 3 * * *", "next_scheduled_time": "2026-01-03T03:00:00Z"}
                if cron
                else {"total_runs": 3}
            ),
        },
        "run": {"number": 7, "total_pipeline_runs": 3, "status": status},
        "pipeline_run": {
            "uuid": _uuid(),
            "status": status,
            "number": 1,
            "steps": [
                {"uuid": step_a, "title": f"Load {canary}"},
                {"uuid": step_b, "title": f"Train {canary}"},
            ],
            "parameters": {
                step_a: {"path": f"/data/{canary}", "nested": {"values": [canary, 1, True]}},
                step_b: {"epochs": 10, "name": canary},
                "pipeline_parameters": {"seed": f"seed {canary}"},
            },
            "failed_steps": [{"uuid": step_a, "title": f"Load {canary}"}],
            **({"number_in_run": 2} if cron else {}),
        },
        "update": {
            "changes": [
                {
                    "type": "UPDATED",
                    "changed_object": "name",
                    "old_value": f"old {canary}",
                    "new_value": canary,
                },
                {"type": "CREATED", "changed_object": f"field-{canary}", "new_value": {"k": [canary]}},
                {"type": "DELETED", "changed_object": "env_variables", "old_value": {"SECRET": canary}},
            ]
        },
    }
    return {name: all_sections[name] for name in SECTIONS_BY_KIND[kind]}


def sample_event(type_name: str, canary: str = DEFAULT_CANARY) -> dict[str, Any]:
    """A complete valid ingest body for the catalog type ``type_name`` (fresh uuids each call)."""
    return {
        "type": type_name,
        "uuid": _uuid(),
        "timestamp": "2026-01-02T04:05:06.123456+01:00",
        **sample_sections(type_name, canary),
    }


def uuids_in(value: Any) -> set[str]:
    """Every uuid string in ``value`` (keys included), e.g. the raw identifiers of a body."""
    return set(UUID_RE.findall(repr(value)))
