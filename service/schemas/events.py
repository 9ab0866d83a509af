"""Validating ingest bodies from their JSON text (the models: ``service.schemas.event_bodies``).

``validate_event`` and ``validate_batch`` hand the raw bytes to pydantic-core, which parses and
validates them in one pass. What it cannot judge exactly is sent to the full check
(``_full_check``): text holding an escaped NUL character (which PostgreSQL cannot store), JSON
that its parser refuses (so that the answer names orjson's reason, as for any malformed body),
and free JSON values that are nested too deep, hold integers beyond 64 bits or non-finite
numbers. The full check reads the body with orjson, walks it for unstorable values, and
validates orjson's rendering of it with the same models.

Errors are FastAPI-shaped (``{"loc", "msg", "type"}``, ``loc`` from ``("body", ...)``), as
pydantic-core reports them, with three corrections: the discriminator's tag is taken out of
``loc``; a missing or unknown ``type`` is reported at ``("body", "type")``, together with the
problems of the rest of the body; a section the type does not take says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from service.catalog import CATALOG, PING
from service.errors import InvalidInput
from service.schemas.event_bodies import (
    CATALOG_BRANCH,
    CUSTOM_BRANCH,
    ROOT_FIELDS,
    SECTION_NAMES,
    AnyEventIn,
    CustomEventIn,
    EventBatchIn,
    EventRootIn,
)
from service.schemas.event_sections import FULL_CHECK_NEEDED, MAX_JSON_DEPTH, EventTime

MAX_REPORTED_ERRORS = 100  # one bad body must not produce a huge 422

# One validation problem, shaped like FastAPI's 422 ``detail`` items. A plain dict (not a
# TypedDict) so that it passes wherever FastAPI and our error types take ``dict[str, Any]``.
ErrorDict = dict[str, Any]
Loc = tuple[str | int, ...]
Shape = Callable[[list[Any], Loc], list[ErrorDict]]
_M = TypeVar("_M")

EVENT_ADAPTER: TypeAdapter[EventRootIn] = TypeAdapter(AnyEventIn)
BATCH_ADAPTER: TypeAdapter[EventBatchIn] = TypeAdapter(EventBatchIn)


@dataclass(frozen=True, slots=True)
class ValidatedEvent:
    """A valid event body. ``sections`` holds the validated values (uuids as ``UUID``, times as
    UTC ``datetime``, optional fields left out), so equal bodies give equal ``sections``;
    ``sections_json`` is their JSON text, as stored."""

    type: str
    kind: str
    uuid: UUID | None
    timestamp: datetime | None
    sections: dict[str, Any]
    sections_json: bytes  # ``sections`` as JSON text


def validate_event(text: bytes) -> ValidatedEvent:
    """Validate the JSON text of one ingest body; ``InvalidInput`` (a 422) lists every problem."""
    return _validated_event(_validated(EVENT_ADAPTER, text, ("body",), _event_errors))


def validate_batch(text: bytes) -> list[ValidatedEvent]:
    """Validate the JSON text of a batch body ``{"events": [...]}``; ``InvalidInput`` on problems."""
    batch = _validated(BATCH_ADAPTER, text, ("body",), _batch_errors)
    return [_validated_event(body) for body in batch.events]


def _validated_event(body: EventRootIn) -> ValidatedEvent:
    sections = body.sections()
    # Uuids in canonical form, times in UTC with a Z: the JSON of equal bodies is equal.
    text = orjson.dumps(sections, option=orjson.OPT_UTC_Z)
    return ValidatedEvent(body.type, body.kind, body.uuid, body.timestamp, sections, text)


def storable_json_text(text: bytes) -> bool:
    """Whether no string of the JSON ``text`` can hold a NUL character (which PostgreSQL refuses).

    JSON text can only spell it as the escape ``\\u0000`` (a raw control character is not
    JSON), so its absence is enough; a false alarm (``\\\\u0000``) only costs the full check.
    """
    return b"\\u0000" not in text


def _validated(adapter: TypeAdapter[_M], text: bytes, loc: Loc, shape: Shape) -> _M:
    """``text`` validated by ``adapter``: quickly when pydantic-core can judge it, else fully."""
    if storable_json_text(text):
        try:
            return adapter.validate_json(text)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False)
            if not any(e["type"] in _FULL_CHECK_TYPES for e in errors):
                raise InvalidBodies(shape(errors, loc)[:MAX_REPORTED_ERRORS]) from None
    return _full_check(adapter, text, loc, shape)


_FULL_CHECK_TYPES = frozenset({FULL_CHECK_NEEDED, "json_invalid"})


def _full_check(adapter: TypeAdapter[_M], text: bytes, loc: Loc, shape: Shape) -> _M:
    value = _parsed(text)
    problems = _unstorable(value, adapter, loc)
    try:
        normalized = orjson.dumps(value)  # integers beyond 64 bits are floats in ``value``
    except orjson.JSONEncodeError:  # nested too deep to write back: ``problems`` say where
        too_deep = _error(loc, f"Nested deeper than {MAX_JSON_DEPTH} levels", "value_error")
        raise InvalidInput(problems or [too_deep]) from None
    try:
        result = adapter.validate_json(normalized)
    except ValidationError as exc:
        # What pydantic-core still cannot judge here (nesting), the walk has reported already.
        found = exc.errors(include_url=False, include_context=False)
        errors = [e for e in found if e["type"] not in _FULL_CHECK_TYPES]
        problems += shape(errors, loc)
    else:
        if not problems:
            return result
    raise InvalidBodies(problems[:MAX_REPORTED_ERRORS])


# The key by which ``_body_errors`` marks the errors of a body checked as a custom type's:
# (the body's ``loc``, its type). ``InvalidBodies`` takes it out.
_CUSTOM_MARK = "custom_type_of_body"


class InvalidBodies(InvalidInput):
    """Invalid ingest bodies. ``unconfirmed`` maps the ``loc`` of each body checked as a custom
    type's to that type: if no such type exists, the answer for that body is the unknown type
    (``unknown_type_error``), not what its shape lacks; only the database can tell."""

    def __init__(self, errors: list[ErrorDict]) -> None:
        self.unconfirmed: dict[Loc, str] = {}
        for error in errors:
            mark = error.pop(_CUSTOM_MARK, None)
            if mark is not None:
                self.unconfirmed[mark[0]] = mark[1]
        super().__init__(errors)

    def with_unknown_types(self, unknown: set[str]) -> InvalidInput:
        """The answer once the types in ``unknown`` are known not to exist: each such body's
        problems are its unknown ``type`` (and its ``uuid`` or ``timestamp``, if bad)."""
        bodies = {loc: name for loc, name in self.unconfirmed.items() if name in unknown}
        errors: list[ErrorDict] = []
        for error in self.errors:
            where = tuple(error["loc"])
            body = next((loc for loc in bodies if where[: len(loc)] == loc), None)
            if body is None or where[len(body) : len(body) + 1] in (("uuid",), ("timestamp",)):
                errors.append(error)
            elif (*body, "type") not in [tuple(e["loc"]) for e in errors]:
                errors.append(unknown_type_error(body, bodies[body]))
        return InvalidInput(errors)


def unknown_type_error(loc: Loc, type_name: str) -> ErrorDict:
    """The error of a body (at ``loc``) whose ``type`` names no catalog or custom type."""
    message = f"Unknown event type {_shorten(type_name)}: neither a catalog nor a custom event type"
    return _error((*loc, "type"), message, "value_error")


def _parsed(text: bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.single(["body"], f"malformed JSON: {exc}", "json_invalid") from None


def _unstorable(value: Any, adapter: TypeAdapter[Any], loc: Loc) -> list[ErrorDict]:
    """Unstorable values of each event body in ``value`` (the whole batch body, or one event)."""
    if adapter is not BATCH_ADAPTER:
        bodies = [(loc, value)]
    elif isinstance(value, dict) and isinstance(value.get("events"), list):
        bodies = [((*loc, "events", index), event) for index, event in enumerate(value["events"])]
    else:
        return []  # the batch's own shape is wrong: that is the answer
    problems: list[ErrorDict] = []
    for where, body in bodies:
        if isinstance(body, dict):  # else the answer is that it is not an object
            problems += unstorable_values(body, where, MAX_REPORTED_ERRORS - len(problems))
    return problems


def unstorable_values(body: dict[Any, Any], loc: Loc, limit: int) -> list[ErrorDict]:
    """Values of ``body`` (as orjson reads JSON) that cannot be stored or sent back out.

    PostgreSQL refuses NUL characters in text and JSONB, and very deep nesting cannot be
    serialized (orjson itself refuses lone surrogates, NaN and infinities). Checked
    iteratively, so no input can exhaust the stack; at most ``limit`` problems.
    """
    errors: list[ErrorDict] = []
    stack: list[tuple[Loc, object]] = [((), body)]
    while stack and len(errors) < limit:
        path, value = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            errors.append(_error((*loc, *path), f"Nested deeper than {MAX_JSON_DEPTH} levels", "value_error"))
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    errors.append(_error((*loc, *path, key[:100]), _BAD_TEXT, "value_error"))
                else:
                    stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
        elif isinstance(value, str) and "\x00" in value:
            errors.append(_error((*loc, *path), _BAD_TEXT, "value_error"))
    return errors


_BAD_TEXT = "Text must not contain NUL characters or unpaired surrogates"


def _event_errors(errors: list[Any], loc: Loc) -> list[ErrorDict]:
    """pydantic-core's errors of one body (``EventIn``) in our shape, ``loc`` in front."""
    return _body_errors(errors, loc, 0)


