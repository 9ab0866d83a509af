"""Subscription sets: validating them against the catalog, storing them, and asking who matches.

The matching rule is ``service.core.matching``'s, the one applied when an event is recorded (in
SQL, in the event's transaction): a subscription matches an event when its pattern matches
the event's type and its scope, if any, is the event's project (and job). ``subscribed_to``
asks the same question without an event.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from service.catalog import (
    CATALOG,
    check_scope,
    expand_pattern,
    is_operational,
    optional_filters_of,
)
from service.core.custom_types import custom_type_names
from service.core.matching import matched_ctes
from service.errors import InvalidInput
from service.models.subscriptions import Subscription
from service.schemas.subscriptions import SubscriptionIn

Loc = tuple[str | int, ...]

_STAR_RUN = re.compile(r"\*{2,}")


@dataclass(frozen=True)
class SubscriptionSpec:
    """A validated subscription: pattern as written, scope as given."""

    event_type: str
    project_uuid: UUID | None = None
    job_uuid: UUID | None = None


def _error(loc: Loc, msg: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": "value_error"}


def _scope_error(item: SubscriptionIn, loc: Loc, custom: Collection[str]) -> dict[str, Any] | None:
    # "**" means "*"; collapsing runs keeps the catalog's backtracking matcher fast whatever
    # the input (the pattern itself is stored as written).
    pattern = _STAR_RUN.sub("*", item.event_type)
    has_project, has_job = item.project_uuid is not None, item.job_uuid is not None
    steps: list[tuple[bool, bool, str]] = [(False, False, "event_type")]
    if has_job and not has_project:
        steps.append((False, True, "job_uuid"))
    if has_project:
        steps.append((True, False, "project_uuid"))
        if has_job:
            steps.append((True, True, "job_uuid"))
    # The first failing step names the field to blame: the pattern, then the project, then the job.
    for project, job, field in steps:
        problem = check_scope(pattern, project, job, custom)
        if problem is not None:
            return _error((*loc, field), problem)
    return None


_PROJECT_SCOPE = ("project_uuid",)


def _owned_error(
    item: SubscriptionIn, owner: UUID, loc: Loc, custom: Collection[str]
) -> dict[str, Any] | None:
    """Why a subscription cannot belong to a webhook ``owner`` owns (its scope is ``owner``)."""
    if item.project_uuid is not None and item.project_uuid != owner:
        return _error(
            (*loc, "project_uuid"), f"this webhook is owned by project {owner}: scope it to that one"
        )
    matched = expand_pattern(_STAR_RUN.sub("*", item.event_type), custom)
    if matched and not any(_PROJECT_SCOPE in optional_filters_of(name) for name in matched):
        return _error(
            (*loc, "event_type"),
            "a webhook owned by a project hears only of events that have a project; "
            f"{item.event_type[:120]!r} matches only event types without one",
        )
    return None


def _owned_scope_error(item: SubscriptionIn, loc: Loc, custom: Collection[str]) -> dict[str, Any] | None:
    # On an owned webhook a pattern stands for its types that have a project (``*`` is every such
    # type): the scope must suit each of those, and the types without a project never match.
    has_job = item.job_uuid is not None
    scope = ("project_uuid", "job_uuid") if has_job else _PROJECT_SCOPE
    for name in expand_pattern(_STAR_RUN.sub("*", item.event_type), custom):
        filters = optional_filters_of(name)
        if _PROJECT_SCOPE in filters and scope not in filters:
            return _error(
                (*loc, "job_uuid"),
                f"event type {name!r} (matched by {item.event_type[:120]!r}) cannot be scoped to a job",
            )
    return None


def _owned_item_error(
    item: SubscriptionIn, owner: UUID, loc: Loc, custom: Collection[str]
) -> dict[str, Any] | None:
    unscoped = item.model_copy(update={"project_uuid": None, "job_uuid": None})
    return (
        _owned_error(item, owner, loc, custom)
        or _scope_error(unscoped, loc, custom)
        or _owned_scope_error(item, loc, custom)
    )


def validate_subscriptions(
    items: Sequence[SubscriptionIn],
    loc: Loc = ("body", "subscriptions"),
    *,
    owner: UUID | None = None,
    custom: Collection[str] = (),
) -> list[SubscriptionSpec]:
    """Check every subscription against the catalog and the ``custom`` type names, and merge
    duplicates (first one wins).

    Raises ``InvalidInput`` naming each bad item's field: a pattern that matches no catalog or
    custom type, a ``job_uuid`` without ``project_uuid``, a scope a matched type does not allow. For a
    webhook ``owner`` owns, every subscription is scoped to ``owner`` (filled in when left out;
    another project, or a pattern matching only types without a project, is refused).
    """
    errors: list[dict[str, Any]] = []
    specs: dict[SubscriptionSpec, None] = {}
    for index, item in enumerate(items):
        scoped = item if owner is None else item.model_copy(update={"project_uuid": owner})
        error = (
            _scope_error(item, (*loc, index), custom)
            if owner is None
            else _owned_item_error(item, owner, (*loc, index), custom)
        )
        if error is not None:
            errors.append(error)
            continue
        specs.setdefault(SubscriptionSpec(scoped.event_type, scoped.project_uuid, scoped.job_uuid))
    if errors:
        raise InvalidInput(errors)
    return list(specs)


async def replace_subscriptions(
    session: AsyncSession, subscriber_uuid: UUID, specs: Iterable[SubscriptionSpec]
) -> list[Subscription]:
    """Make ``specs`` the subscriber's whole subscription set; never commits."""
    await session.execute(delete(Subscription).where(col(Subscription.subscriber_uuid) == subscriber_uuid))
    rows = [
        Subscription.scoped(subscriber_uuid, uuid4(), spec.event_type, spec.project_uuid, spec.job_uuid)
        for spec in specs
    ]
    session.add_all(rows)
    await session.flush()
    return sorted(rows, key=_order)


