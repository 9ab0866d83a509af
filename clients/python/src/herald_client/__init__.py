"""herald-client: the Python client for Herald, the event and webhook-delivery hub.

Producers send events with :class:`Herald` (or :class:`AsyncHerald`); receivers check the
webhooks Herald sends with :func:`verify_webhook`.
"""

from types import FunctionType

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
    ContentType,
    Delivery,
    DeliveryStatus,
    EventDetail,
    EventType,
    Format,
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
    "ContentType",
    "Delivery",
    "DeliveryStatus",
    "EventDetail",
    "EventType",
    "Format",
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

# Tracebacks and reprs name the public module, not the private one a class lives in.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type | FunctionType):
        _obj.__module__ = __name__
