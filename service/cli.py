"""The ``herald`` command: ``serve``, ``migrate``, ``openapi``, ``secrets new-key|rotate``."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from typing import TYPE_CHECKING, Any

# Each command imports what it needs when it runs: `herald --help` loads no web framework, ORM
# or HTTP stack (docs/architecture.md, "Start-up time").
if TYPE_CHECKING:
    from service.config import Settings

logger = logging.getLogger("herald")


def is_loopback(host: str) -> bool:
    """Loopback = 127.0.0.0/8, ::1 and ``localhost`` (docs/operations.md, "API keys")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _load_settings(**overrides: Any) -> Settings:
    """The settings of the environment (and ``.env``), with the command line's ``overrides``."""
    from pydantic import ValidationError

    from service.config import Settings
    from service.logs import configure_logging

    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        # pydantic's message names the variable; values of secrets are not echoed for api_keys.
        errors = "; ".join(f"HERALD_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"herald: invalid configuration: {errors}") from None
    configure_logging(settings.log_format)
    return settings


def check_api_keys(settings: Settings, host: str) -> bool:
    """Whether ``herald serve`` may listen on ``host`` with these keys (no keys: loopback only);
    the warnings are logged (positions of short keys, never a key)."""
    from service.config import MIN_API_KEY_CHARS, short_api_keys

    if not settings.parsed_api_keys:
        if not is_loopback(host):
            logger.error(
                "refusing to listen on %s without API keys: set HERALD_API_KEYS (e.g. admin:<key>) "
                "or bind a loopback address",
                host,
            )
            return False
        logger.warning(
            "no HERALD_API_KEYS configured: the API is open to anyone on this machine (loopback only)"
        )
    for position in short_api_keys(settings.parsed_api_keys):
        logger.warning(
            "HERALD_API_KEYS entry #%d is shorter than %d characters and could be guessed: "
            "use a long random key (e.g. openssl rand -hex 24)",
            position,
            MIN_API_KEY_CHARS,
        )
    return True


def serve(host: str, port: int, workers: int, **overrides: Any) -> int:
    """``herald serve``; ``overrides`` are settings given as options (``--proxy-headers``)."""
    settings = _load_settings(**overrides)
    if not check_api_keys(settings, host):
        return 2
    from service import serving

    if workers == 1:
        return serving.serve_in_process(settings, host, port)
    return serving.serve_workers(settings, host, port, workers)


def migrate() -> int:
    import asyncio

    from service import migrations
    from service.db import command_database

    settings = _load_settings()
    with command_database(settings) as url:
        asyncio.run(migrations.upgrade(url))
        logger.info("database migrated to %s", migrations.head_revision())
    return 0


def new_key() -> int:
    from service import keyring

    sys.stdout.write(keyring.new_key() + "\n")
    return 0


async def _rotate(settings: Settings, url: str) -> int:
    from service import keyring
    from service.common.secretbox import SecretBox
    from service.core.secrets_at_rest import rotate
    from service.db import create_engine, session_factory

    box = SecretBox(keyring.load_keys(settings.secrets_keys, settings.data_dir))
    engine = create_engine(url, pool_size=2)
    try:
        return await rotate(session_factory(engine), box)
    finally:
        await engine.dispose()


def rotate_secrets() -> int:
    """Re-encrypt every stored secret and header set with the first key (safe while the service runs)."""
    import asyncio

    from service.db import command_database

    settings = _load_settings()
    try:
        with command_database(settings) as url:
            done = asyncio.run(_rotate(settings, url))
    except Exception as exc:  # one line naming no key or secret, rather than a traceback
        logger.error("secrets rotation failed: %s", exc)
        return 1
    logger.info("secrets re-encrypted with the first key of HERALD_SECRETS_KEYS: %d webhooks", done)
    return 0


def openapi() -> int:
    import orjson

    from service.config import Settings
    from service.main import create_app

    app = create_app(Settings(database_url="postgresql://unused/unused"))
    sys.stdout.write(orjson.dumps(app.openapi(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes, at least 1, not {text!r}")
    return count


def _trusted_addresses(text: str) -> str:
    from service.config import parse_trusted_proxies

    try:
        parse_trusted_proxies(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("HERALD_FORWARDED_ALLOW_IPS", "the list")) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="herald", description="Herald event and webhook hub")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="apply migrations, then serve HTTP and run the dispatcher")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        help="processes serving the one port, each with its dispatcher (default 1)",
    )
    serve_cmd.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="behind a reverse proxy: believe X-Forwarded-For/-Proto/-Host from --forwarded-allow-ips "
        "(default: HERALD_PROXY_HEADERS, else off)",
    )
    serve_cmd.add_argument(
        "--forwarded-allow-ips",
        type=_trusted_addresses,
        default=None,
        metavar="ADDRESSES",
        help="comma-separated addresses or CIDR networks of the proxies to believe, or * "
        "(default: HERALD_FORWARDED_ALLOW_IPS, else 127.0.0.1)",
    )
    commands.add_parser("migrate", help="apply database migrations and exit")
    commands.add_parser("openapi", help="print the OpenAPI schema as JSON")
    secrets_cmd = commands.add_parser("secrets", help="keys of the secrets at rest")
    secrets_actions = secrets_cmd.add_subparsers(dest="action", required=True)
    secrets_actions.add_parser("new-key", help="print a fresh key for HERALD_SECRETS_KEYS")
    secrets_actions.add_parser("rotate", help="re-encrypt the stored secrets and headers with the first key")
    return parser


def serve_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that ``herald serve``'s options give; those not given are the environment's."""
    given = {"proxy_headers": args.proxy_headers, "forwarded_allow_ips": args.forwarded_allow_ips}
    return {name: value for name, value in given.items() if value is not None}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args.host, args.port, args.workers, **serve_overrides(args))
    if args.command == "migrate":
        return migrate()
    if args.command == "secrets":
        return new_key() if args.action == "new-key" else rotate_secrets()
    return openapi()


if __name__ == "__main__":
    sys.exit(main())