def _order(subscription: Subscription) -> tuple[str, str, str]:
    return (subscription.event_type, str(subscription.project_uuid or ""), str(subscription.job_uuid or ""))


async def subscriptions_of(
    session: AsyncSession, subscriber_uuids: Sequence[UUID]
) -> dict[UUID, list[Subscription]]:
    """The subscriptions of each given subscriber, in a stable order (pattern, then scope)."""
    found: dict[UUID, list[Subscription]] = {uuid: [] for uuid in subscriber_uuids}
    if not subscriber_uuids:
        return found
    rows = await session.execute(
        select(Subscription).where(col(Subscription.subscriber_uuid).in_(list(subscriber_uuids)))
    )
    for subscription in rows.scalars():
        found[subscription.subscriber_uuid].append(subscription)
    for subscriptions in found.values():
        subscriptions.sort(key=_order)
    return found


# The webhooks reached by one event that is not recorded (no uuid), by the shared rule.
_SUBSCRIBED_TO_SQL = text(
    f"""
WITH probe AS (
    SELECT CAST(NULL AS uuid) AS uuid, CAST(:event_type AS text) AS type,
           CAST(:project_uuid AS uuid) AS project_uuid, CAST(:job_uuid AS uuid) AS job_uuid
),{matched_ctes("probe")}
SELECT w.uuid FROM subscribers w
WHERE w.uuid IN (SELECT subscriber_uuid FROM matched)
ORDER BY w.created_at DESC, w.uuid DESC
"""  # noqa: S608  (constant fragments; every value is a parameter)
)


def check_event_type(
    event_type: str, custom: Collection[str] = (), loc: Loc = ("path", "event_type")
) -> None:
    """Refuse (``InvalidInput``) anything but a catalog or operational event type or one of the
    ``custom`` ones."""
    if event_type not in CATALOG and not is_operational(event_type) and event_type not in custom:
        shown = event_type if len(event_type) <= 120 else event_type[:120] + "…"
        raise InvalidInput([_error(loc, f"{shown!r} is not a catalog, operational or custom event type")])


async def subscribed_to(
    session: AsyncSession, event_type: str, project_uuid: UUID | None, job_uuid: UUID | None
) -> list[UUID]:
    """The enabled webhooks an event of ``event_type`` in this project/job would be delivered to.

    A scoped subscription counts only when the scope is given and equal: a project scope
    needs ``project_uuid``, a job scope both ``project_uuid`` and ``job_uuid``.
    """
    known = event_type in CATALOG or is_operational(event_type)
    check_event_type(event_type, () if known else await custom_type_names(session))
    if job_uuid is not None and project_uuid is None:
        raise InvalidInput([_error(("query", "job_uuid"), "a job_uuid needs a project_uuid too")])
    params = {"event_type": event_type, "project_uuid": project_uuid, "job_uuid": job_uuid}
    return [row.uuid for row in await session.execute(_SUBSCRIBED_TO_SQL, params)]
