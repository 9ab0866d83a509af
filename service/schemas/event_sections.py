"""The entity sections of an ingested event: strict types validated by pydantic-core.

Every section refuses unknown keys. An optional field is ``NotRequired[X | None]``: an
explicit ``null`` means "left out", and the body models drop it so that it stays out of the
payloads. Only update values (``old_value``, ``new_value``) keep an explicit ``null``: they are
the producer's own JSON. Free JSON values (service definitions, step parameters,
update values) are checked by ``free_json`` for what pydantic-core lets through but Herald
cannot store or send back out.
"""

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NotRequired, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictInt,
    StrictStr,
    with_config,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema
from typing_extensions import TypedDict

from service.schemas.inputs import in_utc

MAX_NAME_CHARS = 1000
MAX_STATUS_CHARS = 64
MAX_IMAGE_TAG_CHARS = 64
MAX_LIST_ITEMS = 10_000
MAX_INT = 2**31 - 1  # fits the INTEGER columns (run_number)
# Nesting limit of a body. pydantic and orjson cannot serialize JSON nested deeper than
# ~255 levels, and payloads nest a body's values a few levels further down.
MAX_JSON_DEPTH = 128
# The error a free JSON value raises when only the full check of the body can tell what is
# wrong with it (see service.schemas.events); it never reaches a client.
FULL_CHECK_NEEDED = "full_check_needed"
# What orjson reads and writes as an integer; JSON text holding a larger one is read as a float.
_MIN_JSON_INT, _MAX_JSON_INT = -(2**63), 2**64 - 1
_RFC3339_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# An event's own time: a time far off would stay at one end of every time-ordered view for good.
EVENT_TIME_MIN = datetime(2000, 1, 1, tzinfo=UTC)
EVENT_TIME_AHEAD_MAX = timedelta(days=1)


def _rfc3339_text(value: object) -> object:
    # pydantic would also take numbers (and numeric strings) as Unix times; the contract
    # says RFC 3339 with an offset, so anything but such a string is refused here.
    if not isinstance(value, str) or not _RFC3339_PREFIX.match(value):
        raise ValueError("Input should be an RFC 3339 timestamp with a timezone offset")
    return value


def _event_time(value: datetime) -> datetime:
    # "Now" is when the body is validated, i.e. when Herald receives it.
    if not EVENT_TIME_MIN <= value <= datetime.now(UTC) + EVENT_TIME_AHEAD_MAX:
        raise ValueError("An event's timestamp must lie between 2000-01-01 and one day after now")
    return value


def _parameters_key(value: str) -> str:
    if value == "pipeline_parameters" or _CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(UUID(value))
    except ValueError:
        raise ValueError("keys must be step uuids or 'pipeline_parameters'") from None


def _unusual(value: object, levels: int) -> bool:
    """Whether ``value`` holds a value more than ``levels`` levels below it, an integer orjson
    would read as a float, or a float that is not finite (one level at a time, no recursion)."""
    level: list[Any] = [value]
    for depth in range(levels + 1):
        children: list[Any] = []
        for node in level:
            kind = type(node)  # exact types: JSON gives exactly these, and it is twice as fast
            if kind is dict:
                children.extend(node.values())
            elif kind is list:
                children.extend(node)
            elif kind is int:
                if not _MIN_JSON_INT <= node <= _MAX_JSON_INT:
                    return True
            elif kind is float and not math.isfinite(node):
                return True
        if not children:
            return False
        level = children
        if depth == levels:
            return True
    return False


def free_json(depth: int) -> AfterValidator:
    """The check of a free JSON value found ``depth`` levels below the body's top.

    pydantic-core reads any JSON value there; what it cannot judge — nesting beyond
    ``MAX_JSON_DEPTH``, integers beyond 64 bits (read as floats before storing), NaN and
    infinities (not JSON at all) — sends the body to the full check.
    """
    levels = MAX_JSON_DEPTH - depth

    def check(value: Any) -> Any:
        if _unusual(value, levels):
            raise PydanticCustomError(FULL_CHECK_NEEDED, "Value needs the full check of the body")
        return value

    return AfterValidator(check)


