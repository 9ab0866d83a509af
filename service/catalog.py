"""The event catalog: the 58 event types Herald knows, and subscription patterns over them.

Besides the catalog, Herald records seven operational types of its own (``herald:*``, see
"Operational types" below): they are never ingested, and only patterns that begin with
``herald:`` match them.

Each type names the layer (``kind``) of the event hierarchy that handles it; ``kind`` is
also the single-table-inheritance discriminator of ``service/models/events.py``. The
catalog is plain data so that the API, the migrations and the matching code can use it
without touching the database.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

PING = "ping"
PING_DESCRIPTION = "A test delivery sent on request; not a catalog type, never subscribable."

ScopeFilter = tuple[str, ...]

_NO_FILTERS: tuple[ScopeFilter, ...] = ()
_PROJECT_FILTERS: tuple[ScopeFilter, ...] = (("project_uuid",),)
_JOB_FILTERS: tuple[ScopeFilter, ...] = (("project_uuid",), ("project_uuid", "job_uuid"))


@dataclass(frozen=True)
class EventTypeInfo:
    """One catalog entry: ``optional_filters`` lists the subscription scopes the type allows."""

    name: str
    description: str
    kind: str
    optional_filters: tuple[ScopeFilter, ...]

    def optional_filters_json(self) -> list[list[str]]:
        """``optional_filters`` as ``GET /api/v1/event-types`` shows them, e.g. ``[["project_uuid"]]``."""
        return [list(scope) for scope in self.optional_filters]


# (name, kind, description), family by family (docs/events.md, "The catalog").
_ENTRIES: tuple[tuple[str, str, str], ...] = (
    ("project:created", "project", "A project was created."),
    ("project:updated", "project_update", "A project was updated."),
    ("project:deleted", "project", "A project was deleted."),
    ("project:pipeline:created", "pipeline", "A pipeline of a project was created."),
    ("project:pipeline:updated", "pipeline_update", "A pipeline of a project was updated."),
    ("project:pipeline:deleted", "pipeline", "A pipeline of a project was deleted."),
    (
        "project:pipeline:interactive-session:started",
        "interactive_session",
        "An interactive session of a pipeline started.",
    ),
    (
        "project:pipeline:interactive-session:stopped",
        "interactive_session",
        "An interactive session of a pipeline stopped.",
    ),
    (
        "project:pipeline:interactive-session:service-restarted",
        "interactive_session",
        "An interactive session of a pipeline had one of its services restarted.",
    ),
    (
        "project:pipeline:interactive-session:failed",
        "interactive_session",
        "An interactive session of a pipeline failed.",
    ),
    (
        "project:pipeline:interactive-session:succeeded",
        "interactive_session",
        "An interactive session of a pipeline succeeded.",
    ),
    (
        "project:pipeline:interactive-session:pipeline-run:created",
        "interactive_pipeline_run",
        "An interactive pipeline run was created.",
    ),
    (
        "project:pipeline:interactive-session:pipeline-run:started",
        "interactive_pipeline_run",
        "An interactive pipeline run started.",
    ),
    (
        "project:pipeline:interactive-session:pipeline-run:cancelled",
        "interactive_pipeline_run",
        "An interactive pipeline run was cancelled.",
    ),
    (
        "project:pipeline:interactive-session:pipeline-run:failed",
        "interactive_pipeline_run",
        "An interactive pipeline run failed.",
    ),
    (
        "project:pipeline:interactive-session:pipeline-run:succeeded",
        "interactive_pipeline_run",
        "An interactive pipeline run succeeded.",
    ),
    ("project:environment:created", "environment", "An environment of a project was created."),
    ("project:environment:deleted", "environment", "An environment of a project was deleted."),
    (
        "project:environment:image-build:created",
        "environment_image_build",
        "An environment image build was created.",
    ),
    (
        "project:environment:image-build:started",
        "environment_image_build",
        "An environment image build started.",
    ),
    (
        "project:environment:image-build:cancelled",
        "environment_image_build",
        "An environment image build was cancelled.",
    ),
    (
        "project:environment:image-build:failed",
        "environment_image_build",
        "An environment image build failed.",
    ),
    (
        "project:environment:image-build:succeeded",
        "environment_image_build",
        "An environment image build succeeded.",
    ),
    ("project:one-off-job:created", "one_off_job", "A one-off job was created."),
    ("project:one-off-job:started", "one_off_job", "A one-off job started."),
    ("project:one-off-job:deleted", "one_off_job", "A one-off job was deleted."),
    ("project:one-off-job:cancelled", "one_off_job", "A one-off job was cancelled."),
    ("project:one-off-job:failed", "one_off_job", "A one-off job failed."),
    ("project:one-off-job:succeeded", "one_off_job", "A one-off job succeeded."),
    ("project:one-off-job:updated", "one_off_job_update", "A one-off job was updated."),
    (
        "project:one-off-job:pipeline-run:created",
        "one_off_job_pipeline_run",
        "A pipeline run of a one-off job was created.",
    ),
    (
        "project:one-off-job:pipeline-run:started",
        "one_off_job_pipeline_run",
        "A pipeline run of a one-off job started.",
    ),
    (
        "project:one-off-job:pipeline-run:cancelled",
        "one_off_job_pipeline_run",
        "A pipeline run of a one-off job was cancelled.",
    ),
    (
        "project:one-off-job:pipeline-run:failed",
        "one_off_job_pipeline_run",
        "A pipeline run of a one-off job failed.",
    ),
    (
        "project:one-off-job:pipeline-run:deleted",
        "one_off_job_pipeline_run",
        "A pipeline run of a one-off job was deleted.",
    ),
    (
        "project:one-off-job:pipeline-run:succeeded",
        "one_off_job_pipeline_run",
        "A pipeline run of a one-off job succeeded.",
    ),
    ("project:cron-job:created", "cron_job", "A cron job was created."),
    ("project:cron-job:started", "cron_job", "A cron job started."),
    ("project:cron-job:deleted", "cron_job", "A cron job was deleted."),
    ("project:cron-job:cancelled", "cron_job", "A cron job was cancelled."),
    ("project:cron-job:failed", "cron_job", "A cron job failed."),
    ("project:cron-job:paused", "cron_job", "A cron job was paused."),
    ("project:cron-job:unpaused", "cron_job", "A cron job was unpaused."),
    ("project:cron-job:updated", "cron_job_update", "A cron job was updated."),
    ("project:cron-job:run:started", "cron_job_run", "A run of a cron job started."),
    ("project:cron-job:run:succeeded", "cron_job_run", "A run of a cron job succeeded."),
    ("project:cron-job:run:failed", "cron_job_run", "A run of a cron job failed."),
    (
        "project:cron-job:run:pipeline-run:created",
        "cron_job_run_pipeline_run",
        "A pipeline run of a cron job run was created.",
    ),
    (
        "project:cron-job:run:pipeline-run:started",
        "cron_job_run_pipeline_run",
        "A pipeline run of a cron job run started.",
    ),
    (
        "project:cron-job:run:pipeline-run:cancelled",
        "cron_job_run_pipeline_run",
        "A pipeline run of a cron job run was cancelled.",
    ),
    (
        "project:cron-job:run:pipeline-run:failed",
        "cron_job_run_pipeline_run",
        "A pipeline run of a cron job run failed.",
    ),
    (
        "project:cron-job:run:pipeline-run:deleted",
        "cron_job_run_pipeline_run",
        "A pipeline run of a cron job run was deleted.",
    ),
    (
        "project:cron-job:run:pipeline-run:succeeded",
        "cron_job_run_pipeline_run",
        "A pipeline run of a cron job run succeeded.",
    ),
    ("jupyter:image-build:created", "jupyter_image_build", "A Jupyter image build was created."),
    ("jupyter:image-build:started", "jupyter_image_build", "A Jupyter image build started."),
    ("jupyter:image-build:cancelled", "jupyter_image_build", "A Jupyter image build was cancelled."),
    ("jupyter:image-build:failed", "jupyter_image_build", "A Jupyter image build failed."),
    ("jupyter:image-build:succeeded", "jupyter_image_build", "A Jupyter image build succeeded."),
)


def _optional_filters(name: str) -> tuple[ScopeFilter, ...]:
    # The platform's rule: job families may be scoped to a job, other project types to a
    # project, Jupyter types (no project) not at all.
    if name.startswith(("project:one-off-job:", "project:cron-job:")):
        return _JOB_FILTERS
    if name.startswith("project:"):
        return _PROJECT_FILTERS
    return _NO_FILTERS


CATALOG: dict[str, EventTypeInfo] = {
    name: EventTypeInfo(name, description, kind, _optional_filters(name))
    for name, kind, description in _ENTRIES
}

# -- Operational types: Herald's own reports about its webhooks --------------------------------
# Every rule that sets ``herald:`` types apart lives here: they are not ingestible, ``*`` and
# every other pattern that does not begin with the prefix leave them out, and their only scope is
# the project owning the webhook they are about.

OPERATIONAL_PREFIX = "herald:"
SUBSCRIBER_DISABLED = "herald:subscriber:disabled"
SUBSCRIBER_ENABLED = "herald:subscriber:enabled"
DELIVERY_FAILING = "herald:delivery:failing"
DELIVERY_FAILED = "herald:delivery:failed"
DELIVERY_RECOVERED = "herald:delivery:recovered"
CIRCUIT_OPENED = "herald:subscriber:circuit-opened"
CIRCUIT_CLOSED = "herald:subscriber:circuit-closed"

# The layers of ``service/models/events.py`` that carry them.
OPERATIONAL_SUBSCRIBER_KIND = "operational_subscriber"
OPERATIONAL_DELIVERY_KIND = "operational_delivery"
OPERATIONAL_CIRCUIT_KIND = "operational_circuit"

_OPERATIONAL_ENTRIES: tuple[tuple[str, str, str], ...] = (
    (
        SUBSCRIBER_DISABLED,
        OPERATIONAL_SUBSCRIBER_KIND,
        "A webhook was disabled: it answered 410, kept failing for too long, or was disabled by hand.",
    ),
    (SUBSCRIBER_ENABLED, OPERATIONAL_SUBSCRIBER_KIND, "A disabled webhook was enabled again."),
    (
        DELIVERY_FAILING,
        OPERATIONAL_DELIVERY_KIND,
        "A delivery failed HERALD_FAILING_AFTER_ATTEMPTS attempts and is still being retried.",
    ),
    (DELIVERY_FAILED, OPERATIONAL_DELIVERY_KIND, "A delivery ended failed (out of attempts, or 410)."),
    (
        DELIVERY_RECOVERED,
        OPERATIONAL_DELIVERY_KIND,
        "A delivery that had been reported failing was delivered.",
    ),
    (
        CIRCUIT_OPENED,
        OPERATIONAL_CIRCUIT_KIND,
        "A webhook's circuit opened: HERALD_CIRCUIT_FAILURES attempts in a row failed.",
    ),
    (CIRCUIT_CLOSED, OPERATIONAL_CIRCUIT_KIND, "A webhook's circuit closed: it answered again."),
)

OPERATIONAL: dict[str, EventTypeInfo] = {
    name: EventTypeInfo(name, description, kind, _PROJECT_FILTERS)
    for name, kind, description in _OPERATIONAL_ENTRIES
}


# -- Custom types: defined by producers at run time (docs/events.md, "Custom event types") --------
# Their names, schemas and versions live in the ``event_types`` table; what is fixed is here: the
# name rule (disjoint from the catalog, ``ping`` and the operational types) and their one scope.

CUSTOM_KIND = "custom"
CUSTOM_NAME_CHARS = "[a-z0-9:._-]"
CUSTOM_NAME_MIN_CHARS, CUSTOM_NAME_MAX_CHARS = 3, 100
_CUSTOM_NAME = re.compile(f"{CUSTOM_NAME_CHARS}{{{CUSTOM_NAME_MIN_CHARS},{CUSTOM_NAME_MAX_CHARS}}}")
RESERVED_PREFIXES = ("project:", "jupyter:", OPERATIONAL_PREFIX)
CUSTOM_FILTERS = _PROJECT_FILTERS


def custom_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a custom type, or ``None`` if it can."""
    if not _CUSTOM_NAME.fullmatch(name):
        return (
            f"must be {CUSTOM_NAME_MIN_CHARS}-{CUSTOM_NAME_MAX_CHARS} characters of "
            f"{CUSTOM_NAME_CHARS} (lower case)"
        )
    if name.startswith(RESERVED_PREFIXES) or name == PING:
        return f"must not be {PING!r} nor start with {', '.join(map(repr, RESERVED_PREFIXES))}"
    return None


