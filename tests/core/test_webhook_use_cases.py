"""The webhook use cases (``service.core.webhooks``) apply the caller's scope themselves: a portal
caller reaches only its project's webhooks (anything else is ``NotFound``, as if absent), a
read-only one changes nothing, and a URL a portal caller sets is held to the portal's policy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from service import keyring
from service.common.secretbox import SecretBox
from service.core import webhooks
from service.core.callers import ADMIN, Caller, Forbidden
from service.db import create_engine, session_factory
from service.errors import Conflict, InvalidInput, NotFound
from service.schemas.subscribers import WebhookCreate, WebhookUpdate
from tests.support.app import make_settings

PROJECT, OTHER = UUID(int=11), UUID(int=12)
PORTAL = Caller(project_uuid=PROJECT)
LOOKING = Caller(project_uuid=PROJECT, read_only=True)
URL = "http://127.0.0.1:9/hook"


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[webhooks.Services]:
    # Admins may use private destinations (as a loopback receiver needs); the portal may not.
    settings = make_settings(database_url, portal_allow_private_destinations=False)
    engine = create_engine(database_url, pool_size=2)
    try:
        yield webhooks.Services(
            session_factory(engine), settings, SecretBox(keyring.parse_keys(keyring.new_key()))
        )
    finally:
        await engine.dispose()


def _body(**fields: Any) -> WebhookCreate:
    return WebhookCreate.model_validate({"name": "w", "url": URL, "subscriptions": ["project:*"]} | fields)


async def test_a_portal_caller_creates_webhooks_owned_by_its_project_only_at_public_urls(
    app: webhooks.Services, db: asyncpg.Connection
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await webhooks.create_webhook(app, PORTAL, _body(), None)
    assert "HERALD_PORTAL_ALLOW_PRIVATE_DESTINATIONS" in str(refused.value.errors)
    # An admin's webhook at the same URL, given to the other project.
    created = await webhooks.create_webhook(app, ADMIN, _body(project_uuid=str(OTHER)), None)
    row = await db.fetchrow(
        "SELECT project_uuid, url_from_portal FROM subscribers WHERE uuid = $1", created.subscriber.uuid
    )
    assert row is not None
    assert (row["project_uuid"], row["url_from_portal"]) == (OTHER, False)


async def test_a_portal_caller_cannot_touch_another_projects_webhook(app: webhooks.Services) -> None:
    theirs = (await webhooks.create_webhook(app, ADMIN, _body(project_uuid=str(OTHER)), None)).subscriber.uuid
    unowned = (await webhooks.create_webhook(app, ADMIN, _body(), None)).subscriber.uuid
    since = datetime(2020, 1, 1, tzinfo=UTC)
    for uuid in (theirs, unowned):
        attempts: list[Awaitable[object]] = [
            webhooks.update_webhook(app, PORTAL, uuid, WebhookUpdate(name="x"), None),
            webhooks.set_enabled(app, PORTAL, uuid, False),
            webhooks.rotate_secret(app, PORTAL, uuid),
            webhooks.recover(app, PORTAL, uuid, since, None),
            webhooks.delete_webhook(app, PORTAL, uuid),
        ]
        for attempt in attempts:
            with pytest.raises(NotFound):
                await attempt
    # Nothing changed: an admin still finds both, named as they were.
    for uuid in (theirs, unowned):
        subscriber, _ = await webhooks.update_webhook(app, ADMIN, uuid, WebhookUpdate(), None)
        assert (subscriber.name, subscriber.enabled) == ("w", True)


async def test_a_read_only_caller_changes_nothing_even_its_own(app: webhooks.Services) -> None:
    ours = (await webhooks.create_webhook(app, ADMIN, _body(project_uuid=str(PROJECT)), None)).subscriber.uuid
    with pytest.raises(Forbidden):
        await webhooks.create_webhook(app, LOOKING, _body(), None)
    with pytest.raises(Forbidden):
        await webhooks.rotate_secret(app, LOOKING, ours)
    with pytest.raises(Forbidden):
        await webhooks.redeliver(app, LOOKING, uuid4())


async def test_a_portal_caller_changes_its_own_webhook_and_its_url_becomes_a_portal_one(
    app: webhooks.Services, db: asyncpg.Connection
) -> None:
    ours = (await webhooks.create_webhook(app, ADMIN, _body(project_uuid=str(PROJECT)), None)).subscriber.uuid
    renamed, _ = await webhooks.update_webhook(app, PORTAL, ours, WebhookUpdate(name="renamed"), None)
    assert renamed.name == "renamed"
    with pytest.raises(InvalidInput):  # the admin's private URL may not be set again from the portal
        await webhooks.update_webhook(app, PORTAL, ours, WebhookUpdate(url=URL), None)
    assert await webhooks.rotate_secret(app, PORTAL, ours)
    await webhooks.set_enabled(app, PORTAL, ours, False)
    assert await db.fetchval("SELECT enabled FROM subscribers WHERE uuid = $1", ours) is False
    await webhooks.delete_webhook(app, PORTAL, ours)
    assert await db.fetchval("SELECT count(*) FROM subscribers WHERE uuid = $1", ours) == 0


async def test_the_analytics_subscriber_is_out_of_a_portal_callers_reach_and_refused_to_admins(
    app: webhooks.Services, db: asyncpg.Connection
) -> None:
    analytics = await db.fetchval("SELECT uuid FROM subscribers WHERE kind = 'analytics'")
    with pytest.raises(NotFound):
        await webhooks.rotate_secret(app, PORTAL, analytics)
    with pytest.raises(Conflict):
        await webhooks.rotate_secret(app, ADMIN, analytics)
