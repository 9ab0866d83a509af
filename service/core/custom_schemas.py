"""The JSON Schemas of custom event types: compiling them, caching them, checking ``data``.

Each schema is compiled once per (type, version) by jsonschema-rs (a compiled draft 2020-12
validator in Rust) and kept in this process's ``SchemaCache``. The cache stays right across
replicas without any message between them: every ingest of a custom type reads the type's
current ``version`` from ``event_types`` (one small query, on the ingest's own connection),
and a version the cache does not hold is fetched and compiled there and then. So a PATCH on
one replica applies to the next event any replica records, and a deleted type is refused at
once. Schemas never reach out: a ``$ref`` to anything outside the schema itself is refused
when the type is created (docs/events.md, "Custom event types").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final

import asyncpg
import jsonschema_rs
import orjson

from service.catalog import CUSTOM_KIND
from service.errors import InvalidInput
from service.schemas.events import (
    MAX_REPORTED_ERRORS,
    ValidatedEvent,
    unknown_type_error,
    unstorable_values,
)

Loc = tuple[str | int, ...]

MAX_SCHEMA_BYTES: Final = 64 * 1024
MAX_CACHED_SCHEMAS: Final = 1024
DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"


class SchemaProblem(Exception):
    """Why a schema cannot be a custom type's: ``loc`` inside the schema, ``msg`` the reason."""

    def __init__(self, loc: Loc, msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def _refuse_retrieval(uri: str) -> Any:
    # jsonschema-rs asks for every $ref it cannot resolve inside the schema: none is fetched.
    raise ValueError(f"only references inside the schema are allowed, not {uri!r}")


def compile_schema(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A compiled draft 2020-12 validator of ``schema``; ``SchemaProblem`` if it is not a valid,
    self-contained schema of at most ``MAX_SCHEMA_BYTES`` (as JSON)."""
    unstorable = unstorable_values(schema, (), 1)
    if unstorable:
        raise SchemaProblem(tuple(unstorable[0]["loc"]), unstorable[0]["msg"])
    if len(orjson.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise SchemaProblem((), f"a schema is at most {MAX_SCHEMA_BYTES} bytes of JSON")
    declared = schema.get("$schema", DRAFT_2020_12)
    if declared not in (DRAFT_2020_12, DRAFT_2020_12 + "#"):
        raise SchemaProblem(("$schema",), f"only JSON Schema draft 2020-12 ({DRAFT_2020_12}) is supported")
    try:
        return jsonschema_rs.Draft202012Validator(schema, retriever=_refuse_retrieval)
    except jsonschema_rs.ValidationError as exc:  # the schema against the meta-schema, or a $ref
        return _raise_problem(tuple(exc.instance_path), exc.message)
    except ValueError as exc:
        return _raise_problem((), str(exc))


def _raise_problem(loc: Loc, message: str) -> jsonschema_rs.Validator:
    raise SchemaProblem(loc, message.split("\n", 1)[0][:500])


class SchemaCache:
    """Compiled validators by type name, each for one version; at most ``max_entries`` (the
    least recently used go first). Per process: correctness comes from the version check."""

    def __init__(self, max_entries: int = MAX_CACHED_SCHEMAS) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[int, jsonschema_rs.Validator]] = OrderedDict()

    def held(self, name: str) -> tuple[int, jsonschema_rs.Validator | None]:
        """The version held for ``name`` and its validator (``(0, None)``: none)."""
        entry = self._entries.get(name)
        if entry is None:
            return 0, None
        self._entries.move_to_end(name)
        return entry

    def put(self, name: str, version: int, validator: jsonschema_rs.Validator) -> None:
        """Hold ``validator`` for ``name`` at ``version`` (replacing any older one)."""
        self._entries[name] = (version, validator)
        self._entries.move_to_end(name)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class InvalidCustomEvents(InvalidInput):
    """Custom events that cannot be recorded: an unknown type, or ``data`` its schema refuses.

    ``problems`` locate each error inside its event (``index`` in the input); ``at`` places them
    in the request (``("body",)`` for one event, ``("body", "events", i)`` in a batch).
    """

    def __init__(self, problems: Sequence[tuple[int, dict[str, Any]]]) -> None:
        super().__init__([error for _, error in problems])
        self.problems = list(problems)

    def at(self, prefix: Loc, *, indexed: bool) -> InvalidInput:
        """The same errors as a 422 of the request, their ``loc`` under ``prefix`` (and the index)."""
        return InvalidInput(
            [
                {**error, "loc": [*prefix, *((index,) if indexed else ()), *error["loc"]]}
                for index, error in self.problems
            ]
        )


# The current version of each named custom type, and its schema when the caller's cached
# version ($2, matched by name) is not that one.
_TYPES_SQL = """
SELECT t.name, t.version, CASE WHEN t.version <> k.version THEN CAST(t.schema AS text) END AS schema
FROM event_types t JOIN unnest($1::text[], $2::integer[]) AS k(name, version) ON k.name = t.name
WHERE t.custom AND t.deleted_at IS NULL
"""


async def check_custom_events(
    conn: asyncpg.Connection, cache: SchemaCache, events: Sequence[ValidatedEvent]
) -> None:
    """Check each custom event of ``events`` against its type as it is now in the database:
    the type exists, and the event's ``data`` is valid under its schema. ``InvalidCustomEvents``
    lists every problem (at most ``MAX_REPORTED_ERRORS``)."""
    names = sorted({event.type for event in events if event.kind == CUSTOM_KIND})
    if not names:
        return
    # Taken before the query: what other ingests do to the cache meanwhile cannot change it.
    held = {name: cache.held(name) for name in names}
    rows = await conn.fetch(_TYPES_SQL, names, [held[name][0] for name in names])
    validators: dict[str, jsonschema_rs.Validator] = {}
    for row in rows:
        validator = held[row["name"]][1]
        if row["schema"] is not None or validator is None:
            # Stored schemas were compiled when they were stored: this cannot fail.
            validator = compile_schema(orjson.loads(row["schema"]))
            cache.put(row["name"], row["version"], validator)
        validators[row["name"]] = validator
    problems: list[tuple[int, dict[str, Any]]] = []
    for index, event in enumerate(events):
        if event.kind != CUSTOM_KIND:
            continue
        validator = validators.get(event.type)
        if validator is None:
            problems.append((index, unknown_type_error((), event.type)))
            continue
        data = event.sections["custom"]["data"]
        if not validator.is_valid(data):  # the fast path; the errors only when there are some
            problems += [(index, error) for error in data_errors(validator, data)]
        if len(problems) >= MAX_REPORTED_ERRORS:
            break
    if problems:
        problems = await _without_replays(conn, events, problems)
    if problems:
        raise InvalidCustomEvents(problems[:MAX_REPORTED_ERRORS])


_RECORDED_SQL = (
    "SELECT uuid, type, CAST(sections AS text) AS sections FROM events WHERE uuid = ANY($1::uuid[])"
)


async def _without_replays(
    conn: asyncpg.Connection, events: Sequence[ValidatedEvent], problems: list[tuple[int, dict[str, Any]]]
) -> list[tuple[int, dict[str, Any]]]:
    """``problems`` but those of replays: an event recorded before its type changed (or went)
    is answered as a replay, as it was accepted then (``register_events`` settles it)."""
    given = {index: events[index] for index, _ in problems if events[index].uuid is not None}
    if not given:
        return problems
    rows = await conn.fetch(_RECORDED_SQL, [event.uuid for event in given.values()])
    recorded = {row["uuid"]: (row["type"], orjson.loads(row["sections"])) for row in rows}
    replays = {
        index
        for index, event in given.items()
        if recorded.get(event.uuid) == (event.type, orjson.loads(event.sections_json))
    }
    return [problem for problem in problems if problem[0] not in replays]


def data_errors(validator: jsonschema_rs.Validator, data: Any) -> list[dict[str, Any]]:
    """``data``'s errors under ``validator``, FastAPI-shaped, ``loc`` from ``data`` down to the
    failing value (a missing or unexpected property named too)."""
    errors: list[dict[str, Any]] = []
    for error in validator.iter_errors(data):
        path: list[str | int] = ["data", *error.instance_path]
        kind = error.kind
        message = error.message[:500]
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            errors.append({"loc": [*path, str(kind.property)], "msg": message, "type": "missing"})
        elif isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
            errors += [
                {"loc": [*path, str(key)], "msg": message, "type": "extra_forbidden"}
                for key in kind.unexpected
            ]
        else:
            errors.append({"loc": path, "msg": message, "type": f"schema_{kind.name}"})
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
    return errors
