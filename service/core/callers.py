"""Who is asking: the caller every use case takes (``service.core.webhooks``), and the scope of
what it may see and change.

An admin (an admin API key, the console) sees everything (``ADMIN``). A caller bound to one
project is a project's portal session: its events only, the webhooks it owns only (and their
deliveries), and with ``read_only`` no change at all. The use cases and the page reads ask the
caller first, so neither a route nor a page decides who may see what: anything outside the scope
is ``NotFound`` (404), a change refused to a read-only caller ``Forbidden`` (403). A URL a portal
caller sets or tests is held to the portal's destination policy (``destination_policy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from uuid import UUID

from service.common.destinations import ALLOW_PRIVATE_SETTING, PORTAL_ALLOW_PRIVATE_SETTING
from service.config import Settings
from service.core.deliveries import DeliveryFilter
from service.core.feed import EventFilter
from service.errors import HeraldError, NotFound
from service.models.subscribers import Subscriber
from service.schemas.subscribers import WebhookCreate


class Forbidden(HeraldError):
    status_code = 403


@dataclass(frozen=True)
class DestinationPolicy:
    """Whether a URL may be a private address, and the setting that says so (named in refusals)."""

    allow_private: bool
    setting: str


@dataclass(frozen=True)
class Caller:
    """``project_uuid`` ``None``: an admin, everything. ``read_only``: nothing may change."""

    project_uuid: UUID | None = None
    read_only: bool = False

    @property
    def is_admin(self) -> bool:
        return self.project_uuid is None

    @property
    def in_portal(self) -> bool:
        """A project's portal session: the URLs it sets are held to the portal's policy."""
        return not self.is_admin

    def destination_policy(self, settings: Settings) -> DestinationPolicy:
        """The destination policy of a URL this caller sets or tests.

        A tenant must not make Herald probe its own network, so the portal has a setting of its
        own (off unless a development machine turns it on) whatever the admins' is.
        """
        if self.in_portal:
            return DestinationPolicy(settings.portal_allow_private_destinations, PORTAL_ALLOW_PRIVATE_SETTING)
        return DestinationPolicy(settings.allow_private_destinations, ALLOW_PRIVATE_SETTING)

    def require_write(self) -> None:
        """Refuse (403) any change under a read-only scope."""
        if self.read_only:
            raise Forbidden("this session may only look")

    def sees_webhook(self, subscriber: Subscriber) -> bool:
        """Admins see every webhook; a project scope only the webhooks its project owns."""
        if subscriber.kind != "webhook":
            return False
        return self.is_admin or subscriber.project_uuid == self.project_uuid

    def owned(self, body: WebhookCreate) -> WebhookCreate:
        """A new webhook as this scope may create it: under a project scope, owned by the project."""
        if self.is_admin:
            return body
        return body.model_copy(update={"project_uuid": self.project_uuid})

    def webhook(self, subscriber: Subscriber) -> Subscriber:
        """``subscriber`` when it is a webhook inside the scope, else ``NotFound``."""
        if not self.sees_webhook(subscriber):
            raise NotFound(f"webhook {subscriber.uuid} not found")
        return subscriber

    def deliveries(self, filters: DeliveryFilter, owned: Sequence[UUID]) -> DeliveryFilter:
        """``filters`` narrowed to the deliveries of the webhooks inside the scope (``owned``: the
        webhooks the scope's project owns)."""
        if self.is_admin:
            return filters
        return replace(filters, subscriber_uuids=tuple(owned))

    def events(self, filters: EventFilter) -> EventFilter | None:
        """``filters`` narrowed to the scope's project; ``None`` when they ask for another project."""
        if self.is_admin:
            return filters
        if filters.project_uuid not in (None, self.project_uuid):
            return None
        return replace(filters, project_uuid=self.project_uuid)

    def sees_event(self, project_uuid: str | None) -> bool:
        """Whether an event of ``project_uuid`` (from its payload) is inside the scope."""
        return self.is_admin or project_uuid == str(self.project_uuid)


ADMIN = Caller()
NOBODY = UUID(int=0)
"""The project of a portal page seen without a session: no project's, so nothing is in it."""
