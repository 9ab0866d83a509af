"""Delivery figures: sustained throughput beside naive send loops, idle latency beside a loopback
round trip, a healthy endpoint beside a hanging one, and Herald's memory on the way."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from bench.infra import CpuMeter, Herald, Receiver, python_module, rss_mib, start_herald
from bench.load import Drain, arrival_counts, percentile, post_batch, post_json, watch_drain
from bench.workload import (
    ISOLATION_TYPE,
    JSON_HEADERS,
    LATENCY_TYPE,
    batch_body,
    main_event,
    simple_event,
)
from service.common.channels import DELIVERIES_CHANNEL
from service.db import asyncpg_dsn


async def create_webhook(
    session: aiohttp.ClientSession, herald_url: str, name: str, url: str, event_type: str
) -> str:
    body = {"name": name, "url": url, "subscriptions": [{"event_type": event_type}]}
    created = await post_json(session, f"{herald_url}/api/v1/subscribers/webhooks", body)
    return str(created["uuid"])


def _drain_summary(drain: Drain) -> dict[str, Any]:
    return {
        "per_s": round(drain.rate.per_s, 1),
        "arrived": drain.delivered,
        "duplicates": drain.delivered - drain.unique,
        "stalled": drain.stalled,
        "tail_seconds": drain.tail_s,
        "cpu_percent": drain.rate.cpu,
    }


async def delivery_states(database_url: str) -> dict[str, int]:
    """How many deliveries are in each status (to explain a drain that stalled)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
        return {row["status"]: int(row["n"]) for row in rows}
    finally:
        await conn.close()


async def settle(database_url: str) -> None:
    """Let PostgreSQL finish the upkeep a drained backlog leaves, before a measured window.

    After hundreds of thousands of delivery updates, autovacuum and the next checkpoint would
    otherwise land inside the window: a p99 idle latency of ~90 ms once, against ~7 ms without;
    healthy-beside-hanging drains from 2,500 to 4,100/s within one run.
    """
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("VACUUM (ANALYZE) deliveries, delivery_attempts, events")
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def sustained(
    session: aiohttp.ClientSession,
    herald: Herald,
    receiver: Receiver,
    backlog: int,
    memory_mark: int,
    database_url: str,
    base: tuple[int, int],
) -> dict[str, Any]:
    """Drain the backlog the ingest figures left (three webhooks under ``/w``).

    ``base`` is what the receiver had counted before this Herald started: its dispatcher
    begins at once, often before the first reading here.
    """
    start_rss = rss_mib(herald.child.pid)
    drain = await watch_drain(
        session,
        receiver,
        ["/w"],
        backlog,
        meter=CpuMeter({"herald": [herald.child.pid], "receiver": [receiver.child.pid]}),
        herald_pid=herald.child.pid,
        rss_marks=[memory_mark] if backlog >= memory_mark else [],
        base=base,
        # Longer than a lease (60 s): rows a claim lost come back when it expires.
        stall_s=90.0,
    )
    await asyncio.sleep(3.0)  # let the outcome writer finish and the process settle
    return _drain_summary(drain) | {
        "backlog": backlog,
        "rss_start_mib": round(start_rss, 1),
        "rss_at_mark_mib": round(drain.rss_marks_mib.get(memory_mark, float("nan")), 1),
        "memory_mark": memory_mark,
        "rss_drained_mib": round(rss_mib(herald.child.pid), 1),
        "states_after_drain": await delivery_states(database_url),
    }


