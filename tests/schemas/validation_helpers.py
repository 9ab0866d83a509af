"""Validating bodies as a client sends them: Python values written as JSON text."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import orjson

from service.errors import InvalidInput
from service.schemas.events import ErrorDict, ValidatedEvent, validate_batch, validate_event
from tests.support.event_samples import sample_event

Loc = tuple[str | int, ...]


def as_json(raw: object) -> bytes:
    """``raw`` as JSON text, the way a client may write it (big integers, NaN and lone surrogates
    included: the standard library writes them all)."""
    return json.dumps(raw).encode()


def valid(raw: object) -> ValidatedEvent:
    """The validated body, its ``sections`` as they are stored (their JSON text read back)."""
    event = validate_event(as_json(raw))
    return replace(event, sections=orjson.loads(event.sections_json))


def problems(text: bytes, loc: Loc = ("body",)) -> list[ErrorDict]:
    """The errors of one body's JSON ``text``; with a batch ``loc`` ``("body", "events", i)``, of
    that body as the item ``i`` of a batch (the others valid)."""
    try:
        if loc == ("body",):
            validate_event(text)
        else:
            assert loc[:2] == ("body", "events")
            index = loc[2]
            assert isinstance(index, int)
            others = [json.dumps(sample_event("project:created")).encode() for _ in range(index)]
            validate_batch(b'{"events": [' + b",".join([*others, text]) + b"]}")
    except InvalidInput as exc:
        found = [{**error, "loc": tuple(error["loc"])} for error in exc.errors]
    else:
        raise AssertionError("an invalid body must give at least one error")
    assert found
    for error in found:
        assert set(error) == {"loc", "msg", "type"}
        assert error["loc"][: len(loc)] == loc
    return found


def errors(raw: object, loc: Loc = ("body",)) -> list[ErrorDict]:
    return problems(as_json(raw), loc)


def locs(raw: object, loc: Loc = ("body",)) -> list[Loc]:
    return [error["loc"] for error in errors(raw, loc)]


def at(body: dict[str, Any], path: Loc, value: Any) -> dict[str, Any]:
    """``body`` with ``value`` put at ``path``."""
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body
