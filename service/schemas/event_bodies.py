"""The ingest bodies: one strict model per layer of the event hierarchy (catalog ``kind``).

Each model names the sections its layer takes, required or not; its ``type`` is the literal set
of the catalog names of that kind. ``EventIn`` is their union, discriminated on ``type`` (a
lookup in pydantic-core), and ``EventBatchIn`` the batch body. These models are the whole
definition of a valid body: validation (``service.schemas.events``), the OpenAPI schema and the
error messages all come from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self, get_args
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema
from typing_extensions import is_typeddict

from service.catalog import CATALOG, CUSTOM_KIND, custom_name_problem
from service.models.event_payloads import CUSTOM_SECTION
from service.schemas.event_sections import (
    CronJobSection,
    CronPipelineRunSection,
    EnvironmentSection,
    EventTime,
    ImageBuildSection,
    JupyterImageBuildSection,
    OneOffJobSection,
    PipelineRunSection,
    PipelineSection,
    ProjectSection,
    RunSection,
    SessionSection,
    UpdateSection,
    free_json,
)

MAX_BATCH_EVENTS = 1000
ROOT_FIELDS = frozenset({"type", "uuid", "timestamp"})

_EXAMPLE_STEP = "3f2b8c1e-4d5a-4b6c-9e7f-0a1b2c3d4e5f"
EXAMPLE_EVENT: dict[str, Any] = {
    "type": "project:one-off-job:pipeline-run:failed",
    "uuid": "9b0c6a4e-2f61-4d0e-8a5c-1f7e3b2d4c6a",
    "timestamp": "2026-01-02T03:04:05Z",
    "project": {"uuid": "5d1c2b3a-6e7f-4a8b-9c0d-1e2f3a4b5c6d", "name": "demo"},
    "job": {
        "uuid": "7a8b9c0d-1e2f-4a3b-8c5d-6e7f8a9b0c1d",
        "name": "nightly",
        "status": "STARTED",
        "pipeline_uuid": "0e1f2a3b-4c5d-4e6f-8a8b-9c0d1e2f3a4b",
        "pipeline_name": "train",
        "total_runs": 2,
    },
    "pipeline_run": {
        "uuid": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "status": "FAILURE",
        "number": 0,
        "steps": [{"uuid": _EXAMPLE_STEP, "title": "Load"}],
        "parameters": {_EXAMPLE_STEP: {"rows": 1000}, "pipeline_parameters": {"seed": 42}},
        "failed_steps": [{"uuid": _EXAMPLE_STEP, "title": "Load"}],
    },
}


class CatalogTypes:
    """``Annotated`` marker of a body's ``type``: the catalog names of one kind, as a literal."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.names = [name for name, info in CATALOG.items() if info.kind == kind]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.literal_schema(self.names)


class EventRootIn(BaseModel):
    """What every body has: its ``type`` and, optionally, its ``uuid`` and ``timestamp``."""

    model_config = ConfigDict(extra="forbid")
    # The layer of the model: a catalog kind, read from its ``type`` annotation, or ``custom``.
    kind: ClassVar[str]

    type: str = Field(description="A catalog event type, e.g. project:created.")
    uuid: UUID | None = Field(default=None, description="Producer-chosen id; the idempotency key.")
    timestamp: EventTime | None = Field(
        default=None,
        description="When it happened, from 2000-01-01 to one day after Herald receives it; default: now.",
    )

    def sections(self) -> dict[str, Any]:
        """The sections given (their validated values), in the order of the model."""
        return {
            name: value
            for name, value in self.__dict__.items()
            if value is not None and name not in ROOT_FIELDS
        }


