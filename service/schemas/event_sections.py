"""The entity sections of an ingested event and which layer takes which (API.md, "Events").

Each section is a strict pydantic model (unknown keys refused); ``SECTIONS_BY_KIND`` says
which sections each layer of the hierarchy (catalog ``kind``) takes and which it requires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

MAX_NAME_CHARS = 1000
MAX_STATUS_CHARS = 64
MAX_LIST_ITEMS = 10_000
MAX_INT = 2**31 - 1  # fits the INTEGER columns (run_number)
_RFC3339_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _rfc3339_text(value: object) -> object:
    # pydantic would also take numbers (and numeric strings) as Unix times; the contract
    # says RFC 3339 with an offset, so anything but such a string is refused here.
    if not isinstance(value, str) or not _RFC3339_PREFIX.match(value):
        raise ValueError("Input should be an RFC 3339 timestamp with a timezone offset")
    return value


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _parameters_key(value: str) -> str:
    if value == "pipeline_parameters":
        return value
    try:
        return str(UUID(value))
    except ValueError:
        raise ValueError("keys must be step uuids or 'pipeline_parameters'") from None


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_to_utc)]
Name = Annotated[StrictStr, Field(max_length=MAX_NAME_CHARS)]
Status = Annotated[StrictStr, Field(max_length=MAX_STATUS_CHARS)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]
ParametersKey = Annotated[StrictStr, AfterValidator(_parameters_key)]


# Update values are the producer's own JSON: null is a real value there.
_NULL_ALLOWED = frozenset({"old_value", "new_value"})


class _Section(BaseModel):
    """A section of an event body: unknown keys are refused, ``null`` means "not given"."""

    model_config = ConfigDict(extra="forbid")
    # The optional fields where an explicit null means "left out", per class.
    null_means_absent: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        optional = {name for name, field in cls.model_fields.items() if not field.is_required()}
        cls.null_means_absent = frozenset(optional - _NULL_ALLOWED)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        # Optional fields left out must stay out of the payloads (never null), so an
        # explicit null on an optional field is treated as leaving it out.
        if isinstance(data, dict) and None in data.values():
            return {k: v for k, v in data.items() if not (v is None and k in cls.null_means_absent)}
        return data


class ProjectSection(_Section):
    """The project the event is about (every ``project:*`` type)."""

    uuid: UUID
    name: Name


class PipelineSection(_Section):
    """The pipeline (``project:pipeline:*`` types)."""

    uuid: UUID
    name: Name


class SessionSection(_Section):
    """The interactive session (optional, interactive-session types)."""

    user_services: dict[Name, dict[str, Any]] | None = Field(
        default=None, description="Service name → service definition (image, command, env variables...)."
    )


class EnvironmentSection(_Section):
    """The environment (``project:environment:*`` types)."""

    uuid: UUID
    name: Name | None = None


class ImageBuildSection(_Section):
    """An image build (image-build types; ``uuid`` is required for ``jupyter:*``)."""

    uuid: UUID | None = None
    image_tag: Name | None = None
    requested_time: Timestamp | None = None
    started_time: Timestamp | None = None
    finished_time: Timestamp | None = None


class JupyterImageBuildSection(ImageBuildSection):
    """A Jupyter image build: its ``uuid`` is required."""

    uuid: UUID


class JobSection(_Section):
    """The job (job types). ``status`` is the producer's own word, at most 64 characters."""

    uuid: UUID
    name: Name
    status: Status
    pipeline_uuid: UUID | None = None
    pipeline_name: Name | None = None


class OneOffJobSection(JobSection):
    """A one-off job: ``total_runs`` is required."""

    total_runs: Count


class CronJobSection(JobSection):
    """A cron job: ``schedule`` is required."""

    schedule: Name
    next_scheduled_time: Timestamp | None = None


class JobSectionDoc(JobSection):
    """The ``job`` section as documented: ``total_runs`` for one-off jobs, ``schedule`` for cron jobs."""

    total_runs: Count | None = Field(default=None, description="One-off jobs only (required there).")
    schedule: Name | None = Field(default=None, description="Cron jobs only (required there).")
    next_scheduled_time: Timestamp | None = Field(default=None, description="Cron jobs only.")


