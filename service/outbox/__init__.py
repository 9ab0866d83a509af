"""The outbox: every transition of a delivery, as named operations with their SQL.

A delivery is created ``pending`` with its event (``service.core.events``) and then only changes
through the operations below; their statements are in :mod:`service.outbox.queries`, the status
and reason names in :mod:`service.outbox.states`. ``docs/delivery.md`` draws the state machine.

- :mod:`~service.outbox.claims`: claim (``pending`` → ``delivering`` under a lease).
- :mod:`~service.outbox.completions`: complete an attempt (delivered, rescheduled, failed),
  with its attempt row, the webhook's failure clock and its circuit
  (:mod:`~service.outbox.circuits`).
- :mod:`~service.outbox.requeue`: back to ``pending``: lease expiry, hand back on stop,
  redeliver, recover.
- :mod:`~service.outbox.subscriber_effects`: a subscriber disabled or deleted, telemetry
  turned off, orphans left by either.

This package sits below core, delivery and api, which call it; it imports only
``service.common``, ``service.models``, ``service.schemas``, ``service.errors`` and
``service.config``.
"""

from service.outbox.circuits import CircuitChange, CircuitPolicy, close_circuit
from service.outbox.claims import (
    Claim,
    Leased,
    claim_kind,
    claim_webhooks,
    publish_in_flight,
    sweep_expired_controls,
    withdraw_in_flight,
)
from service.outbox.completions import Completed, FailingWebhook, Finished, clock_updates, complete
from service.outbox.requeue import hand_back, recover, redeliver, release_expired
from service.outbox.states import DeliveryStatus, Reason
from service.outbox.subscriber_effects import (
    cancel_telemetry,
    cancel_unfinished,
    fail_pending,
    settle_orphans,
    unpark,
)

__all__ = [
    "CircuitChange",
    "CircuitPolicy",
    "Claim",
    "Completed",
    "DeliveryStatus",
    "FailingWebhook",
    "Finished",
    "Leased",
    "Reason",
    "cancel_telemetry",
    "cancel_unfinished",
    "claim_kind",
    "claim_webhooks",
    "clock_updates",
    "close_circuit",
    "complete",
    "fail_pending",
    "hand_back",
    "publish_in_flight",
    "recover",
    "redeliver",
    "release_expired",
    "settle_orphans",
    "sweep_expired_controls",
    "unpark",
    "withdraw_in_flight",
]