class _CustomUnionError:
    """One error for a union that no member accepts, instead of one per member."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        self.message = message

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        assert schema["type"] == "union", schema["type"]
        return core_schema.union_schema(
            schema["choices"], custom_error_type=self.error_type, custom_error_message=self.message
        )


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(in_utc)]
EventTime = Annotated[Timestamp, AfterValidator(_event_time)]
Name = Annotated[StrictStr, Field(max_length=MAX_NAME_CHARS)]
Status = Annotated[StrictStr, Field(max_length=MAX_STATUS_CHARS)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]
ParametersKey = Annotated[StrictStr, AfterValidator(_parameters_key)]
BuildNumber = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
ImageTag = Annotated[
    BuildNumber | Annotated[StrictStr, Field(max_length=MAX_IMAGE_TAG_CHARS)],
    Field(description="A build number (an integer >= 0) or a tag of at most 64 characters."),
    _CustomUnionError(
        "image_tag_type",
        "Input should be a build number (an integer >= 0) or a tag of at most "
        f"{MAX_IMAGE_TAG_CHARS} characters",
    ),
]
ServiceDefinitions = Annotated[dict[Name, dict[str, Any]], free_json(depth=2)]
StepParameters = Annotated[dict[ParametersKey, dict[str, Any]], free_json(depth=2)]
UpdateValue = Annotated[Any, free_json(depth=4)]
_T = TypeVar("_T", bound=type)


def section(cls: _T) -> _T:
    """A section: unknown keys are refused. Sections are TypedDicts: pydantic-core hands them
    over as plain dicts, with no model instance to build and dump again."""
    return with_config(ConfigDict(extra="forbid"))(cls)


@section
class ProjectSection(TypedDict):
    """The project the event is about (every ``project:*`` type)."""

    uuid: UUID
    name: Name


@section
class PipelineSection(TypedDict):
    """The pipeline (``project:pipeline:*`` types)."""

    uuid: UUID
    name: Name


@section
class SessionSection(TypedDict):
    """The interactive session (optional, interactive-session types)."""

    user_services: NotRequired[
        Annotated[
            ServiceDefinitions | None,
            Field(description="Service name → service definition (image, command, env variables...)."),
        ]
    ]


@section
class EnvironmentSection(TypedDict):
    """The environment (``project:environment:*`` types)."""

    uuid: UUID
    name: NotRequired[Name | None]


class _ImageBuildFields(TypedDict):
    image_tag: NotRequired[ImageTag | None]
    requested_time: NotRequired[Timestamp | None]
    started_time: NotRequired[Timestamp | None]
    finished_time: NotRequired[Timestamp | None]


@section
class ImageBuildSection(_ImageBuildFields):
    """An image build of an environment (``project:environment:image-build:*``)."""

    uuid: NotRequired[UUID | None]


@section
class JupyterImageBuildSection(_ImageBuildFields):
    """A build of the Jupyter image (``jupyter:image-build:*``): its ``uuid`` is required."""

    uuid: UUID


@section
class JobSection(TypedDict):
    """The job (job types). ``status`` is the producer's own word, at most 64 characters."""

    uuid: UUID
    name: Name
    status: Status
    pipeline_uuid: NotRequired[UUID | None]
    pipeline_name: NotRequired[Name | None]


@section
class OneOffJobSection(JobSection):
    """A one-off job: ``total_runs`` is required."""

    total_runs: Count


@section
class CronJobSection(JobSection):
    """A cron job: ``schedule`` is required."""

    schedule: Name
    next_scheduled_time: NotRequired[Timestamp | None]


@section
class RunSection(TypedDict):
    """One run of a cron job (``project:cron-job:run:*``)."""

    number: Count
    total_pipeline_runs: Count
    status: NotRequired[Status | None]


@section
class StepRef(TypedDict):
    """A pipeline step."""

    uuid: UUID
    title: Name


Steps = Annotated[list[StepRef], Field(max_length=MAX_LIST_ITEMS)]


@section
class PipelineRunSection(TypedDict):
    """A pipeline run (pipeline-run types)."""

    uuid: UUID
    status: NotRequired[Status | None]
    number: NotRequired[Count | None]
    steps: NotRequired[Steps | None]
    parameters: NotRequired[
        Annotated[
            StepParameters | None,
            Field(description="Step uuid → that step's parameters, plus key 'pipeline_parameters'."),
        ]
    ]
    failed_steps: NotRequired[Steps | None]


@section
class CronPipelineRunSection(PipelineRunSection):
    """A pipeline run of a cron job run, numbered within that run."""

    number_in_run: NotRequired[Count | None]


@section
class Change(TypedDict):
    """One change of an update; ``old_value`` and ``new_value`` may be any JSON, ``null`` included."""

    type: Literal["CREATED", "UPDATED", "DELETED"]
    changed_object: Name
    old_value: NotRequired[UpdateValue]
    new_value: NotRequired[UpdateValue]


@section
class UpdateSection(TypedDict):
    """What an update changed (``*:updated`` types)."""

    changes: Annotated[list[Change], Field(max_length=MAX_LIST_ITEMS)]
