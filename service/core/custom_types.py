"""Custom event types: creating, changing, deleting and listing them (docs/events.md, "Custom
event types").

A type is one row of ``event_types`` (``custom`` true). Every change raises its ``version``,
which is how each replica's schema cache notices it (``service.core.custom_schemas``). Deleting
a type marks the row (``deleted_at``) rather than removing it: the events of the type stay, and
so do the subscriptions naming it, which match nothing until a type of that name is created
again. Like every service of core/, these add to the caller's session and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.catalog import CUSTOM_FILTERS, PING, info_of
from service.core.custom_schemas import SchemaProblem, compile_schema
from service.errors import Conflict, InvalidInput, NotFound
from service.schemas.events import InvalidBodies


@dataclass(frozen=True)
class CustomType:
    """A custom type as stored."""

    name: str
    description: str
    schema: dict[str, Any]
    version: int

    def optional_filters_json(self) -> list[list[str]]:
        """Its scopes as ``GET /api/v1/event-types`` shows them: ``[["project_uuid"]]``."""
        return [list(scope) for scope in CUSTOM_FILTERS]


_COLUMNS = "name, description, CAST(schema AS text) AS schema, version"

# A deleted type's row is revived (a new version), so that its old events keep their type.
_CREATE_SQL = text(
    f"""
INSERT INTO event_types AS t (name, description, custom, schema, version)
VALUES (:name, :description, true, CAST(:schema AS jsonb), 1)
ON CONFLICT (name) DO UPDATE
   SET description = EXCLUDED.description, schema = EXCLUDED.schema, version = t.version + 1,
       created_at = now(), updated_at = now(), deleted_at = NULL
 WHERE t.custom AND t.deleted_at IS NOT NULL
RETURNING {_COLUMNS}
"""  # noqa: S608  (constant column list)
)
_UPDATE_SQL = text(
    f"""
UPDATE event_types
   SET description = coalesce(CAST(:description AS text), description),
       schema = coalesce(CAST(:schema AS jsonb), schema), version = version + 1, updated_at = now()
 WHERE name = :name AND custom AND deleted_at IS NULL
RETURNING {_COLUMNS}
"""  # noqa: S608
)
_DELETE_SQL = text(
    """
UPDATE event_types SET deleted_at = now(), updated_at = now(), version = version + 1
 WHERE name = :name AND custom AND deleted_at IS NULL
RETURNING name
"""
)
_LIST_SQL = text(
    f"SELECT {_COLUMNS} FROM event_types WHERE custom AND deleted_at IS NULL ORDER BY name"  # noqa: S608
)
_EXISTING_SQL = text(
    "SELECT name FROM event_types WHERE custom AND deleted_at IS NULL AND name = ANY(CAST(:names AS text[]))"
)
_NAMES_SQL = text("SELECT name FROM event_types WHERE custom AND deleted_at IS NULL")


def _custom_type(row: Any) -> CustomType:
    return CustomType(row.name, row.description, orjson.loads(row.schema), row.version)


def checked_schema(schema: dict[str, Any]) -> str:
    """``schema`` as JSON text once it compiles; else a 422 naming the place in it."""
    try:
        compile_schema(schema)
    except SchemaProblem as exc:
        raise InvalidInput.single(["body", "schema", *exc.loc], f"Invalid JSON Schema: {exc.msg}") from None
    return orjson.dumps(schema).decode()


def _refuse_built_in(name: str) -> None:
    if name == PING or info_of(name) is not None:
        raise Conflict(f"event type {name!r} is built in: only custom types can be changed")


async def create_custom_type(
    session: AsyncSession, name: str, description: str, schema: dict[str, Any]
) -> CustomType:
    """Add a custom type (its name already checked); ``Conflict`` if the name is taken."""
    schema_text = checked_schema(schema)
    params = {"name": name, "description": description, "schema": schema_text}
    row = (await session.execute(_CREATE_SQL, params)).one_or_none()
    if row is None:
        raise Conflict(f"event type {name!r} already exists")
    return _custom_type(row)


async def update_custom_type(
    session: AsyncSession, name: str, description: str | None, schema: dict[str, Any] | None
) -> CustomType:
    """Change a custom type's description and schema (``None``: unchanged); events recorded from
    now on are checked against the new schema. ``NotFound``, or ``Conflict`` for a built-in type."""
    _refuse_built_in(name)
    schema_text = checked_schema(schema) if schema is not None else None
    params = {"name": name, "description": description, "schema": schema_text}
    row = (await session.execute(_UPDATE_SQL, params)).one_or_none()
    if row is None:
        raise NotFound(f"custom event type {name!r} not found")
    return _custom_type(row)


async def delete_custom_type(session: AsyncSession, name: str) -> None:
    """Delete a custom type: no more events of it are accepted; those recorded stay, and so do
    subscriptions naming it. ``NotFound``, or ``Conflict`` for a built-in type."""
    _refuse_built_in(name)
    if (await session.execute(_DELETE_SQL, {"name": name})).one_or_none() is None:
        raise NotFound(f"custom event type {name!r} not found")


async def list_custom_types(session: AsyncSession) -> list[CustomType]:
    """Every custom type, by name."""
    return [_custom_type(row) for row in await session.execute(_LIST_SQL)]


async def explained(session: AsyncSession, invalid: InvalidBodies) -> InvalidInput:
    """The 422 of invalid ingest bodies, once the database says which of the custom types their
    ``type`` names exist (a body of no type is answered as such, whatever else it lacks)."""
    if not invalid.unconfirmed:
        return invalid
    names = list(set(invalid.unconfirmed.values()))
    existing = {row.name for row in await session.execute(_EXISTING_SQL, {"names": names})}
    return invalid.with_unknown_types(set(names) - existing)


async def custom_type_names(session: AsyncSession) -> frozenset[str]:
    """The names of the custom types that exist now (what subscription patterns may match)."""
    return frozenset(row.name for row in await session.execute(_NAMES_SQL))