async def more_deliveries(
    session: aiohttp.ClientSession, herald: Herald, receiver: Receiver, deliveries: int
) -> dict[str, Any]:
    """About ``deliveries`` more deliveries through the Herald that drained the backlog, ingested
    while its dispatcher runs; its memory is read 2 s after they arrived.

    The first such round is also the process's first ingest: its high-water mark (~18 MiB
    more, once) is not growth. A second round shows whether memory keeps growing.
    """
    events = max(1, deliveries // 3)  # the main type goes to the three webhooks under /w
    base = await arrival_counts(session, receiver, ["/w"])
    for start in range(0, events, 1000):
        body = batch_body([main_event() for _ in range(min(1000, events - start))])
        await post_batch(session, herald.base_url, body)
    drain = await watch_drain(
        session,
        receiver,
        ["/w"],
        3 * events,
        meter=CpuMeter({"herald": [herald.child.pid]}),
        herald_pid=herald.child.pid,
        base=base,
    )
    await asyncio.sleep(2.0)
    return _drain_summary(drain) | {"rss_after_mib": round(rss_mib(herald.child.pid), 1)}


async def naive_loop(
    receiver: Receiver, transport: str, seconds: float, in_flight: int, warmup_s: float
) -> dict[str, Any]:
    """One naive send loop in its own process against the receiver's ``/naive`` path."""
    meter = CpuMeter({"receiver": [receiver.child.pid]})
    argv = python_module(
        "bench.naive_sender",
        "--url",
        f"{receiver.base_url}/naive",
        "--seconds",
        str(seconds),
        "--transport",
        transport,
        "--in-flight",
        str(in_flight),
        "--warmup",
        str(warmup_s),
    )
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    meter.start()
    out, _ = await proc.communicate()
    cpu = meter.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"naive sender ({transport}) failed")
    result: dict[str, Any] = orjson.loads(out)
    result["per_s"] = round(result["sent"] / result["seconds"], 1)
    result["receiver_cpu_percent"] = cpu["receiver"]
    return result


async def latency(
    session: aiohttp.ClientSession, herald: Herald, receiver: Receiver, samples: int, gap_s: float
) -> dict[str, Any]:
    """Ingest → receipt on an idle Herald (one webhook), beside the loopback round trip."""
    await create_webhook(
        session, herald.base_url, "bench latency", f"{receiver.base_url}/latency", LATENCY_TYPE
    )
    await receiver.arrivals(session)  # forget anything earlier
    sent: dict[str, float] = {}
    url = f"{herald.base_url}/api/v1/events"
    for _ in range(samples):
        event_id = str(uuid.uuid4())
        body = orjson.dumps(simple_event(LATENCY_TYPE, event_id))
        started = time.monotonic()
        async with session.post(url, data=body, headers=JSON_HEADERS) as response:
            await response.read()
        sent[event_id] = started
        await asyncio.sleep(gap_s)
    await asyncio.sleep(1.0)
    arrivals = await receiver.arrivals(session)
    herald_ms = [(arrivals[k] - t) * 1000 for k, t in sent.items() if k in arrivals]

    round_trips: list[float] = []
    for _ in range(samples):
        started = time.monotonic()
        async with session.post(f"{receiver.base_url}/rtt", data=b"{}", headers=JSON_HEADERS) as response:
            await response.read()
        round_trips.append((time.monotonic() - started) * 1000)
        await asyncio.sleep(gap_s)
    return {
        "samples": samples,
        "received": len(herald_ms),
        "herald_p50_ms": round(statistics.median(herald_ms), 2) if herald_ms else None,
        "herald_p99_ms": round(percentile(herald_ms, 99), 2) if herald_ms else None,
        "loopback_p50_ms": round(statistics.median(round_trips), 2),
        "loopback_p99_ms": round(percentile(round_trips, 99), 2),
    }


async def _ingest_events(session: aiohttp.ClientSession, herald: Herald, type_name: str, count: int) -> None:
    for start in range(0, count, 1000):
        size = min(1000, count - start)
        await post_batch(session, herald.base_url, batch_body([simple_event(type_name)] * size))


async def _delete_subscriber(session: aiohttp.ClientSession, herald: Herald, uuid: str) -> None:
    async with session.delete(f"{herald.base_url}/api/v1/subscribers/{uuid}") as response:
        if response.status != 204:
            raise RuntimeError(f"DELETE subscriber -> {response.status}: {(await response.read())[:300]!r}")


