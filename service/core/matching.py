"""Subscription matching in SQL: the one definition every statement that asks "which webhooks
does this event reach?" interpolates (recording events, recording operational events, and
``subscribed_to``), and the ``herald:`` rule the event list applies to its type filter.

A subscription reaches an event when

- its pattern matches the event's type (``*`` any run of characters, the rest literal: the
  stored ``like_pattern`` column, ``service.catalog.pattern_to_like`` in SQL);
- an operational (``herald:``) type only by a pattern that begins with ``herald:`` (so ``*``
  never does);
- its scope, if any, is the event's project (and job);
- its webhook is enabled, and a webhook owned by a project hears only that project's events.

``service.catalog.pattern_matches`` is the same rule in Python (validation, expansion, the
catalog pages); ``tests/core/test_matching_rule.py`` checks that both agree over the catalog.

The fragments hold only constants: every value stays a parameter of the statement using them.
"""

from __future__ import annotations

from service.catalog import OPERATIONAL_PREFIX, pattern_to_like

OPERATIONAL_TYPE_LIKE = pattern_to_like(OPERATIONAL_PREFIX) + "%"
"""The ``LIKE`` pattern of every operational type (and of every pattern that may reach one)."""


def reaches_type_sql(pattern: str, event_type: str) -> str:
    """SQL that is true unless ``event_type`` is operational and ``pattern`` does not begin with
    ``herald:``; both arguments are SQL expressions (columns, casts of parameters)."""
    return f"({event_type} NOT LIKE '{OPERATIONAL_TYPE_LIKE}' OR {pattern} LIKE '{OPERATIONAL_TYPE_LIKE}')"


def matched_ctes(source: str) -> str:
    """The CTEs ``candidates`` and ``matched`` (``event_uuid``, ``subscriber_uuid``: one row per
    event and enabled webhook it reaches) over the CTE named ``source``, whose rows are events with
    the columns ``uuid``, ``type``, ``project_uuid`` and ``job_uuid``.

    To be placed in a ``WITH`` list after ``source`` (no leading ``WITH``, no trailing comma).
    """
    # One row per (event, subscriber) however many of the subscriber's subscriptions match.
    # Three index-friendly branches instead of one OR-join (which compares every event with every
    # subscription): exact types by ix_subscriptions_exact_event_type, unscoped patterns, and
    # project-scoped patterns by ix_subscriptions_wildcard_project. A job scope is checked last.
    # An exact name equals an operational type only when it begins with herald:, so only the
    # wildcard branches need the herald: rule.
    reaches = reaches_type_sql("s.event_type", "f.type")
    return f"""
candidates AS (
    SELECT f.uuid AS event_uuid, s.subscriber_uuid, s.job_uuid, f.job_uuid AS event_job_uuid,
           f.project_uuid AS event_project_uuid
    FROM {source} f
    JOIN subscriptions s ON s.event_type = f.type AND NOT s.has_wildcard
     AND (s.project_uuid IS NULL OR s.project_uuid = f.project_uuid)
    UNION ALL
    SELECT f.uuid, s.subscriber_uuid, NULL, NULL, f.project_uuid
    FROM {source} f
    JOIN subscriptions s
      ON s.has_wildcard AND s.project_uuid IS NULL AND f.type LIKE s.like_pattern AND {reaches}
    UNION ALL
    SELECT f.uuid, s.subscriber_uuid, s.job_uuid, f.job_uuid, f.project_uuid
    FROM {source} f
    JOIN subscriptions s
      ON s.has_wildcard AND s.project_uuid = f.project_uuid AND f.type LIKE s.like_pattern AND {reaches}
),
matched AS (
    SELECT DISTINCT c.event_uuid, c.subscriber_uuid
    FROM candidates c
    JOIN subscribers w ON w.uuid = c.subscriber_uuid AND w.kind = 'webhook' AND w.enabled
    -- An owned webhook's subscriptions are all scoped to its project; this holds it there anyway.
    WHERE (c.job_uuid IS NULL OR c.job_uuid = c.event_job_uuid)
      AND (w.project_uuid IS NULL OR w.project_uuid = c.event_project_uuid)
)"""  # noqa: S608  (constant fragments: a CTE name given by the code, no input)
