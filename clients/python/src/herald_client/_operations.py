"""Herald's API, one function per operation, each returning the :class:`Call` to make.

Both clients are thin wrappers over these: everything about paths, bodies, query
parameters and answers is decided here, once.
"""

from __future__ import annotations

import re
import uuid as uuid_module
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx

from herald_client._core import Call, encode_json
from herald_client._errors import HeraldError
from herald_client._models import (
    Accepted,
    Delivery,
    DeliveryStatus,
    EventDetail,
    EventType,
    Page,
    Subscription,
    Webhook,
)

T = TypeVar("T")

EVENTS_PER_BATCH = 1000
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100

Id = str | UUID
SubscriptionLike = str | Subscription | Mapping[str, Any]
PageCalls = Callable[[str | None], Call[Page[T]]]


def _path(template: str, *ids: Id) -> str:
    return template.format(*(quote(str(value), safe="") for value in ids))


def _query(**values: Any) -> dict[str, str]:
    """Query parameters, leaving out the ``None`` ones."""
    params: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        params[name] = value.isoformat() if isinstance(value, datetime) else str(value)
    return params


def _page_size(value: int) -> int:
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {value}")
    return value


def _pages(path: str, item: Callable[[Mapping[str, Any]], T], params: dict[str, str]) -> PageCalls[T]:
    def parse(response: httpx.Response) -> Page[T]:
        body = response.json()
        return Page(items=[item(raw) for raw in body["items"]], next_cursor=body.get("next_cursor"))

    def call(cursor: str | None) -> Call[Page[T]]:
        return Call("GET", path, parse, params={**params, **({"cursor": cursor} if cursor else {})})

    return call


# Events