def _batch_errors(errors: list[Any], loc: Loc) -> list[ErrorDict]:
    """pydantic-core's errors of a batch body: the bodies' errors sit under ``events, i``."""
    shaped: list[ErrorDict] = []
    bodies: dict[int, list[Any]] = {}  # each body's errors together: its branch is chosen once
    for error in errors:
        where = error["loc"]
        if len(where) >= 2 and where[0] == "events" and isinstance(where[1], int):
            bodies.setdefault(where[1], []).append(error)
        else:
            shaped.append(_error((*loc, *where), error["msg"], error["type"]))
    for index, found in sorted(bodies.items()):
        shaped += _body_errors(found, (*loc, "events", index), 2)
    return shaped


def _body_errors(errors: list[Any], loc: Loc, depth: int) -> list[ErrorDict]:
    """Errors of a body found at ``depth`` in the validated value, with ``loc`` in front.

    A body is tried as a catalog body, then as a custom type's: pydantic-core reports both
    branches (``CATALOG_BRANCH``, ``CUSTOM_BRANCH`` first in ``loc``). When the body's ``type``
    may name a custom type, the custom branch's errors are the answer; else the catalog's.
    """
    branches: dict[str, list[Any]] = {CATALOG_BRANCH: [], CUSTOM_BRANCH: []}
    shaped: list[ErrorDict] = []
    for error in errors:
        where = error["loc"][depth:]
        if where and where[0] in branches:
            branches[where[0]].append({**error, "loc": error["loc"][:depth] + where[1:]})
        else:  # a rule of the batch itself (a uuid given twice)
            shaped.append(_error((*loc, *where), error["msg"], error["type"]))
    custom = branches[CUSTOM_BRANCH]
    if custom and not any(e["loc"][depth:] in ((), ("type",)) for e in custom):
        # The type may name a custom type: the catalog branch's error at the union has the body.
        body: Any = next((e["input"] for e in branches[CATALOG_BRANCH] if e["loc"][depth:] == ()), None)
        mark = {_CUSTOM_MARK: (loc, body.get("type"))} if isinstance(body, dict) else {}
        shaped += [_error((*loc, *e["loc"][depth:]), e["msg"], e["type"]) | mark for e in custom]
    else:
        shaped += _catalog_errors(branches[CATALOG_BRANCH], loc, depth)
    return shaped


