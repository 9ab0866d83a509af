"""Subscriptions as requests and answers: an event-type pattern and an optional scope.

A request may also give a subscription as its pattern alone, a string: ``"project:*"`` is
``{"event_type": "project:*"}``, so ``"subscriptions": ["*"]`` subscribes to everything.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from service.schemas.inputs import NO_NUL

EVENT_TYPE_MAX_CHARS = 200
EXAMPLE_PROJECT = "0d8a9f4e-6a77-4c1e-b0a5-3f0e2c9d1b22"
EXAMPLE_JOB = "a3c4e5f6-1b2d-4e8f-9a0b-7c6d5e4f3a21"

EventTypePattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=EVENT_TYPE_MAX_CHARS,
        description=(
            "A catalog event type or a pattern where `*` matches any run of characters "
            "(`project:*`, `*:failed`, `*`); it must match at least one catalog type."
        ),
    ),
    NO_NUL,
]


class SubscriptionIn(BaseModel):
    """An event-type pattern, optionally scoped to a project, or to a job of a project."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"event_type": "project:*:pipeline-run:failed"},
                {
                    "event_type": "project:one-off-job:*",
                    "project_uuid": EXAMPLE_PROJECT,
                    "job_uuid": EXAMPLE_JOB,
                },
            ]
        },
    )

    event_type: EventTypePattern
    project_uuid: UUID | None = Field(
        default=None, description="Only events of this project (not allowed for `jupyter:*` types)."
    )
    job_uuid: UUID | None = Field(
        default=None, description="Only events of this job; needs `project_uuid`; job types only."
    )


def _unscoped(value: object) -> object:
    return {"event_type": value} if isinstance(value, str) else value


SubscriptionItem = Annotated[
    SubscriptionIn,
    BeforeValidator(_unscoped, json_schema_input_type=SubscriptionIn | EventTypePattern),
]
"""A subscription in a request: the object, or its pattern alone."""


def _is_none(value: object) -> bool:
    return value is None


class SubscriptionOut(BaseModel):
    """A subscription as stored; scope keys appear only when set."""

    event_type: str
    project_uuid: UUID | None = Field(default=None, exclude_if=_is_none)
    job_uuid: UUID | None = Field(default=None, exclude_if=_is_none)
