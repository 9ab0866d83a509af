"""The event catalog and subscription patterns (docs/events.md, "The catalog" and "Subscriptions")."""

from __future__ import annotations

import re

import pytest

from service.catalog import (
    CATALOG,
    CATALOG_ROWS,
    PING,
    allowed_scopes,
    check_scope,
    expand_pattern,
    kind_of,
    pattern_matches,
    pattern_to_like,
)


def _expand(family: str, verbs: str) -> list[str]:
    return [f"{family}:{verb}" for verb in verbs.split(",")]


# The documented list (docs/events.md), brace groups expanded by hand-written families, in the same order.
API_CATALOG = [
    *_expand("project", "created,updated,deleted"),
    *_expand("project:pipeline", "created,updated,deleted"),
    *_expand("project:pipeline:interactive-session", "started,stopped,service-restarted,failed,succeeded"),
    *_expand(
        "project:pipeline:interactive-session:pipeline-run", "created,started,cancelled,failed,succeeded"
    ),
    *_expand("project:environment", "created,deleted"),
    *_expand("project:environment:image-build", "created,started,cancelled,failed,succeeded"),
    *_expand("project:one-off-job", "created,started,deleted,cancelled,failed,succeeded,updated"),
    *_expand("project:one-off-job:pipeline-run", "created,started,cancelled,failed,deleted,succeeded"),
    *_expand("project:cron-job", "created,started,deleted,cancelled,failed,paused,unpaused,updated"),
    *_expand("project:cron-job:run", "started,succeeded,failed"),
    *_expand("project:cron-job:run:pipeline-run", "created,started,cancelled,failed,deleted,succeeded"),
    *_expand("jupyter:image-build", "created,started,cancelled,failed,succeeded"),
]


def test_catalog_has_the_58_types_of_the_contract_in_order() -> None:
    assert len(API_CATALOG) == 58
    assert list(CATALOG) == API_CATALOG
    assert all(info.name == name for name, info in CATALOG.items())


def test_every_type_has_a_one_line_description_and_a_layer() -> None:
    for info in CATALOG.values():
        assert info.description.endswith(".")
        assert "\n" not in info.description
        assert info.kind
        assert kind_of(info.name) == info.kind


def test_catalog_rows_are_the_catalog_plus_ping() -> None:
    assert [name for name, _ in CATALOG_ROWS] == [*API_CATALOG, PING]
    assert all(description for _, description in CATALOG_ROWS)
    assert PING not in CATALOG
    assert kind_of(PING) == "event"
    assert kind_of("project:nope") is None


@pytest.mark.parametrize(
    ("name", "filters"),
    [
        ("jupyter:image-build:failed", []),
        ("project:created", [["project_uuid"]]),
        ("project:pipeline:interactive-session:pipeline-run:failed", [["project_uuid"]]),
        ("project:environment:image-build:started", [["project_uuid"]]),
        ("project:one-off-job:created", [["project_uuid"], ["project_uuid", "job_uuid"]]),
        ("project:one-off-job:pipeline-run:failed", [["project_uuid"], ["project_uuid", "job_uuid"]]),
        ("project:cron-job:paused", [["project_uuid"], ["project_uuid", "job_uuid"]]),
        ("project:cron-job:run:pipeline-run:deleted", [["project_uuid"], ["project_uuid", "job_uuid"]]),
    ],
)
def test_optional_filters_follow_the_seed(name: str, filters: list[list[str]]) -> None:
    assert CATALOG[name].optional_filters_json() == filters


@pytest.mark.parametrize(
    ("pattern", "expected_count"),
    [
        ("*", 58),
        ("**", 58),
        ("project:*", 53),
        ("jupyter:*", 5),
        ("*:failed", 9),
        ("project:*:pipeline-run:failed", 3),
        ("project:cron-job:*", 17),
        ("*pipeline-run*", 17),
        ("project:created", 1),
        ("project:created*", 1),
        ("*project:created", 1),
        ("Project:*", 0),
        ("PROJECT:CREATED", 0),
        ("", 0),
        ("project", 0),
        ("project:%", 0),
        ("project:_reated", 0),
        ("ping", 0),
        ("pi*", 0),
    ],
)
def test_expand_pattern_counts(pattern: str, expected_count: int) -> None:
    assert len(expand_pattern(pattern)) == expected_count


def test_star_matches_across_colons_and_the_empty_string() -> None:
    assert pattern_matches("project:*:pipeline-run:failed", "project:one-off-job:pipeline-run:failed")
    assert pattern_matches(
        "project:*:pipeline-run:failed", "project:pipeline:interactive-session:pipeline-run:failed"
    )
    assert pattern_matches("project:*created", "project:created")
    assert not pattern_matches("project:*:created", "project:created")


