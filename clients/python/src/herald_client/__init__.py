"""herald-client: the Python client for Herald, the event and webhook-delivery hub.

Producers send events with :class:`Herald` (or :class:`AsyncHerald`); receivers check the
webhooks Herald sends with :func:`verify_webhook`.
"""

from herald_client._async import AsyncHerald
from herald_client._errors import (
    AuthError,
    ConflictError,
    HeraldError,
    NotFoundError,
    UnavailableError,
    ValidationError,
    WebhookVerificationError,
)
from herald_client._models import (
    Accepted,
    Attempt,
    Delivery,
    DeliveryStatus,
    EventDetail,
    EventType,
    Page,
    Subscription,
    Webhook,
)
from herald_client._sync import Herald
from herald_client._version import __version__
from herald_client._webhooks import verify_webhook

__all__ = [
    "Accepted",
    "AsyncHerald",
    "Attempt",
    "AuthError",
    "ConflictError",
    "Delivery",
    "DeliveryStatus",
    "EventDetail",
    "EventType",
    "Herald",
    "HeraldError",
    "NotFoundError",
    "Page",
    "Subscription",
    "UnavailableError",
    "ValidationError",
    "Webhook",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]