def with_uuid(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an event body that surely has a ``uuid``: a retried send is then a replay."""
    if not isinstance(body, Mapping):
        raise TypeError(f"an event body is a mapping, got {type(body).__name__}")
    event = dict(body)
    if event.get("uuid") is None:
        event["uuid"] = str(uuid_module.uuid4())
    return event


def send_event(body: Mapping[str, Any]) -> Call[Accepted]:
    def parse(response: httpx.Response) -> Accepted:
        return Accepted.from_json(response.json(), replayed=response.status_code == 200)

    return Call("POST", "/api/v1/events", parse, body=encode_json(with_uuid(body)))


_BATCH_INDEX = re.compile(r"\bevents(\[|\.)(\d+)")


@dataclass(frozen=True)
class Chunk:
    """Up to 1000 events sent in one transaction; ``offset`` is the index of the first."""

    offset: int
    call: Call[list[Accepted]]

    def annotate(self, error: HeraldError, accepted: list[Accepted]) -> None:
        """Make ``error`` speak of the caller's indices (not the chunk's) and tell what was
        recorded before it."""
        error.accepted = tuple(accepted)
        if self.offset == 0:
            return

        def shift(match: re.Match[str]) -> str:
            return f"events{match.group(1)}{int(match.group(2)) + self.offset}"

        error.message = _BATCH_INDEX.sub(shift, error.message)
        error.args = (error.message, *error.args[1:])
        if isinstance(error.detail, str):
            error.detail = _BATCH_INDEX.sub(shift, error.detail)
        elif isinstance(error.detail, list):
            for item in error.detail:
                loc = item.get("loc") if isinstance(item, dict) else None
                if isinstance(loc, list) and loc[:2] == ["body", "events"] and len(loc) > 2:
                    loc[2] = loc[2] + self.offset if isinstance(loc[2], int) else loc[2]


def _parse_batch(response: httpx.Response) -> list[Accepted]:
    return [Accepted.from_json(item) for item in response.json()["items"]]


def send_events(bodies: Iterable[Mapping[str, Any]]) -> list[Chunk]:
    """Every body gets its ``uuid`` now, before any chunk is sent."""
    events = [with_uuid(body) for body in bodies]
    return [
        Chunk(
            offset=start,
            call=Call(
                "POST",
                "/api/v1/events/batch",
                _parse_batch,
                body=encode_json({"events": events[start : start + EVENTS_PER_BATCH]}),
            ),
        )
        for start in range(0, len(events), EVENTS_PER_BATCH)
    ]


def event_types() -> Call[list[EventType]]:
    def parse(response: httpx.Response) -> list[EventType]:
        return [EventType.from_json(item) for item in response.json()["items"]]

    return Call("GET", "/api/v1/event-types", parse)


def events(
    *,
    type: str | None,
    project_uuid: Id | None,
    job_uuid: Id | None,
    since: datetime | None,
    until: datetime | None,
    page_size: int,
) -> PageCalls[dict[str, Any]]:
    params = _query(
        type=type,
        project_uuid=project_uuid,
        job_uuid=job_uuid,
        since=since,
        until=until,
        limit=_page_size(page_size),
    )
    return _pages("/api/v1/events", dict, params)


def get_event(uuid: Id) -> Call[EventDetail]:
    return Call("GET", _path("/api/v1/events/{}", uuid), lambda r: EventDetail.from_json(r.json()))


# Webhooks


def _subscription(spec: SubscriptionLike) -> Mapping[str, Any]:
    if isinstance(spec, str):
        return {"event_type": spec}
    if isinstance(spec, Subscription):
        return spec.to_json()
    return spec


def _webhook(response: httpx.Response) -> Webhook:
    return Webhook.from_json(response.json())


def create_webhook(
    name: str, url: str, subscriptions: Iterable[SubscriptionLike], fields: Mapping[str, Any]
) -> Call[Webhook]:
    """``fields`` holds the optional ones; a ``None`` there is left out (Herald's default)."""
    body: dict[str, Any] = {
        "name": name,
        "url": url,
        "subscriptions": [_subscription(s) for s in subscriptions],
    }
    body.update({key: value for key, value in fields.items() if value is not None})
    # Creating twice makes two webhooks: retried only when Herald surely did not act.
    return Call("POST", "/api/v1/subscribers/webhooks", _webhook, body=encode_json(body), idempotent=False)


def webhooks(*, page_size: int) -> PageCalls[Webhook]:
    return _pages(
        "/api/v1/subscribers", Webhook.from_json, _query(type="webhook", limit=_page_size(page_size))
    )


def get_webhook(uuid: Id) -> Call[Webhook]:
    return Call("GET", _path("/api/v1/subscribers/{}", uuid), _webhook)


def update_webhook(uuid: Id, changes: Mapping[str, Any]) -> Call[Webhook]:
    body = dict(changes)
    if "subscriptions" in body:
        body["subscriptions"] = [_subscription(s) for s in body["subscriptions"]]
    # Giving the same secret twice would push the previous one out of its grace period.
    idempotent = "secret" not in body
    path = _path("/api/v1/subscribers/{}", uuid)
    return Call("PATCH", path, _webhook, body=encode_json(body), idempotent=idempotent)


def delete_webhook(uuid: Id) -> Call[None]:
    return Call("DELETE", _path("/api/v1/subscribers/{}", uuid), lambda _: None)


def rotate_secret(uuid: Id) -> Call[str]:
    path = _path("/api/v1/subscribers/{}/rotate-secret", uuid)
    return Call("POST", path, lambda r: str(r.json()["secret"]), idempotent=False)


# Deliveries


def _delivery(response: httpx.Response) -> Delivery:
    return Delivery.from_json(response.json())


def deliveries(
    *,
    subscriber_uuid: Id | None,
    event_uuid: Id | None,
    status: DeliveryStatus | None,
    page_size: int,
) -> PageCalls[Delivery]:
    params = _query(
        subscriber_uuid=subscriber_uuid, event_uuid=event_uuid, status=status, limit=_page_size(page_size)
    )
    return _pages("/api/v1/deliveries", Delivery.from_json, params)


def get_delivery(uuid: Id) -> Call[Delivery]:
    return Call("GET", _path("/api/v1/deliveries/{}", uuid), _delivery)


def redeliver(uuid: Id) -> Call[Delivery]:
    path = _path("/api/v1/deliveries/{}/redeliver", uuid)
    return Call("POST", path, _delivery, idempotent=False)
