"""The FastAPI application and its lifespan: database, installation identity, HTTP, dispatcher."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import __version__, keyring, migrations, outbox
from service.api import (
    analytics,
    deliveries,
    delivery_actions,
    event_types,
    events,
    health,
    metrics,
    outgoing,
    portal_links,
    subscribers,
)
from service.api.auth import ApiKeys, document_security
from service.api.forwarded import ForwardedHeaders
from service.api.limits import BodySizeLimit
from service.api.middleware import RequestContext
from service.common.secretbox import SecretBox
from service.config import Settings
from service.core.analytics import Anonymizer, log_telemetry_status
from service.core.auth_throttle import AuthThrottle, BlockRefresher
from service.core.heartbeat import Heartbeat
from service.core.retention import RetentionJob
from service.core.secrets_at_rest import SecretsKeyMismatch, open_secrets
from service.db import (
    EmbeddedPostgres,
    create_engine,
    is_database_unavailable,
    redacted,
    session_factory,
    transaction,
)
from service.delivery.analytics import ANALYTICS_KIND, BatchDeliverer
from service.delivery.dispatcher import Dispatcher
from service.delivery.http import create_http_clients
from service.delivery.posthog import PostHogDeliverer
from service.errors import HeraldError, InvalidInput
from service.logs import Throttled
from service.metrics import Metrics
from service.state import HeraldState, Installation
from service.web import install_web

logger = logging.getLogger(__name__)

TAGS = [
    {"name": "events", "description": "Ingest what happened; read the notification feed."},
    {"name": "event types", "description": "The catalog of event types."},
    {"name": "subscribers", "description": "Webhooks and their subscriptions; the analytics subscriber."},
    {"name": "deliveries", "description": "The outbox: every event on its way to every subscriber."},
    {"name": "portal", "description": "One-time links that open a project's portal (`/portal/`)."},
    {"name": "health", "description": "Probes for orchestrators (no API key needed)."},
    {"name": "operations", "description": "Prometheus metrics."},
    {"name": "analytics", "description": "Telemetry: the front-end relay and the analytics event names."},
    {
        "name": "webhook requests",
        "description": "What Herald sends to a webhook, per format and content type (OpenAPI `webhooks`).",
    },
]


async def load_installation(sessions: async_sessionmaker[AsyncSession]) -> Installation:
    """Read this installation's identity (rows created by the migrations)."""
    async with sessions() as session:
        row = (
            await session.execute(
                text(
                    "SELECT i.installation_id, i.anonymization_key, s.uuid AS analytics_uuid "
                    "FROM installation i, subscribers s WHERE i.id = 1 AND s.kind = 'analytics'"
                )
            )
        ).one()
    return Installation(
        installation_id=row.installation_id,
        anonymizer=Anonymizer(bytes(row.anonymization_key)),
        analytics_subscriber_uuid=row.analytics_uuid,
    )


