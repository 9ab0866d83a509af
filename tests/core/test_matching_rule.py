"""The SQL matching rule (``service.core.matching``) and the Python one (``service.catalog.
pattern_matches`` with the scope rules) agree: every catalog, operational and a few custom type
names, in and out of scopes, against patterns and scopes that cover each part of the rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID, uuid4

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from service.catalog import CATALOG, OPERATIONAL, pattern_matches
from service.core.matching import matched_ctes
from service.core.subscriptions import subscribed_to
from service.db import create_engine, session_factory

CUSTOM_TYPES = ["acme.deploy:done", "acme.deploy:failed", "billing_invoice"]
TYPES = [*CATALOG, *OPERATIONAL, *CUSTOM_TYPES]
PATTERNS = [
    "*",
    "herald:*",
    "herald:*:failed",
    "project:*:failed",
    "*:failed",
    "project:*",
    "project:**:succeeded",
    "*pipeline*",
    "project:created",
    "herald:delivery:failed",
    "acme.deploy:*",
    "billing_invoice",
    # LIKE's own wildcards are literal in a pattern: these match no type.
    "project:_reated",
    "project:%",
    "billing%invoice",
]
P, Q, J, K = (UUID(int=n) for n in (1, 2, 3, 4))
SUBSCRIPTION_SCOPES: list[tuple[UUID | None, UUID | None]] = [(None, None), (P, None), (P, J), (Q, None)]
EVENT_SCOPES: list[tuple[UUID | None, UUID | None]] = [(None, None), (P, None), (P, J), (P, K), (Q, None)]


@dataclass(frozen=True)
class Hook:
    uuid: UUID
    pattern: str
    project: UUID | None  # the subscription's scope
    job: UUID | None
    owner: UUID | None = None  # the project owning the webhook
    enabled: bool = True

    def reaches(self, event_type: str, project: UUID | None, job: UUID | None) -> bool:
        """The rule in Python: the catalog's pattern matcher, then scopes and owner."""
        return (
            self.enabled
            and pattern_matches(self.pattern, event_type)
            and self.project in (None, project)
            and self.job in (None, job)
            and self.owner in (None, project)
        )


def _hooks() -> list[Hook]:
    hooks = [Hook(uuid4(), p, project, job) for p in PATTERNS for project, job in SUBSCRIPTION_SCOPES]
    hooks += [Hook(uuid4(), p, P, None, owner=P) for p in ("*", "herald:*", "acme.deploy:*")]
    hooks += [Hook(uuid4(), "*", None, None, enabled=False)]
    return hooks


async def _store(db: asyncpg.Connection, hooks: list[Hook]) -> None:
    await db.executemany(
        "INSERT INTO subscribers (uuid, kind, name, url, secret, enabled, project_uuid)"
        " VALUES ($1, 'webhook', 'w', 'http://127.0.0.1:9/', 'x', $2, $3)",
        [(h.uuid, h.enabled, h.owner) for h in hooks],
    )
    await db.executemany(
        "INSERT INTO subscriptions (uuid, subscriber_uuid, kind, event_type, project_uuid, job_uuid)"
        " VALUES (gen_random_uuid(), $1, $2, $3, $4, $5)",
        [
            (
                h.uuid,
                "global" if h.project is None else "job" if h.job else "project",
                h.pattern,
                h.project,
                h.job,
            )
            for h in hooks
        ],
    )


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def test_sql_rule_reaches_exactly_the_webhooks_the_python_rule_names(db: asyncpg.Connection) -> None:
    hooks = _hooks()
    await _store(db, hooks)
    probes = [(uuid4(), t, project, job) for t in TYPES for project, job in EVENT_SCOPES]
    rows = await db.fetch(
        f"""
WITH probe AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[])
      AS p(uuid, type, project_uuid, job_uuid)
),{matched_ctes("probe")}
SELECT event_uuid, subscriber_uuid FROM matched
""",  # noqa: S608  (a constant fragment)
        *(list(column) for column in zip(*probes, strict=True)),
    )
    found = {(row["event_uuid"], row["subscriber_uuid"]) for row in rows}
    expected = {
        (uuid, hook.uuid)
        for uuid, t, project, job in probes
        for hook in hooks
        if hook.reaches(t, project, job)
    }
    assert found == expected
    # The comparison means something: every kind of type is reached by some pattern.
    reached = {t for uuid, t, *_ in probes if any(uuid == event for event, _ in found)}
    assert reached == set(TYPES)


async def test_subscribed_to_applies_the_same_rule(db: asyncpg.Connection, session: AsyncSession) -> None:
    hooks = _hooks()
    await _store(db, hooks)
    for event_type in [*CATALOG, *OPERATIONAL]:
        for project, job in EVENT_SCOPES:
            found = set(await subscribed_to(session, event_type, project, job))
            assert found == {h.uuid for h in hooks if h.reaches(event_type, project, job)}, (
                event_type,
                project,
            )
