"""The checks every request value goes through (service.schemas.inputs), without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from service.schemas.inputs import NO_NUL, JsonObject, Moment, in_utc, json_problems, nul_free

BOUNDED_TEXT: TypeAdapter[str] = TypeAdapter(Annotated[str, Field(min_length=1, max_length=3), NO_NUL])


def messages(adapter: TypeAdapter[Any], value: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        adapter.validate_python(value)
    return [(error["loc"], error["msg"]) for error in info.value.errors()]


def test_text_with_a_nul_is_refused_and_length_limits_keep_their_own_words() -> None:
    assert nul_free("plain") == "plain"
    assert BOUNDED_TEXT.validate_python("abc") == "abc"
    assert messages(BOUNDED_TEXT, "a\x00") == [((), "Value error, Text must not contain NUL characters")]
    assert messages(BOUNDED_TEXT, "abcd") == [((), "String should have at most 3 characters")]
    assert messages(BOUNDED_TEXT, "") == [((), "String should have at least 1 character")]


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
    ],
)
def test_a_time_that_leaves_the_calendar_in_utc_is_refused(moment: datetime) -> None:
    with pytest.raises(ValueError, match="out of range"):
        in_utc(moment)


def test_a_moment_is_given_back_in_utc() -> None:
    adapter: TypeAdapter[datetime] = TypeAdapter(Moment)
    assert adapter.validate_python("2026-01-02T04:05:06+01:00") == datetime(2026, 1, 2, 3, 5, 6, tzinfo=UTC)
    assert adapter.validate_python("9999-12-31T23:59:59Z").year == 9999
    assert messages(adapter, "9999-12-31T23:59:59-14:00")[0][1].endswith("between years 1 and 9999 in UTC")
    assert messages(adapter, "2026-01-02T04:05:06")[0][1] == "Input should have timezone info"


def test_json_problems_are_found_wherever_they_are() -> None:
    value = {
        "ok": [1, 2.5, "text", True, None, 2**64 - 1, -(2**63)],
        "a\x00": 1,
        "deep": {"list": [{"text": "x\x00y"}]},
        "big": 2**64,
        "small": -(2**63) - 1,
        "inf": float("inf"),
        "nan": float("nan"),
    }
    assert sorted(json_problems(value), key=str) == sorted(
        [
            (("a\x00",), "Key must not contain NUL characters"),
            (("deep", "list", 0, "text"), "Text must not contain NUL characters"),
            (("big",), "Integer is beyond 64 bits"),
            (("small",), "Integer is beyond 64 bits"),
            (("inf",), "Number must be finite"),
            (("nan",), "Number must be finite"),
        ],
        key=str,
    )


def test_json_nesting_is_walked_without_recursion_and_bounded() -> None:
    deep: Any = "leaf"
    for _ in range(100_000):
        deep = [deep]
    [(path, message)] = json_problems({"deep": deep})
    assert message == "Value is nested deeper than 128 levels"
    assert len(path) == 128
    assert len(json_problems({str(i): "\x00" for i in range(1000)}, limit=5)) == 5


def test_a_json_object_field_names_the_place_of_each_problem() -> None:
    adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(JsonObject)
    assert adapter.validate_python({"a": [1, "b"]}) == {"a": [1, "b"]}
    assert sorted(messages(adapter, {"a": [1, "b\x00"], "n": 10**30})) == [
        (("a", 1), "Text must not contain NUL characters"),
        (("n",), "Integer is beyond 64 bits"),
    ]