async def open_secret_box(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> SecretBox:
    """The keys of HERALD_SECRETS_KEYS (or the data directory's key file), checked against the
    database; plaintext secrets left by the migration are encrypted. Refuses mismatched keys."""
    try:
        box = SecretBox(keyring.load_keys(settings.secrets_keys, settings.data_dir))
        await open_secrets(sessions, box)
    except (SecretsKeyMismatch, ValueError) as exc:
        logger.error("refusing to start: %s", exc)
        raise
    return box


async def _start_telemetry(
    stack: AsyncExitStack, app: FastAPI, state: HeraldState
) -> dict[str, BatchDeliverer]:
    """Heartbeat and the PostHog deliverer while telemetry is on; the opt-out clean-up otherwise."""
    settings, installation = state.settings, state.installation
    if not settings.telemetry_enabled:
        # Opted out: what was queued while telemetry was on is not sent either.
        async with transaction(state.sessions) as session:
            log_telemetry_status(settings, cancelled=await outbox.cancel_telemetry(session))
        return {}
    log_telemetry_status(settings)
    heartbeat = Heartbeat(
        state.sessions,
        interval_s=settings.heartbeat_interval_seconds,
        installation_id=installation.installation_id,
        analytics_subscriber_uuid=installation.analytics_subscriber_uuid,
        last_activity=lambda: app.state.last_api_activity,
    )
    heartbeat.start()
    stack.push_async_callback(heartbeat.stop)
    if not settings.dispatcher_enabled:
        return {}
    posthog = PostHogDeliverer.from_settings(
        settings,
        installation_id=installation.installation_id,
        anonymizer=installation.anonymizer,
        engine=state.engine,
    )
    stack.push_async_callback(posthog.aclose)  # closed after the dispatcher stops
    return {ANALYTICS_KIND: posthog}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        embedded: EmbeddedPostgres | None = None
        # `herald serve` makes the database ready before the app starts (service/serving.py).
        database_url = settings.database_url or app.state.database_url
        if database_url is None:
            embedded = EmbeddedPostgres(settings.data_dir)
            database_url = await embedded.astart()
            stack.push_async_callback(embedded.astop)
        if settings.migrate_on_start:
            await migrations.upgrade(database_url)
        engine = create_engine(database_url)
        stack.push_async_callback(engine.dispose)
        sessions = session_factory(engine)
        secrets = await open_secret_box(settings, sessions)
        # Connection counts are bounded by the dispatcher's slots, not by the pool (0 = unbounded).
        http = create_http_clients(
            allow_private=settings.allow_private_destinations,
            portal_allow_private=settings.portal_allow_private_destinations,
            max_connections=0,
            egress=settings.egress_proxy,
        )
        stack.push_async_callback(http.aclose)
        state = HeraldState(
            settings=settings,
            database_url=database_url,
            engine=engine,
            sessions=sessions,
            installation=await load_installation(sessions),
            http=http,
            secrets=secrets,
            embedded=embedded,
        )
        app.state.herald = state
        batch_deliverers = await _start_telemetry(stack, app, state)
        if settings.dispatcher_enabled:
            dispatcher = Dispatcher(
                settings=settings,
                engine=engine,
                sessions=sessions,
                database_url=database_url,
                clients=http,
                secrets=secrets,
                batch_deliverers=batch_deliverers,
                observer=app.state.metrics,
            )
            dispatcher.start()
            stack.push_async_callback(dispatcher.stop)
            state.dispatcher = dispatcher
        if settings.parsed_api_keys:  # without keys nothing is authenticated, nothing throttled
            refresher = BlockRefresher(app.state.auth_throttle, sessions)
            refresher.start()
            stack.push_async_callback(refresher.stop)
        retention = RetentionJob(engine, settings.retention_days, metrics=app.state.metrics)
        retention.start()
        stack.push_async_callback(retention.stop)
        logger.info(
            "herald started",
            extra={
                "database": redacted(database_url),
                "telemetry": settings.telemetry_enabled,
                # scheme://host:port only: the URL may hold the proxy's credentials
                "egress_proxy": settings.egress_proxy.display() if settings.egress_proxy else None,
            },
        )
        yield
        logger.info("herald stopping")


def install_error_handlers(app: FastAPI) -> None:
    """Domain errors → their status; a database that cannot be reached → 503, never a 500."""

    async def herald_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HeraldError)
        if isinstance(exc, InvalidInput):
            return JSONResponse({"detail": exc.errors}, status_code=422)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    unavailable_log = Throttled(logger)

    async def database_error(request: Request, exc: Exception) -> Response:
        if is_database_unavailable(exc):
            unavailable_log.warning("database unavailable: %s", type(exc).__name__)
            return JSONResponse(
                {"detail": "database unavailable, retry later"}, status_code=503, headers={"Retry-After": "1"}
            )
        raise exc

    async def validation_error(request: Request, exc: Exception) -> Response:
        # FastAPI echoes each offending "input" by default; a body may hold a webhook secret.
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_exception_handler(HeraldError, herald_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    for exc_type in (DBAPIError, PoolTimeoutError, OSError, TimeoutError, asyncpg.PostgresError):
        app.add_exception_handler(exc_type, database_error)


def custom_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The generated schema plus the models of the request bodies that routes read as bytes, and
    the requests Herald sends (``webhooks``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=TAGS
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(events.request_body_schemas())
        document_security(schema)
        schema["webhooks"] = outgoing.webhooks_section()
        app.openapi_schema = schema
        return schema

    return openapi


_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> FastAPI:
    """Build the application; nothing touches the database until the lifespan runs.

    ``database_url``, when ``HERALD_DATABASE_URL`` is unset: the embedded PostgreSQL that
    ``herald serve`` started before the app (in this process, or in the supervisor of its
    workers), rather than one the lifespan starts and stops itself.
    """
    settings = settings or Settings()
    app = FastAPI(
        title="Herald",
        version=__version__,
        description=(
            "The event, notification and webhook-delivery hub of a data-science platform: services POST "
            "what happened, Herald records it and delivers it, signed, to subscribed webhooks and, "
            "anonymized, to a telemetry backend."
        ),
        lifespan=lifespan,
        openapi_tags=TAGS,
        # /docs is served from this machine by service.web (FastAPI's loads Swagger UI from a CDN).
        docs_url=None,
        redoc_url=None,
        # Off unless asked for: FastAPI would otherwise look up the OpenTelemetry providers on
        # every request (about 1.5 % of an ingest's CPU, bench.profile), to find none configured.
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.database_url = database_url
    app.state.metrics = Metrics()
    # One per process, shared by the API keys and the console's sign-in.
    app.state.auth_throttle = AuthThrottle()
    # The last added is the outermost: the request id goes on every answer, and a request without
    # a valid key is refused before its body is read.
    app.add_middleware(
        BodySizeLimit, max_event_bytes=settings.max_event_bytes, max_batch_bytes=settings.max_batch_bytes
    )
    app.add_middleware(
        ApiKeys, keys=settings.parsed_api_keys, throttle=app.state.auth_throttle, state=app.state
    )
    app.add_middleware(RequestContext, state=app.state)
    install_error_handlers(app)
    for router in (
        events.router,
        event_types.router,
        subscribers.router,
        delivery_actions.subscribers_router,
        deliveries.router,
        delivery_actions.deliveries_router,
        analytics.router,
        portal_links.router,
        health.router,
        metrics.router,
    ):
        app.include_router(router)
    install_web(app)
    if settings.proxy_headers:  # outermost: a trusted proxy's headers hold for all the rest
        app.add_middleware(ForwardedHeaders, trusted=settings.trusted_proxies)
    app.openapi = custom_openapi(app)  # type: ignore[method-assign]
    return app
