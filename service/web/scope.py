"""What a page may show and change: the server-side scope every page handler applies.

The console's admins see everything (``ADMIN``). A scope bound to one project is what a
project's portal will use: its events only, its own webhooks only, and with ``read_only``
no change at all. Page handlers ask the scope before every read and every action, so a page
never shows or touches what is outside it: anything outside answers 404, a change refused by
a read-only scope 403.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import UUID

from service.core.deliveries import DeliveryFilter
from service.core.feed import EventFilter
from service.errors import HeraldError, NotFound
from service.models.subscribers import Subscriber


class Forbidden(HeraldError):
    status_code = 403


@dataclass(frozen=True)
class ViewScope:
    """``project_uuid`` ``None``: everything. ``read_only``: nothing may change."""

    project_uuid: UUID | None = None
    read_only: bool = False

    @property
    def is_admin(self) -> bool:
        return self.project_uuid is None

    def require_write(self) -> None:
        """Refuse (403) any change under a read-only scope."""
        if self.read_only:
            raise Forbidden("this session may only look")

    def sees_webhook(self, subscriber: Subscriber) -> bool:
        # Webhooks owned by a project do not exist yet: a project scope sees none (fail closed).
        return self.is_admin and subscriber.kind == "webhook"

    def webhook(self, subscriber: Subscriber) -> Subscriber:
        """``subscriber`` when it is a webhook inside the scope, else ``NotFound``."""
        if not self.sees_webhook(subscriber):
            raise NotFound(f"webhook {subscriber.uuid} not found")
        return subscriber

    def deliveries(self, filters: DeliveryFilter) -> DeliveryFilter:
        """``filters`` narrowed to the deliveries of the webhooks inside the scope."""
        if self.is_admin:
            return filters
        return replace(filters, subscriber_uuids=())

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


ADMIN = ViewScope()
