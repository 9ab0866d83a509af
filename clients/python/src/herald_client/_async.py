"""``AsyncHerald``, the asyncio client: the same methods as ``Herald``, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from herald_client import _operations as ops
from herald_client._core import Call, ClientCore, Retry, next_cursor
from herald_client._errors import HeraldError
from herald_client._models import (
    Accepted,
    ContentType,
    Delivery,
    DeliveryStatus,
    EventDetail,
    EventType,
    Format,
    Webhook,
)
from herald_client._operations import Id, PageCalls, SubscriptionLike
from herald_client._retry import RetryPolicy

T = TypeVar("T")
_Self = TypeVar("_Self", bound="AsyncHerald")


class AsyncHerald:
    """An asyncio client for Herald's HTTP API, with the methods of :class:`Herald`.

    ::

        async with AsyncHerald("http://127.0.0.1:8000", api_key="...") as herald:
            accepted = await herald.send_event({"type": "project:created", "project": {...}})
            async for delivery in herald.deliveries(status="failed"):
                ...

    Retries work as in :class:`Herald`. Pass ``http_client`` to bring your own
    ``httpx.AsyncClient`` (you then close it yourself), and ``sleep`` to replace
    ``asyncio.sleep`` between retries (tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        policy = RetryPolicy(max_retries=max_retries)
        self._core = ClientCore(base_url, api_key, timeout=timeout, policy=policy)
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        self._owns_http = http_client is None
        self._sleep = sleep

    @property
    def base_url(self) -> str:
        return self._core.base_url

    def __repr__(self) -> str:
        return self._core.describe(type(self))

    async def close(self) -> None:
        """Close the connections (not those of an ``http_client`` you passed in)."""
        if self._owns_http:
            await self._http.aclose()

    aclose = close

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self, call: Call[T]) -> T:
        retry = 0
        while True:
            request = self._core.request(self._http, call)
            outcome: T | Retry
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                outcome = self._core.on_error(call, retry, exc)
            else:
                outcome = self._core.on_response(call, retry, response)
            if not isinstance(outcome, Retry):
                return outcome
            await self._sleep(outcome.delay_s)
            retry += 1

    async def _walk(self, pages: PageCalls[T]) -> AsyncIterator[T]:
        cursor: str | None = None
        while True:
            page = await self._run(pages(cursor))
            for item in page.items:
                yield item
            cursor = next_cursor(cursor, page.next_cursor)
            if cursor is None:
                return

    # Events

    async def send_event(self, body: Mapping[str, Any]) -> Accepted:
        """Record one event (``POST /api/v1/events``).

        A body without ``uuid`` is given one before the first try (your mapping is not
        changed), so a retry is answered as a replay of the original, never recorded twice.
        ``UUID`` and ``datetime`` values are sent as strings.
        """
        return await self._run(ops.send_event(body))

    async def send_events(self, bodies: Iterable[Mapping[str, Any]]) -> list[Accepted]:
        """Record many events, in order, in transactions of at most 1000 events each.

        Every body without ``uuid`` gets one first. If a chunk fails, the earlier ones stay
        recorded: the error's ``accepted`` lists them, and indices in its ``detail`` count
        from the start of ``bodies``.
        """
        accepted: list[Accepted] = []
        for chunk in ops.send_events(bodies):
            try:
                recorded = await self._run(chunk.call)
            except HeraldError as exc:
                chunk.annotate(exc, accepted)
                raise
            accepted.extend(recorded)
        return accepted

    async def event_types(self) -> list[EventType]:
        """Every event type Herald knows (``GET /api/v1/event-types``)."""
        return await self._run(ops.event_types())

    def events(
        self,
        *,
        type: str | None = None,
        project_uuid: Id | None = None,
        job_uuid: Id | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = ops.DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[dict[str, Any]]:
        """The notification feed, newest first, every page. ``type`` is a name or ``*`` pattern;
        ``since`` is inclusive, ``until`` exclusive."""
        pages = ops.events(
            type=type,
            project_uuid=project_uuid,
            job_uuid=job_uuid,
            since=since,
            until=until,
            page_size=page_size,
        )
        return self._walk(pages)

    async def get_event(self, uuid: Id) -> EventDetail:
        """One event's notification payload and its deliveries."""
        return await self._run(ops.get_event(uuid))

    # Webhooks

    async def create_webhook(
        self,
        name: str,
        url: str,
        *,
        subscriptions: Iterable[SubscriptionLike] = (),
        secret: str | None = None,
        content_type: ContentType | None = None,
        format: Format | None = None,
        verify_ssl: bool | None = None,
        enabled: bool | None = None,
        **fields: Any,
    ) -> Webhook:
        """Create a webhook subscriber; the answer holds its ``secret`` (the only time it is shown).

        ``subscriptions`` items are event types or patterns (``"project:*:failed"``),
        :class:`Subscription` objects or dicts. Options left as ``None`` take Herald's default;
        ``fields`` passes any other field of the API through as given.
        """
        options = {
            "secret": secret,
            "content_type": content_type,
            "format": format,
            "verify_ssl": verify_ssl,
            "enabled": enabled,
        }
        return await self._run(ops.create_webhook(name, url, subscriptions, options | fields))

    def webhooks(self, *, page_size: int = ops.DEFAULT_PAGE_SIZE) -> AsyncIterator[Webhook]:
        """Every webhook subscriber, newest first."""
        return self._walk(ops.webhooks(page_size=page_size))

    async def get_webhook(self, uuid: Id) -> Webhook:
        """One webhook subscriber (without its secret)."""
        return await self._run(ops.get_webhook(uuid))

    async def update_webhook(self, uuid: Id, **changes: Any) -> Webhook:
        """Change the given fields (``enabled=True`` re-enables; ``subscriptions`` replaces the set)."""
        return await self._run(ops.update_webhook(uuid, changes))

    async def delete_webhook(self, uuid: Id) -> None:
        """Delete a webhook; its pending deliveries are cancelled."""
        await self._run(ops.delete_webhook(uuid))

    async def rotate_secret(self, uuid: Id) -> str:
        """Give a webhook a new secret and return it; the old one keeps signing for a grace period."""
        return await self._run(ops.rotate_secret(uuid))

    # Deliveries

    def deliveries(
        self,
        *,
        subscriber_uuid: Id | None = None,
        event_uuid: Id | None = None,
        status: DeliveryStatus | None = None,
        page_size: int = ops.DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[Delivery]:
        """Every delivery matching the filters, newest first, walking all pages as you iterate."""
        pages = ops.deliveries(
            subscriber_uuid=subscriber_uuid, event_uuid=event_uuid, status=status, page_size=page_size
        )
        return self._walk(pages)

    async def get_delivery(self, uuid: Id) -> Delivery:
        """One delivery with its ``attempts``."""
        return await self._run(ops.get_delivery(uuid))

    async def redeliver(self, uuid: Id) -> Delivery:
        """Make a delivery due now (its attempt count continues)."""
        return await self._run(ops.redeliver(uuid))