class RunSection(_Section):
    """One run of a cron job (``project:cron-job:run:*``)."""

    number: Count
    total_pipeline_runs: Count
    status: Status | None = None


class StepRef(_Section):
    """A pipeline step."""

    uuid: UUID
    title: Name


class PipelineRunSection(_Section):
    """A pipeline run (pipeline-run types)."""

    uuid: UUID
    status: Status | None = None
    number: Count | None = None
    steps: list[StepRef] | None = Field(default=None, max_length=MAX_LIST_ITEMS)
    parameters: dict[ParametersKey, dict[str, Any]] | None = Field(
        default=None, description="Step uuid → that step's parameters, plus key 'pipeline_parameters'."
    )
    failed_steps: list[StepRef] | None = Field(default=None, max_length=MAX_LIST_ITEMS)


class CronPipelineRunSection(PipelineRunSection):
    """A pipeline run of a cron job run, numbered within that run."""

    number_in_run: Count | None = Field(default=None, description="Cron job pipeline runs only.")


class Change(_Section):
    """One change of an update; ``old_value`` and ``new_value`` may be any JSON."""

    type: Literal["CREATED", "UPDATED", "DELETED"]
    changed_object: Name
    old_value: Any = None
    new_value: Any = None


class UpdateSection(_Section):
    """What an update changed (``*:updated`` types)."""

    changes: list[Change] = Field(max_length=MAX_LIST_ITEMS)


@dataclass(frozen=True)
class SectionSpec:
    """A section a layer takes: its model and whether it must be present."""

    model: type[_Section]
    required: bool = True


_PROJECT = {"project": SectionSpec(ProjectSection)}
_PIPELINE = {**_PROJECT, "pipeline": SectionSpec(PipelineSection)}
_SESSION = {**_PIPELINE, "session": SectionSpec(SessionSection, required=False)}
_ENVIRONMENT = {**_PROJECT, "environment": SectionSpec(EnvironmentSection)}
_ONE_OFF = {**_PROJECT, "job": SectionSpec(OneOffJobSection)}
_CRON = {**_PROJECT, "job": SectionSpec(CronJobSection)}
_CRON_RUN = {**_CRON, "run": SectionSpec(RunSection)}
_UPDATE = {"update": SectionSpec(UpdateSection)}

# The sections each layer (catalog ``kind``) takes, mirroring the class hierarchy.
SECTIONS_BY_KIND: dict[str, dict[str, SectionSpec]] = {
    "project": _PROJECT,
    "project_update": {**_PROJECT, **_UPDATE},
    "pipeline": _PIPELINE,
    "pipeline_update": {**_PIPELINE, **_UPDATE},
    "interactive_session": _SESSION,
    "interactive_pipeline_run": {**_SESSION, "pipeline_run": SectionSpec(PipelineRunSection)},
    "environment": _ENVIRONMENT,
    "environment_image_build": {**_ENVIRONMENT, "image_build": SectionSpec(ImageBuildSection)},
    "one_off_job": _ONE_OFF,
    "one_off_job_update": {**_ONE_OFF, **_UPDATE},
    "one_off_job_pipeline_run": {**_ONE_OFF, "pipeline_run": SectionSpec(PipelineRunSection)},
    "cron_job": _CRON,
    "cron_job_update": {**_CRON, **_UPDATE},
    "cron_job_run": _CRON_RUN,
    "cron_job_run_pipeline_run": {**_CRON_RUN, "pipeline_run": SectionSpec(CronPipelineRunSection)},
    "jupyter_image_build": {"image_build": SectionSpec(JupyterImageBuildSection)},
}

SECTION_NAMES = (
    *("project", "pipeline", "session", "environment", "image_build"),
    *("job", "run", "pipeline_run", "update"),
)
TOP_LEVEL_KEYS = frozenset({"type", "uuid", "timestamp", *SECTION_NAMES})
