"""Ingest bodies as JSON text: what PostgreSQL cannot store, nesting, numbers, malformed JSON and
garbage; the quick path (pydantic-core alone) and the full check agree. No database."""

from __future__ import annotations

import json
import random
from typing import Any
from uuid import uuid4

import pytest

from service.catalog import CATALOG
from service.errors import InvalidInput
from service.schemas.event_sections import MAX_JSON_DEPTH
from service.schemas.events import (
    EVENT_ADAPTER,
    ValidatedEvent,
    _event_errors,
    _full_check,
    storable_json_text,
    validate_event,
)
from tests.schemas.validation_helpers import Loc, as_json, at, errors, locs, problems, valid
from tests.support.event_samples import sample_event

ALL_TYPES = list(CATALOG)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("nul\x00here", ("project", "name")),
        ({"k\x00": 1}, ("update", "changes", 0, "new_value")),
        ("\x00", ("update", "changes", 0, "changed_object")),
        ({"a": ["x", "deep \x00"]}, ("update", "changes", 0, "old_value")),
    ],
)
def test_text_postgresql_cannot_store_is_refused_where_it_is(value: Any, where: Loc) -> None:
    found = errors(at(sample_event("project:updated"), where, value))
    assert all(error["loc"][: len(where) + 1] == ("body", *where) for error in found)
    assert found[0]["msg"] == "Text must not contain NUL characters or unpaired surrogates"
    assert found[0]["type"] == "value_error"


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("\ud800", ("project", "name")),
        (float("nan"), ("update", "changes", 0, "new_value")),
        (float("inf"), ("update", "changes", 0, "new_value")),
        (float("-inf"), ("update", "changes", 0, "old_value")),
    ],
)
def test_lone_surrogates_and_non_finite_numbers_are_malformed_json(value: Any, where: Loc) -> None:
    [error] = errors(at(sample_event("project:updated"), where, value))
    assert error["loc"] == ("body",)
    assert error["type"] == "json_invalid"
    assert error["msg"].startswith("malformed JSON: ")


def test_a_non_finite_number_in_a_typed_field_is_refused_there() -> None:
    body = at(sample_event("project:cron-job:run:failed"), ("run", "number"), float("nan"))
    assert locs(body) == [("body", "run", "number")]


@pytest.mark.parametrize("text", [b"{not json", b"", b'{"type": "project:created"', b"[1,]", b'{"a": 1}}'])
def test_malformed_json_is_named_with_the_reason(text: bytes) -> None:
    [error] = problems(text)
    assert error["loc"] == ("body",)
    assert error["type"] == "json_invalid"
    assert error["msg"].startswith("malformed JSON: ")


def test_very_deep_nesting_is_refused_without_recursion() -> None:
    body = sample_event("project:updated")
    text = as_json(at(body, ("update", "changes", 0, "new_value"), "@@")).replace(
        b'"@@"', b"[" * 100_000 + b"]" * 100_000
    )
    assert len(problems(text)) == 1


def test_json_text_with_an_escaped_nul_is_not_storable_text() -> None:
    assert storable_json_text(b'{"name": "plain \\u00e9"}')
    assert not storable_json_text(b'{"name": "nul \\u0000"}')
    # An escaped backslash followed by "u0000" is plain text, but a false alarm only costs the full check.
    assert not storable_json_text(b'{"name": "\\\\u0000"}')
    text = as_json(at(sample_event("project:created"), ("project", "name"), "C:\\u0000"))
    assert validate_event(text).sections["project"]["name"] == "C:\\u0000"


def _outcome(result: ValidatedEvent | InvalidInput) -> object:
    if isinstance(result, InvalidInput):
        return sorted({tuple(error["loc"]) for error in result.errors}, key=repr)
    return (result.type, result.uuid, result.timestamp, result.sections)