async def isolation(
    session: aiohttp.ClientSession,
    workdir: Path,
    database_url: str,
    receiver: Receiver,
    events: int,
    rounds: int,
) -> dict[str, Any]:
    """A healthy endpoint's drain rate alone, and beside an endpoint that never answers.

    Each drain starts from a backlog recorded while no dispatcher ran (a Herald with it off
    records, ``settle`` runs, then one with it on drains), so neither ingest nor autovacuum
    shares the machine with the drain it is compared on. Runs alternate, alone then beside,
    ``rounds`` times; the figure is the median of the rounds' ratios: each drain is a new
    process, and one drain's rate varies by up to ±15 % from the next. A hanging subscriber
    is deleted before each "alone" run (its pending deliveries are cancelled; the ones left
    leased come back cancelled when their lease expires), and a new one, with a backlog of its
    own, is made for each "beside" run.
    """
    runs: dict[str, list[dict[str, Any]]] = {"alone": [], "beside_hanging": []}
    webhooks: dict[str, str] = {}  # path -> subscriber uuid
    recorder = await start_herald(workdir, database_url, dispatcher=False)
    try:
        for _ in range(rounds):
            for label, drains in runs.items():
                wanted = {"/healthy", "/hang"} if label == "beside_hanging" else {"/healthy"}
                for path in set(webhooks) - wanted:
                    await _delete_subscriber(session, recorder, webhooks.pop(path))
                for path in wanted - set(webhooks):
                    url = f"{receiver.base_url}{path}"
                    webhooks[path] = await create_webhook(
                        session, recorder.base_url, f"bench {path}", url, ISOLATION_TYPE
                    )
                base = await arrival_counts(session, receiver, ["/healthy"])
                await _ingest_events(session, recorder, ISOLATION_TYPE, events)
                await settle(database_url)
                sender = await start_herald(workdir, database_url, dispatcher=True)
                try:
                    drain = await watch_drain(
                        session,
                        receiver,
                        ["/healthy"],
                        events,
                        meter=CpuMeter({"herald": [sender.child.pid]}),
                        herald_pid=sender.child.pid,
                        base=base,
                    )
                finally:
                    sender.child.stop()
                drains.append(_drain_summary(drain))
    finally:
        recorder.child.stop()
    ratios = [
        beside["per_s"] / alone["per_s"] if alone["per_s"] else 0.0
        for alone, beside in zip(runs["alone"], runs["beside_hanging"], strict=True)
    ]
    middle = sorted(range(rounds), key=lambda i: ratios[i])[(rounds - 1) // 2]
    return {
        "events_per_run": events,
        "ratios": [round(r, 3) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        # The round whose ratio is the median, for the table.
        "alone": runs["alone"][middle],
        "beside_hanging": runs["beside_hanging"][middle],
        "runs": runs,
        "hanging_requests_received": await receiver.count(session, "/hang"),
    }


SECRETS_TYPE = "project:pipeline:deleted"
ORDERED_TYPE = "project:deleted"
_HOLD_SQL = (
    "UPDATE deliveries SET next_attempt_at = now() + interval '1 day' "
    "WHERE subscriber_uuid = $1 AND status = 'pending'"
)
_RELEASE_SQL = (
    "UPDATE deliveries SET next_attempt_at = now() WHERE subscriber_uuid = $1 AND status = 'pending'"
)


async def secrets_at_rest(
    session: aiohttp.ClientSession,
    workdir: Path,
    database_url: str,
    receiver: Receiver,
    events: int,
    rounds: int,
) -> dict[str, Any]:
    """Sustained drains signed with a secret stored encrypted (decrypted through the cache)
    beside the same drain with the secret stored in plain text, as before encryption at rest.

    A plain-text secret is what a claim returned before; start-up seals such rows, so the
    backlog is held back (not yet due) while the sender starts, the plain variant's secret is
    then put back in plain text, and the backlog is made due at once. Runs alternate ``rounds``
    times; the figure is the median of the rounds' ratios (encrypted / plain).
    """
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "encrypted": []}
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    # What earlier parts left unfinished (a hanging endpoint's backlog, a drained Herald's leases)
    # is cancelled first (no Herald runs now), so only these drains are on the line.
    await conn.execute("UPDATE deliveries SET status = 'cancelled' WHERE status IN ('pending', 'delivering')")
    recorder = await start_herald(workdir, database_url, dispatcher=False)
    try:
        for number in range(rounds):
            for label, drains in runs.items():
                path = f"/secrets-{label}-{number}"
                body = {
                    "name": f"bench {path}",
                    "url": f"{receiver.base_url}{path}",
                    "subscriptions": [{"event_type": SECRETS_TYPE}],
                }
                created = await post_json(session, f"{recorder.base_url}/api/v1/subscribers/webhooks", body)
                webhook = uuid.UUID(str(created["uuid"]))
                await _ingest_events(session, recorder, SECRETS_TYPE, events)
                await conn.execute(_HOLD_SQL, webhook)
                await settle(database_url)
                sender = await start_herald(workdir, database_url, dispatcher=True)
                try:
                    if label == "plain":
                        await conn.execute(
                            "UPDATE subscribers SET secret = $2 WHERE uuid = $1", webhook, created["secret"]
                        )
                    base = await arrival_counts(session, receiver, [path])
                    await conn.execute(_RELEASE_SQL, webhook)
                    await conn.execute("SELECT pg_notify($1, '')", DELIVERIES_CHANNEL)
                    drain = await watch_drain(
                        session,
                        receiver,
                        [path],
                        events,
                        meter=CpuMeter({"herald": [sender.child.pid]}),
                        herald_pid=sender.child.pid,
                        base=base,
                    )
                finally:
                    sender.child.stop()
                await _delete_subscriber(session, recorder, str(webhook))
                drains.append(_drain_summary(drain))
    finally:
        await conn.close()
        recorder.child.stop()
    ratios = [
        encrypted["per_s"] / plain["per_s"] if plain["per_s"] else 0.0
        for plain, encrypted in zip(runs["plain"], runs["encrypted"], strict=True)
    ]
    middle = sorted(range(rounds), key=lambda i: ratios[i])[(rounds - 1) // 2]
    return {
        "events_per_run": events,
        "ratios": [round(r, 3) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        "plain": runs["plain"][middle],
        "encrypted": runs["encrypted"][middle],
        "runs": runs,
    }


async def ordered_webhook(
    session: aiohttp.ClientSession, workdir: Path, database_url: str, receiver: Receiver, events: int
) -> dict[str, Any]:
    """The drain of one ordered webhook whose receiver takes 5 ms per request: one request in
    flight at a time, each after the last one's outcome is written. A backlog recorded with the
    dispatcher off, then drained by a Herald of its own."""
    path = "/slow5-ordered"
    recorder = await start_herald(workdir, database_url, dispatcher=False)
    try:
        body = {
            "name": "bench ordered",
            "url": f"{receiver.base_url}{path}",
            "ordered": True,
            "subscriptions": [{"event_type": ORDERED_TYPE}],
        }
        await post_json(session, f"{recorder.base_url}/api/v1/subscribers/webhooks", body)
        base = await arrival_counts(session, receiver, [path])
        await _ingest_events(session, recorder, ORDERED_TYPE, events)
    finally:
        recorder.child.stop()
    await settle(database_url)
    sender = await start_herald(workdir, database_url, dispatcher=True)
    try:
        drain = await watch_drain(
            session,
            receiver,
            [path],
            events,
            meter=CpuMeter({"herald": [sender.child.pid]}),
            herald_pid=sender.child.pid,
            base=base,
        )
    finally:
        sender.child.stop()
    return _drain_summary(drain) | {"events": events, "receiver_delay_ms": 5}