def is_custom_name(name: str) -> bool:
    """Whether ``name`` may name a custom type (whether one exists is the database's to say)."""
    return custom_name_problem(name) is None


def is_operational(type_name: str) -> bool:
    """Whether ``type_name`` is one of Herald's own operational types."""
    return type_name in OPERATIONAL


def reaches_operational(pattern: str) -> bool:
    """Whether a pattern may match operational types at all: only if it begins with ``herald:``."""
    return pattern.startswith(OPERATIONAL_PREFIX)


def info_of(type_name: str) -> EventTypeInfo | None:
    """The catalog or operational entry of ``type_name``, or ``None``."""
    return CATALOG.get(type_name) or OPERATIONAL.get(type_name)


# The rows the migrations insert into ``event_types``: the catalog plus ``ping`` (the
# operational types are inserted by a migration of their own).
CATALOG_ROWS: tuple[tuple[str, str], ...] = (
    *((info.name, info.description) for info in CATALOG.values()),
    (PING, PING_DESCRIPTION),
)

# The discriminator of ``ping`` events: the root ``Event`` class.
PING_KIND = "event"


def kind_of(type_name: str) -> str | None:
    """The layer handling ``type_name`` (``ping`` included; any name a custom type may have), or
    ``None`` for a name no type can have."""
    if type_name == PING:
        return PING_KIND
    info = info_of(type_name)
    if info is not None:
        return info.kind
    return CUSTOM_KIND if is_custom_name(type_name) else None


