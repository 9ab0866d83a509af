"""The schema cache of custom types: one compile per (type, version), right after a change
made elsewhere, bounded; and the compile-time checks of a schema."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from service.core.custom_schemas import (
    InvalidCustomEvents,
    SchemaCache,
    SchemaProblem,
    check_custom_events,
    compile_schema,
)
from service.schemas.events import validate_event
from tests.support.custom_types import ORDER_SCHEMA, custom_event


async def _define(db: asyncpg.Connection, schema: dict[str, object], name: str = "order.placed") -> None:
    await db.execute(
        "INSERT INTO event_types (name, description, custom, schema) "
        "VALUES ($1, '', true, CAST($2 AS jsonb)) "
        "ON CONFLICT (name) DO UPDATE SET schema = EXCLUDED.schema, version = event_types.version + 1",
        name,
        orjson.dumps(schema).decode(),
    )


async def test_a_schema_is_compiled_once_per_version(db: asyncpg.Connection) -> None:
    await _define(db, ORDER_SCHEMA)
    cache = SchemaCache()
    event = validate_event(orjson.dumps(custom_event()))
    await check_custom_events(db, cache, [event])
    version, compiled = cache.held("order.placed")
    await check_custom_events(db, cache, [event, event])
    assert cache.held("order.placed") == (version, compiled)
    await _define(db, {"type": "object", "required": ["refund"]})  # as another replica would
    with pytest.raises(InvalidCustomEvents) as refused:
        await check_custom_events(db, cache, [event])
    assert refused.value.at(("body",), indexed=False).errors[0]["loc"] == ["body", "data", "refund"]
    assert cache.held("order.placed")[0] == version + 1


async def test_the_cache_keeps_the_most_recently_used(db: asyncpg.Connection) -> None:
    cache = SchemaCache(max_entries=2)
    for name in ("a.one", "a.two", "a.three"):
        await _define(db, {"type": "object"}, name)
    events = {
        name: validate_event(orjson.dumps(custom_event(name))) for name in ("a.one", "a.two", "a.three")
    }
    await check_custom_events(db, cache, [events["a.one"]])
    await check_custom_events(db, cache, [events["a.two"]])
    await check_custom_events(db, cache, [events["a.one"]])
    await check_custom_events(db, cache, [events["a.three"]])
    assert [cache.held(name)[0] for name in ("a.one", "a.two", "a.three")] == [1, 0, 1]


@pytest.mark.parametrize(
    ("schema", "loc"),
    [
        ({"type": "string", "minLength": "x"}, ("minLength",)),
        ({"$ref": "http://127.0.0.1:9/schema.json"}, ()),
        ({"$defs": {"a": {"$ref": "other.json"}}}, ()),
        ({"$schema": "https://json-schema.org/draft/2019-09/schema"}, ("$schema",)),
    ],
)
def test_compile_refuses_bad_or_remote_schemas(schema: dict[str, object], loc: tuple[str, ...]) -> None:
    with pytest.raises(SchemaProblem) as problem:
        compile_schema(schema)
    assert problem.value.loc == loc


def test_compile_accepts_the_draft_2020_12_declaration() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **ORDER_SCHEMA}
    assert compile_schema(schema).is_valid({"order_id": "x", "amount": 1, "currency": "EUR"})
