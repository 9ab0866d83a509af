"""The throttle of failed authentication: 20 failures per address in 10 minutes, then 429 whatever
the key, shared by the API keys and the console's sign-in, across replicas, logged without keys."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event

from service.core.auth_throttle import MAX_FAILURES, WINDOW_MINUTES, blocked_addresses, client_key, standing
from service.logs import JsonFormatter, TextFormatter
from tests.support.app import AppFactory, RunningApp
from tests.web.test_pages_http import csrf_of

ADMIN_KEY = "adm-0123456789abcdef"
INGEST_KEY = "ing-0123456789abcdef"
KEYS = f"admin:{ADMIN_KEY}, ingest:{INGEST_KEY}"
GUESS = "guess-0123456789abcdef"
EVENTS = "/api/v1/events"
WINDOW_S = WINDOW_MINUTES * 60


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def secured(app_factory: AppFactory) -> Any:
    async with app_factory(api_keys=KEYS) as running:
        yield running


async def guess(client: httpx.AsyncClient, times: int = MAX_FAILURES) -> None:
    for attempt in range(times):
        answer = await client.get(EVENTS, headers=bearer(f"{GUESS}-{attempt}"))
        assert answer.status_code == 401, (attempt, answer.text)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/ui/login")
    data = {"api_key": key, "csrf_token": csrf_of(form)}
    return await client.post("/ui/login", data=data, headers={"Origin": "http://herald.test"})


def assert_throttled(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert 0 < int(answer.headers["retry-after"]) <= WINDOW_S


async def failures(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT coalesce(sum(failures), 0) FROM console_sign_ins"))


async def test_after_twenty_wrong_keys_even_the_right_key_gets_429_with_retry_after(
    secured: RunningApp, db: asyncpg.Connection
) -> None:
    client = secured.client
    await guess(client)
    refused = await client.get(EVENTS, headers=bearer(ADMIN_KEY))
    assert_throttled(refused)
    assert "too many failed authentications" in refused.json()["detail"]
    assert_throttled(await client.post(EVENTS, json={}, headers=bearer(INGEST_KEY)))
    assert_throttled(await client.get(EVENTS, headers=bearer("one-more-guess")))
    assert_throttled(await client.get(EVENTS))
    # Refusals are not failures: the count stays at the limit, so the block ends with the window.
    assert await failures(db) == MAX_FAILURES
    # Outside the API nothing is refused.
    assert (await client.get("/health/live")).status_code == 200


async def test_a_missing_key_or_a_wrong_scope_is_not_a_failure(
    secured: RunningApp, db: asyncpg.Connection
) -> None:
    for _ in range(MAX_FAILURES + 5):
        assert (await secured.client.get(EVENTS)).status_code == 401
        assert (await secured.client.get(EVENTS, headers=bearer(INGEST_KEY))).status_code == 403
    assert await failures(db) == 0
    assert (await secured.client.get(EVENTS, headers=bearer(ADMIN_KEY))).status_code == 200


async def test_guesses_sent_at_once_cannot_pass_the_limit(
    secured: RunningApp, db: asyncpg.Connection
) -> None:
    many = MAX_FAILURES * 2
    answers = await asyncio.gather(
        *(secured.client.get(EVENTS, headers=bearer(f"{GUESS}-{n}")) for n in range(many))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * MAX_FAILURES + [429] * (many - MAX_FAILURES)
    assert await failures(db) == MAX_FAILURES


async def test_each_failure_is_logged_with_the_address_and_never_the_key(
    secured: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="service.core.auth_throttle")
    await guess(secured.client)
    await secured.client.get(EVENTS, headers=bearer(ADMIN_KEY))
    records = [r for r in caplog.records if r.name == "service.core.auth_throttle"]
    failed = [r for r in records if r.getMessage() == "authentication failed"]
    assert [r.__dict__["failures"] for r in failed] == list(range(1, MAX_FAILURES + 1))
    assert {r.__dict__["client"] for r in failed} == {"127.0.0.1"}
    assert {r.__dict__["via"] for r in failed} == {"API key"}
    [blocked] = [r for r in records if "blocked" in r.getMessage() and r.__dict__.get("client")]
    assert 0 < blocked.__dict__["retry_after_s"] <= WINDOW_S
    lines = [formatter.format(r) for r in records for formatter in (TextFormatter(), JsonFormatter())]
    assert all("127.0.0.1" in line for line in lines)
    assert not any(GUESS in line or ADMIN_KEY in line for line in lines)


async def test_console_sign_ins_count_in_the_same_throttle(
    secured: RunningApp, db: asyncpg.Connection
) -> None:
    client = secured.client
    half = MAX_FAILURES // 2
    await guess(client, half)
    for _ in range(MAX_FAILURES - half - 1):
        assert (await sign_in(client, "wrong key")).status_code == 401
    # An ingest key does not open the console: a failure too, the last one allowed.
    assert (await sign_in(client, INGEST_KEY)).status_code == 401
    assert await failures(db) == MAX_FAILURES
    refused = await sign_in(client, ADMIN_KEY)
    assert_throttled(refused)
    assert "Too many failed sign-ins" in refused.text
    assert "herald_session" not in client.cookies
    assert_throttled(await client.get(EVENTS, headers=bearer(ADMIN_KEY)))


async def test_a_block_holds_across_replicas_and_ends_with_the_window(
    app_factory: AppFactory, db: asyncpg.Connection
) -> None:
    async with (
        app_factory(api_keys=KEYS) as first,
        app_factory(api_keys=KEYS) as second,
        app_factory(api_keys=KEYS) as third,
    ):
        await guess(first.client, MAX_FAILURES - 1)
        await guess(second.client, 1)
        # The second replica counted the last failure and knows of the block at once.
        assert_throttled(await second.client.get(EVENTS, headers=bearer(ADMIN_KEY)))
        # The first learns of it at its next failure, from the shared count...
        assert_throttled(await first.client.get(EVENTS, headers=bearer("another guess")))
        assert_throttled(await first.client.get(EVENTS, headers=bearer(ADMIN_KEY)))
        # ...the third, which saw no failure, from its background read of the blocked addresses.
        assert any(task.get_name() == "herald-auth-blocks" for task in asyncio.all_tasks())
        await third.app.state.auth_throttle.refresh(third.state.sessions)
        assert_throttled(await third.client.get(EVENTS, headers=bearer(ADMIN_KEY)))
        assert await failures(db) == MAX_FAILURES
        # The window passes: in the database and in each process's memory.
        await db.execute("UPDATE console_sign_ins SET minute = minute - interval '11 minutes'")
        for running in (first, second, third):
            clock = running.app.state.auth_throttle.clock
            running.app.state.auth_throttle.clock = lambda clock=clock: clock() + WINDOW_S + 1
            await running.app.state.auth_throttle.refresh(running.state.sessions)
            assert (await running.client.get(EVENTS, headers=bearer(ADMIN_KEY))).status_code == 200
        assert (await first.client.get(EVENTS, headers=bearer("a new guess"))).status_code == 401
        assert await failures(db) == 1  # the old rows went as the new failure came


async def test_the_blocked_addresses_and_their_retry_after_agree_with_the_counts(
    secured: RunningApp, db: asyncpg.Connection
) -> None:
    # Failures spread over minutes: the block lasts until the bucket that reached the limit leaves.
    await db.execute(
        "INSERT INTO console_sign_ins (client, minute, failures) VALUES "
        "('192.0.2.1', date_trunc('minute', now()) - interval '7 minutes', 15), "
        "('192.0.2.1', date_trunc('minute', now()) - interval '3 minutes', 4), "
        "('192.0.2.1', date_trunc('minute', now()), 2), "
        "('192.0.2.2', date_trunc('minute', now()), 19), "
        "('192.0.2.3', date_trunc('minute', now()) - interval '12 minutes', 30)"
    )
    async with secured.state.sessions() as session:
        blocked = dict(await blocked_addresses(session))
        found = await standing(session, "192.0.2.1")
    assert set(blocked) == {"192.0.2.1"}
    assert found.failures == 21
    assert blocked["192.0.2.1"] == found.retry_after_s
    # The 7-minute-old bucket takes the count to 21: the block ends when it leaves the window.
    assert 120 < found.retry_after_s <= 180


async def test_a_valid_key_costs_no_database_round_trip(secured: RunningApp) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = secured.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        # Admin on an unknown API path: authenticated, then a 404 that reads nothing.
        assert (await secured.client.get("/api/v1/nothing", headers=bearer(ADMIN_KEY))).status_code == 404
        assert statements == []
        assert (await secured.client.get("/api/v1/nothing", headers=bearer(GUESS))).status_code == 401
        assert any("console_sign_ins" in statement for statement in statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_an_ipv6_client_counts_with_its_64_network() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key(None) == "unknown"