def _glob_match(pattern: str, name: str) -> bool:
    # Linear-time wildcard match (no regex: ".*" runs backtrack exponentially on a pattern
    # like "**********x"). The literal parts between stars must appear in order; matching
    # each at its leftmost position is always safe, so no backtracking is needed.
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == name
    first, *middle, last = parts
    if len(name) < len(first) + len(last) or not name.startswith(first) or not name.endswith(last):
        return False
    position, end = len(first), len(name) - len(last)
    for part in middle:
        found = name.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def pattern_matches(pattern: str, name: str) -> bool:
    """Whether ``pattern`` matches ``name``: ``*`` is any run of characters (``:`` included,
    possibly empty), everything else literal, case-sensitive. ``ping`` is never matched, and an
    operational type only by a pattern that begins with ``herald:``."""
    if name == PING or (name in OPERATIONAL and not reaches_operational(pattern)):
        return False
    return _glob_match(pattern, name)


def expand_pattern(pattern: str, custom: Collection[str] = ()) -> list[str]:
    """The catalog types ``pattern`` matches, in catalog order, then the operational ones it
    matches (never ``ping``), then the ``custom`` type names it matches."""
    names = [name for name in CATALOG if pattern_matches(pattern, name)]
    if reaches_operational(pattern):
        names.extend(name for name in OPERATIONAL if pattern_matches(pattern, name))
    names.extend(name for name in sorted(custom) if pattern_matches(pattern, name))
    return names