def _both_paths(text: bytes) -> tuple[object, object]:
    """The outcome of ``validate_event`` and of the full check of the same text."""
    results: list[ValidatedEvent | InvalidInput] = []
    for check in (validate_event, lambda t: _full_check(EVENT_ADAPTER, t, ("body",), _event_errors)):
        try:
            body = check(text)
            results.append(body if isinstance(body, ValidatedEvent) else validate_event(text))
        except InvalidInput as exc:
            results.append(exc)
    quick, full = results
    return _outcome(quick), _outcome(full)


@pytest.mark.parametrize("depth", [122, 123, 124, 125, 190, 100_000])
def test_the_nesting_limit_is_exact_on_both_paths(depth: int) -> None:
    leaves: list[Any] = ["leaf", [], {}, [1]]
    for leaf in leaves:
        body = sample_event("project:updated")
        text = as_json(at(body, ("update", "changes", 0, "new_value"), "@@")).replace(
            b'"@@"', b"[" * depth + json.dumps(leaf).encode() + b"]" * depth
        )
        quick, full = _both_paths(text)
        assert quick == full
        # new_value sits at depth 4; the deepest value is the leaf, or the 1 inside [1].
        assert isinstance(quick, tuple) == (4 + depth + (leaf == [1]) <= MAX_JSON_DEPTH)
        if depth < 1000 and not isinstance(quick, tuple):
            [error] = problems(text)
            assert error["msg"] == f"Nested deeper than {MAX_JSON_DEPTH} levels"
            assert error["loc"][:6] == ("body", "update", "changes", 0, "new_value", 0)


def test_moderate_nesting_and_huge_numbers_in_free_values_are_accepted() -> None:
    nested: Any = {"n": 10**100, "m": -(2**63) - 1, "k": 2**64 - 1}
    for _ in range(40):
        nested = {"x": [nested]}
    body = sample_event("project:updated")
    sections = valid(at(body, ("update", "changes", 0, "new_value"), nested)).sections
    leaf: Any = sections["update"]["changes"][0]["new_value"]
    for _ in range(40):
        leaf = leaf["x"][0]
    # As JSON readers without big integers read them: floats beyond 64 bits, integers within.
    assert leaf == {"n": 1e100, "m": float(-(2**63) - 1), "k": 2**64 - 1}
    assert type(leaf["k"]) is int


def test_huge_numbers_in_typed_fields_are_refused() -> None:
    body = sample_event("project:cron-job:run:failed")
    assert locs(at(body, ("run", "number"), 10**100)) == [("body", "run", "number")]


def _garbage(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(10 if depth < 4 else 7)
    scalars: list[Any] = [None, True, -1, 10**30, 1.5, "", "x" * rng.randrange(2000), str(uuid4())]
    if choice < 7:
        return rng.choice(scalars)
    if choice < 8:
        return [_garbage(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["type", "uuid", "timestamp", "project", "job", "run", "name", "changes", "steps", "x"]
    return {rng.choice(keys): _garbage(rng, depth + 1) for _ in range(rng.randrange(5))}


def test_random_garbage_never_raises_and_both_paths_agree() -> None:
    rng = random.Random(1234)
    for _ in range(3000):
        quick, full = _both_paths(as_json(_garbage(rng)))
        assert quick == full


def test_random_corruptions_of_valid_bodies_never_raise() -> None:
    rng = random.Random(99)
    for _ in range(3000):
        body = sample_event(rng.choice(ALL_TYPES))
        target: Any = body
        while True:
            keys = list(target) if isinstance(target, dict) else list(range(len(target)))
            key = rng.choice(keys)
            if rng.random() < 0.5 or not isinstance(target[key], dict | list) or not target[key]:
                target[key] = _garbage(rng)
                break
            target = target[key]
        quick, full = _both_paths(as_json(body))
        assert quick == full
        if rng.random() < 0.1:
            try:
                problems(as_json(body), ("body", "events", 0))
            except AssertionError:  # still valid
                valid(body)