class EventBodyIn(EventRootIn):
    """A body of a catalog type: the entity sections of its layer."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for marker in cls.model_fields["type"].metadata:
            if isinstance(marker, CatalogTypes):
                cls.kind = marker.kind

    @model_validator(mode="after")
    def _null_means_left_out(self) -> Self:
        # An explicit null on an optional field of a section means "left out": dropped here, so
        # that it stays out of the payloads (sections are flat; update values keep theirs).
        fields = self.__dict__
        for name, value in fields.items():
            if type(value) is dict and None in value.values():
                fields[name] = {key: item for key, item in value.items() if item is not None}
        return self


class ProjectEventIn(EventBodyIn):
    """An event about a project."""

    type: Annotated[str, CatalogTypes("project")]
    project: ProjectSection


class ProjectUpdateEventIn(ProjectEventIn):
    """A project was updated."""

    type: Annotated[str, CatalogTypes("project_update")]
    update: UpdateSection


class PipelineEventIn(ProjectEventIn):
    """An event about a pipeline of a project."""

    type: Annotated[str, CatalogTypes("pipeline")]
    pipeline: PipelineSection


class PipelineUpdateEventIn(PipelineEventIn):
    """A pipeline was updated."""

    type: Annotated[str, CatalogTypes("pipeline_update")]
    update: UpdateSection


class InteractiveSessionEventIn(PipelineEventIn):
    """An event about an interactive session of a pipeline (``session`` optional)."""

    type: Annotated[str, CatalogTypes("interactive_session")]
    session: SessionSection | None = None


class InteractivePipelineRunEventIn(InteractiveSessionEventIn):
    """An event about a pipeline run of an interactive session."""

    type: Annotated[str, CatalogTypes("interactive_pipeline_run")]
    pipeline_run: PipelineRunSection


class EnvironmentEventIn(ProjectEventIn):
    """An event about an environment of a project."""

    type: Annotated[str, CatalogTypes("environment")]
    environment: EnvironmentSection


class EnvironmentImageBuildEventIn(EnvironmentEventIn):
    """An event about an image build of an environment."""

    type: Annotated[str, CatalogTypes("environment_image_build")]
    image_build: ImageBuildSection


class OneOffJobEventIn(ProjectEventIn):
    """An event about a one-off job (its ``total_runs`` required)."""

    type: Annotated[str, CatalogTypes("one_off_job")]
    job: OneOffJobSection


class OneOffJobUpdateEventIn(OneOffJobEventIn):
    """A one-off job was updated."""

    type: Annotated[str, CatalogTypes("one_off_job_update")]
    update: UpdateSection


class OneOffJobPipelineRunEventIn(OneOffJobEventIn):
    """An event about a pipeline run of a one-off job."""

    type: Annotated[str, CatalogTypes("one_off_job_pipeline_run")]
    pipeline_run: PipelineRunSection


class CronJobEventIn(ProjectEventIn):
    """An event about a cron job (its ``schedule`` required)."""

    type: Annotated[str, CatalogTypes("cron_job")]
    job: CronJobSection


class CronJobUpdateEventIn(CronJobEventIn):
    """A cron job was updated."""

    type: Annotated[str, CatalogTypes("cron_job_update")]
    update: UpdateSection


class CronJobRunEventIn(CronJobEventIn):
    """An event about one run of a cron job."""

    type: Annotated[str, CatalogTypes("cron_job_run")]
    run: RunSection


class CronJobRunPipelineRunEventIn(CronJobRunEventIn):
    """An event about a pipeline run of a cron job run."""

    type: Annotated[str, CatalogTypes("cron_job_run_pipeline_run")]
    pipeline_run: CronPipelineRunSection


class JupyterImageBuildEventIn(EventBodyIn):
    """An event about a build of the Jupyter image (no project)."""

    type: Annotated[str, CatalogTypes("jupyter_image_build")]
    image_build: JupyterImageBuildSection


EventIn = Annotated[
    ProjectEventIn
    | ProjectUpdateEventIn
    | PipelineEventIn
    | PipelineUpdateEventIn
    | InteractiveSessionEventIn
    | InteractivePipelineRunEventIn
    | EnvironmentEventIn
    | EnvironmentImageBuildEventIn
    | OneOffJobEventIn
    | OneOffJobUpdateEventIn
    | OneOffJobPipelineRunEventIn
    | CronJobEventIn
    | CronJobUpdateEventIn
    | CronJobRunEventIn
    | CronJobRunPipelineRunEventIn
    | JupyterImageBuildEventIn,
    Field(
        discriminator="type",
        description="An event to record: its type, and the entity sections of its layer.",
        examples=[EXAMPLE_EVENT],
    ),
]


def custom_type_name(name: str) -> str:
    """``name`` when it may name a custom type; else ``ValueError`` saying why."""
    problem = custom_name_problem(name)
    if problem is not None:
        raise ValueError(f"a custom event type name {problem}")
    return name


class CustomEventIn(EventRootIn):
    """An event of a custom type: ``data`` is checked against the type's JSON Schema once the
    type is looked up (``service.core.custom_types``); ``project_uuid`` scopes it."""

    kind: ClassVar[str] = CUSTOM_KIND

    type: Annotated[str, AfterValidator(custom_type_name)] = Field(
        description="A custom event type, as created by POST /api/v1/event-types."
    )
    project_uuid: UUID | None = Field(default=None, description="The project it belongs to, if any.")
    data: Annotated[dict[str, Any], free_json(1)] = Field(
        description="A JSON object valid under the type's schema."
    )

    def sections(self) -> dict[str, Any]:
        """The one section of a custom event: ``project_uuid`` when given, and ``data``."""
        section: dict[str, Any] = {"data": self.data}
        if self.project_uuid is not None:
            section = {"project_uuid": self.project_uuid, **section}
        return {CUSTOM_SECTION: section}


# The labels of the two branches of ``AnyEventIn`` in pydantic-core's error locations.
CATALOG_BRANCH, CUSTOM_BRANCH = "catalog", "custom"


class _CatalogThenCustom:
    """``Annotated`` marker: a catalog body (the tagged union, one lookup), else a custom one."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        catalog = handler.generate_schema(EventIn)
        custom = handler.generate_schema(CustomEventIn)
        return core_schema.union_schema(
            [(catalog, CATALOG_BRANCH), (custom, CUSTOM_BRANCH)], mode="left_to_right"
        )