def test_expand_pattern_keeps_catalog_order() -> None:
    assert expand_pattern("project:*:pipeline-run:failed") == [
        "project:pipeline:interactive-session:pipeline-run:failed",
        "project:one-off-job:pipeline-run:failed",
        "project:cron-job:run:pipeline-run:failed",
    ]


def test_ping_is_matched_by_no_pattern() -> None:
    for pattern in ("*", "ping", "p*", "*g"):
        assert not pattern_matches(pattern, PING)
        assert PING not in expand_pattern(pattern)


def test_regex_metacharacters_in_patterns_are_literal() -> None:
    assert not pattern_matches("project:.*", "project:created")
    assert not pattern_matches("project:[a-z]*", "project:created")
    assert pattern_matches("a.b", "a.b")
    assert not pattern_matches("a.b", "axb")
    assert expand_pattern("(project):*") == []


@pytest.mark.parametrize(
    ("pattern", "like"),
    [
        ("project:created", "project:created"),
        ("*", "%"),
        ("project:*:failed", "project:%:failed"),
        ("a%b", "a\\%b"),
        ("a_b", "a\\_b"),
        ("a\\b", "a\\\\b"),
        ("%_*\\", "\\%\\_%\\\\"),
    ],
)
def test_pattern_to_like_escapes_like_metacharacters(pattern: str, like: str) -> None:
    assert pattern_to_like(pattern) == like


def _like_matches(like: str, name: str) -> bool:
    """SQL LIKE with ESCAPE '\\', as PostgreSQL evaluates it."""
    regex, i = "", 0
    while i < len(like):
        char = like[i]
        if char == "\\":
            i += 1
            regex += re.escape(like[i])
        elif char == "%":
            regex += ".*"
        elif char == "_":
            regex += "."
        else:
            regex += re.escape(char)
        i += 1
    return re.fullmatch(regex, name, re.DOTALL) is not None


@pytest.mark.parametrize(
    "pattern",
    ["*", "project:*", "*:failed", "project:*:pipeline-run:*", "project_*", "%", "_*", "project:c%", "*\\*"],
)
def test_like_pattern_agrees_with_pattern_matches(pattern: str) -> None:
    for name in [*CATALOG, "project_created", "project:c%", "x\\y"]:
        assert _like_matches(pattern_to_like(pattern), name) == pattern_matches(pattern, name)


def test_a_pattern_matching_nothing_is_refused() -> None:
    message = check_scope("project:nothing:*", has_project=False, has_job=False)
    assert message is not None
    assert "matches no" in message
    assert check_scope("ping", has_project=False, has_job=False) is not None


@pytest.mark.parametrize(
    ("pattern", "has_project", "has_job", "allowed"),
    [
        ("*", False, False, True),
        ("*", True, False, False),  # jupyter:* allows no scope
        ("project:*", True, False, True),
        ("project:*", True, True, False),  # project:created allows no job scope
        ("project:one-off-job:*", True, True, True),
        ("project:*-job:*", True, True, True),
        ("project:cron-job:run:pipeline-run:failed", True, True, True),
        ("jupyter:image-build:failed", True, False, False),
        ("jupyter:image-build:failed", False, False, True),
        ("project:one-off-job:created", False, True, False),  # job without project
    ],
)
def test_a_scope_must_be_allowed_by_every_matched_type(
    pattern: str, has_project: bool, has_job: bool, allowed: bool
) -> None:
    assert (check_scope(pattern, has_project=has_project, has_job=has_job) is None) is allowed


def test_scope_error_names_the_type_that_refuses_it() -> None:
    message = check_scope("*", has_project=True, has_job=False)
    assert message is not None
    assert "jupyter:image-build:created" in message


def test_allowed_scopes_is_the_intersection_over_matched_types() -> None:
    assert allowed_scopes("*") == []
    assert allowed_scopes("project:*") == [("project_uuid",)]
    assert allowed_scopes("project:cron-job:*") == [("project_uuid",), ("project_uuid", "job_uuid")]
    assert allowed_scopes("nothing") == []


def test_error_messages_do_not_echo_huge_patterns() -> None:
    message = check_scope("x" * 10_000, has_project=False, has_job=False)
    assert message is not None
    assert len(message) < 300


@pytest.mark.timeout(5)  # a backtracking matcher hangs for minutes on these patterns
def test_pattern_matching_does_not_backtrack_on_star_runs() -> None:
    assert not pattern_matches("*" * 200 + "x", "project:cron-job:run:pipeline-run:succeeded")
    assert not pattern_matches("*a" * 100 + "*q", "a" * 60)
    assert pattern_matches("p*r*o*j*e*c*t*", "project:created")
    assert pattern_matches("*:*:*", "project:pipeline:created")
    assert not pattern_matches("*:*:*:*", "project:pipeline:created")