def _catalog_errors(errors: list[Any], loc: Loc, depth: int) -> list[ErrorDict]:
    """Errors of a body as a catalog body. Inside a member of the ``type`` union, pydantic-core
    puts the tag (the type) in ``loc``: it is taken out. At the union itself, a missing,
    non-string or unknown ``type``."""
    shaped: list[ErrorDict] = []
    for error in errors:
        where = error["loc"][depth:]
        if not where:
            shaped += _union_errors(error, loc)
            continue
        if where[0] not in CATALOG:  # not inside a member: a rule of the batch itself
            shaped.append(_error((*loc, *where), error["msg"], error["type"]))
            continue
        type_name, path = where[0], where[1:]
        message = error["msg"]
        if error["type"] == "extra_forbidden" and len(path) == 1 and path[0] in SECTION_NAMES:
            message = f"Section not taken by event type {type_name!r}"
        shaped.append(_error((*loc, *path), message, error["type"]))
    return shaped


class _AnyTypeIn(BaseModel):
    """A body whose ``type`` is missing or unknown: the problems of the rest of it."""

    model_config = ConfigDict(extra="allow")

    uuid: UUID | None = None
    timestamp: EventTime | None = None


_ANY_TYPE_ADAPTER = TypeAdapter(_AnyTypeIn)
_KNOWN_KEYS = ROOT_FIELDS | SECTION_NAMES | frozenset(CustomEventIn.model_fields)


def _union_errors(error: Any, loc: Loc) -> list[ErrorDict]:
    body = error.get("input")
    if error["type"] not in ("union_tag_invalid", "union_tag_not_found") or not isinstance(body, dict):
        return [_error(loc, error["msg"], error["type"])]
    shaped = [_type_error(body, loc)]
    try:
        _ANY_TYPE_ADAPTER.validate_python(body)
    except ValidationError as exc:
        shaped += [
            _error((*loc, *e["loc"]), e["msg"], e["type"])
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
    shaped += [
        _error((*loc, key), "Extra inputs are not permitted", "extra_forbidden")
        for key in body
        if key not in _KNOWN_KEYS
    ]
    return shaped


def _type_error(body: dict[str, Any], loc: Loc) -> ErrorDict:
    if "type" not in body:
        return _error((*loc, "type"), "Field required", "missing")
    type_name = body["type"]
    if not isinstance(type_name, str):
        return _error((*loc, "type"), "Input should be a valid string", "string_type")
    why = (
        "ping is reserved for test deliveries"
        if type_name == PING
        else "not a catalog event type, and no custom type can have this name"
    )
    assert type_name not in CATALOG  # the union knows every catalog type
    return _error((*loc, "type"), f"Unknown event type {_shorten(type_name)}: {why}", "value_error")


def _error(loc: Loc, msg: str, type_: str) -> ErrorDict:
    return {"loc": loc, "msg": msg, "type": type_}


def _shorten(text: str, limit: int = 100) -> str:
    # Messages echo user input: keep them bounded.
    return repr(text if len(text) <= limit else text[:limit] + "…")
