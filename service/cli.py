"""The ``herald`` command: ``serve``, ``migrate``, ``openapi``, ``secrets new-key|rotate``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from pydantic import ValidationError

from service import keyring, migrations
from service.config import Settings
from service.db import EmbeddedPostgres, create_engine, session_factory
from service.logs import configure_logging

logger = logging.getLogger("herald")


def is_loopback(host: str) -> bool:
    """Loopback = 127.0.0.0/8, ::1 and ``localhost`` (docs/operations.md, "API keys")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # pydantic's message names the variable; values of secrets are not echoed for api_keys.
        errors = "; ".join(f"HERALD_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"herald: invalid configuration: {errors}") from None


# Young-generation size of the cyclic garbage collector (CPython's default: 700 allocations).
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Keep the cyclic garbage collector from doubling the CPU of big requests.

    A 1000-event batch holds some 10^5 containers for the length of the request. With CPython's
    default thresholds they reach the oldest generation and set off full collections, each of
    which walks every object of the process (~80 ms per batch, measured with bench/). Start-up
    objects are frozen out of the collector's sight and the young generation is made larger.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def serve(host: str, port: int) -> int:
    settings = _load_settings()
    configure_logging(settings.log_format)
    if not settings.parsed_api_keys:
        if not is_loopback(host):
            logger.error(
                "refusing to listen on %s without API keys: set HERALD_API_KEYS (e.g. admin:<key>) "
                "or bind a loopback address",
                host,
            )
            return 2
        logger.warning(
            "no HERALD_API_KEYS configured: the API is open to anyone on this machine (loopback only)"
        )
    import uvicorn

    from service.main import create_app

    app = create_app(settings)
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
    )
    return 0


@contextmanager
def _database(settings: Settings) -> Iterator[str]:
    """The database URL: HERALD_DATABASE_URL, or the embedded PostgreSQL started for the command."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


def migrate() -> int:
    settings = _load_settings()
    configure_logging(settings.log_format)
    with _database(settings) as url:
        asyncio.run(migrations.upgrade(url))
        logger.info("database migrated to %s", migrations.head_revision())
    return 0


def new_key() -> int:
    sys.stdout.write(keyring.new_key() + "\n")
    return 0


async def _rotate(settings: Settings, url: str) -> int:
    from service.common.secretbox import SecretBox
    from service.core.secrets_at_rest import rotate

    box = SecretBox(keyring.load_keys(settings.secrets_keys, settings.data_dir))
    engine = create_engine(url, pool_size=2)
    try:
        return await rotate(session_factory(engine), box)
    finally:
        await engine.dispose()


def rotate_secrets() -> int:
    """Re-encrypt every stored secret and header set with the first key (safe while the service runs)."""
    settings = _load_settings()
    configure_logging(settings.log_format)
    try:
        with _database(settings) as url:
            done = asyncio.run(_rotate(settings, url))
    except Exception as exc:  # one line naming no key or secret, rather than a traceback
        logger.error("secrets rotation failed: %s", exc)
        return 1
    logger.info("secrets re-encrypted with the first key of HERALD_SECRETS_KEYS: %d webhooks", done)
    return 0


def openapi() -> int:
    from service.main import create_app

    app = create_app(Settings(database_url="postgresql://unused/unused"))
    sys.stdout.write(orjson.dumps(app.openapi(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="herald", description="Herald event and webhook hub")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="apply migrations, then serve HTTP and run the dispatcher")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    commands.add_parser("migrate", help="apply database migrations and exit")
    commands.add_parser("openapi", help="print the OpenAPI schema as JSON")
    secrets_cmd = commands.add_parser("secrets", help="keys of the secrets at rest")
    secrets_actions = secrets_cmd.add_subparsers(dest="action", required=True)
    secrets_actions.add_parser("new-key", help="print a fresh key for HERALD_SECRETS_KEYS")
    secrets_actions.add_parser("rotate", help="re-encrypt the stored secrets and headers with the first key")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.host, args.port)
    if args.command == "migrate":
        return migrate()
    if args.command == "secrets":
        return new_key() if args.action == "new-key" else rotate_secrets()
    return openapi()


if __name__ == "__main__":
    sys.exit(main())