AnyEventIn = Annotated[
    EventRootIn,
    _CatalogThenCustom(),
    Field(
        description=(
            "An event to record: its catalog type and the entity sections of its layer, or its "
            "custom type, `project_uuid` and `data`."
        ),
        examples=[EXAMPLE_EVENT],
    ),
]


class EventBatchIn(BaseModel):
    """Up to 1000 events, recorded in one transaction; each ``uuid`` at most once."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[AnyEventIn], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]

    @model_validator(mode="after")
    def _each_uuid_once(self) -> Self:
        first: dict[UUID, int] = {}
        errors: list[InitErrorDetails] = []
        for index, event in enumerate(self.events):
            if event.uuid is None:
                continue
            seen = first.setdefault(event.uuid, index)
            if seen != index:
                message = f"uuid {event.uuid} is already used by events[{seen}]"
                error = PydanticCustomError("value_error", message)
                errors.append({"type": error, "loc": ("events", index, "uuid"), "input": str(event.uuid)})
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


def _kinds() -> dict[str, type[EventBodyIn]]:
    models: dict[str, type[EventBodyIn]] = {}
    pending: list[type[EventBodyIn]] = [EventBodyIn]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if "kind" in model.__dict__:
            models[model.kind] = model
    return models


@dataclass(frozen=True)
class SectionSpec:
    """A section a layer takes: its model and whether the body must have it (read from the models)."""

    model: type[Any]  # a TypedDict
    required: bool


def _sections(model: type[EventBodyIn]) -> dict[str, SectionSpec]:
    specs: dict[str, SectionSpec] = {}
    for name, info in model.model_fields.items():
        if name not in ROOT_FIELDS:
            # ``Section`` or ``Section | None``
            [section] = [t for t in (info.annotation, *get_args(info.annotation)) if is_typeddict(t)]
            specs[name] = SectionSpec(section, info.is_required())
    return specs


# The body model of each layer (catalog kind), and the sections it takes.
EVENT_MODELS: dict[str, type[EventBodyIn]] = _kinds()
SECTIONS_BY_KIND: dict[str, dict[str, SectionSpec]] = {kind: _sections(m) for kind, m in EVENT_MODELS.items()}
# Every section some layer takes.
SECTION_NAMES = frozenset(name for specs in SECTIONS_BY_KIND.values() for name in specs)