def pattern_to_like(pattern: str) -> str:
    """``pattern`` as a SQL ``LIKE`` pattern to be used with ``ESCAPE '\\'``.

    ``\\``, ``%`` and ``_`` are literal in our patterns, so they are escaped; ``*`` → ``%``.
    """
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def allowed_scopes(pattern: str, custom: Collection[str] = ()) -> list[ScopeFilter]:
    """The scopes allowed by every type ``pattern`` matches (empty when it matches none)."""
    matched = expand_pattern(pattern, custom)
    if not matched:
        return []
    scopes = list(optional_filters_of(matched[0]))
    for name in matched[1:]:
        scopes = [scope for scope in scopes if scope in optional_filters_of(name)]
    return scopes


def check_scope(pattern: str, has_project: bool, has_job: bool, custom: Collection[str] = ()) -> str | None:
    """Why a subscription with this pattern and scope is not allowed, or ``None`` if it is.

    A scope is allowed only if every type the pattern matches (catalog, operational or one of
    the ``custom`` types) allows it (docs/events.md, "Subscriptions"); a job scope needs a
    project scope too.
    """
    matched = expand_pattern(pattern, custom)
    if not matched:
        return f"event type pattern {_shorten(pattern)} matches no catalog or custom event type"
    if has_job and not has_project:
        return "a job_uuid scope needs a project_uuid too"
    if not has_project:
        return None
    scope: ScopeFilter = ("project_uuid", "job_uuid") if has_job else ("project_uuid",)
    for name in matched:
        if scope not in optional_filters_of(name):
            what = "job" if has_job else "project"
            return (
                f"event type {name!r} (matched by {_shorten(pattern)}) cannot be scoped to a {what}: "
                f"allowed scopes are {[list(s) for s in optional_filters_of(name)]}"
            )
    return None


def optional_filters_of(name: str) -> tuple[ScopeFilter, ...]:
    """The scopes a subscription to ``name`` may carry (a custom type's: its project; none for a
    name no type can have)."""
    info = info_of(name)
    if info is not None:
        return info.optional_filters
    return CUSTOM_FILTERS if is_custom_name(name) else _NO_FILTERS


def _shorten(text: str, limit: int = 120) -> str:
    # Error messages echo user input; keep them bounded.
    return repr(text if len(text) <= limit else text[:limit] + "…")
