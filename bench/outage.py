"""Outage figures: a healthy webhook's rate beside webhooks whose receiver never answers, slots
refilled beside 20 ms receivers, and one ordered webhook at its receiver's pace.

- **Outage.** One healthy webhook (the fast receiver) with a backlog, alone, then beside 50
  webhooks whose receiver accepts and never answers, each with work due, alternating
  ``rounds`` times (the figure is the median of the rounds' ratios: the machine's noise falls
  on both), then once beside 200. Each run starts a Herald of its own (default settings: 15 s
  timeout, 256 slots, 16 per webhook) on a backlog recorded with the dispatcher off, so the
  outage starts with the sender: the rate is the healthy webhook's whole backlog over the time
  from the sender being ready to its last delivery, within the first timeout window, before
  any circuit could open.
- **Refill.** Three webhooks whose receiver answers in 20 ms: 48 slots (3 x 16) allow 2,400
  deliveries/s; the sustained drain rate beside that.
- **Ordered.** One ordered webhook, 5 ms receiver (``delivery_figures.ordered_webhook``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.delivery_figures import _delete_subscriber, _ingest_events, create_webhook, ordered_webhook, settle
from bench.infra import CpuMeter, Receiver, start_herald
from bench.load import arrival_counts, watch_drain

HEALTHY_TYPE = "project:pipeline:deleted"
HANGING_TYPE = "project:created"
REFILL_TYPE = "project:pipeline:created"
HANGING_EVENTS = 20
"""Deliveries due per hanging webhook: more than its slots, whatever they are."""
REFILL_RECEIVER_MS = 20
REFILL_WEBHOOKS = 3
SLOTS_PER_WEBHOOK = 16


async def _drain_from_start(
    session: aiohttp.ClientSession, receiver: Receiver, path: str, expected: int, started_at: float
) -> dict[str, Any]:
    # The path is new for each run: everything that arrived there is this backlog.
    while True:
        arrived = (await arrival_counts(session, receiver, [path]))[0]
        if arrived >= expected:
            break
        if time.monotonic() - started_at > 300:
            raise RuntimeError(f"{path}: {arrived} of {expected} after 300 s")
        await asyncio.sleep(0.05)
    elapsed_s = time.monotonic() - started_at
    return {"per_s": round(expected / elapsed_s, 1), "seconds": round(elapsed_s, 2), "arrived": arrived}


async def _outage_run(
    session: aiohttp.ClientSession,
    workdir: Path,
    database_url: str,
    receiver: Receiver,
    *,
    label: str,
    hanging: int,
    events: int,
) -> dict[str, Any]:
    path = f"/healthy-{label}"
    recorder = await start_herald(workdir, database_url, dispatcher=False)
    created: list[str] = []
    try:
        created.append(
            await create_webhook(
                session, recorder.base_url, f"bench {path}", f"{receiver.base_url}{path}", HEALTHY_TYPE
            )
        )
        for i in range(hanging):
            url = f"{receiver.base_url}/hang-{label}-{i}"
            created.append(await create_webhook(session, recorder.base_url, f"hang {i}", url, HANGING_TYPE))
        if hanging:
            await _ingest_events(session, recorder, HANGING_TYPE, HANGING_EVENTS)
        await _ingest_events(session, recorder, HEALTHY_TYPE, events)
    finally:
        recorder.child.stop()
    await settle(database_url)
    sender = await start_herald(workdir, database_url, dispatcher=True)
    try:
        # From the sender being ready: its dispatcher has just started.
        drain = await _drain_from_start(session, receiver, path, events, time.monotonic())
        hung = (await arrival_counts(session, receiver, [f"/hang-{label}-"]))[0]
    finally:
        sender.child.stop()
    cleaner = await start_herald(workdir, database_url, dispatcher=False)
    try:
        for uuid in created:
            await _delete_subscriber(session, cleaner, uuid)
    finally:
        cleaner.child.stop()
    return drain | {"hanging_webhooks": hanging, "hanging_requests": hung}


async def _refill(
    session: aiohttp.ClientSession, workdir: Path, database_url: str, receiver: Receiver, events: int
) -> dict[str, Any]:
    prefix = f"/slow{REFILL_RECEIVER_MS}-refill"
    recorder = await start_herald(workdir, database_url, dispatcher=False)
    try:
        for i in range(REFILL_WEBHOOKS):
            url = f"{receiver.base_url}{prefix}-{i}"
            await create_webhook(session, recorder.base_url, f"refill {i}", url, REFILL_TYPE)
        base = await arrival_counts(session, receiver, [prefix])
        await _ingest_events(session, recorder, REFILL_TYPE, events)
    finally:
        recorder.child.stop()
    await settle(database_url)
    sender = await start_herald(workdir, database_url, dispatcher=True)
    try:
        drain = await watch_drain(
            session,
            receiver,
            [prefix],
            events * REFILL_WEBHOOKS,
            meter=CpuMeter({"herald": [sender.child.pid]}),
            herald_pid=sender.child.pid,
            base=base,
        )
    finally:
        sender.child.stop()
    allowed = REFILL_WEBHOOKS * SLOTS_PER_WEBHOOK * 1000 / REFILL_RECEIVER_MS
    return {
        "per_s": round(drain.rate.per_s, 1),
        "slots_allow_per_s": allowed,
        "ratio": round(drain.rate.per_s / allowed, 3),
        "receiver_delay_ms": REFILL_RECEIVER_MS,
        "webhooks": REFILL_WEBHOOKS,
    }


async def outage(
    session: aiohttp.ClientSession,
    workdir: Path,
    database_url: str,
    receiver: Receiver,
    *,
    events: int,
    refill_events: int,
    ordered_events: int,
    rounds: int,
) -> dict[str, Any]:
    """The outage, refill and ordered figures (see the module's docstring)."""
    runs: dict[str, list[dict[str, Any]]] = {"alone": [], "beside_50": []}
    for number in range(rounds):
        for label, hanging in (("alone", 0), ("beside_50", 50)):
            run = await _outage_run(
                session,
                workdir,
                database_url,
                receiver,
                label=f"{label}-{number}",
                hanging=hanging,
                events=events,
            )
            runs[label].append(run)
    ratios = [b["per_s"] / a["per_s"] for a, b in zip(runs["alone"], runs["beside_50"], strict=True)]
    middle = sorted(range(rounds), key=lambda i: ratios[i])[(rounds - 1) // 2]
    alone = runs["alone"][middle]
    beside_200 = await _outage_run(
        session, workdir, database_url, receiver, label="beside-200", hanging=200, events=events
    )
    return {
        "outage": {
            "events": events,
            "alone": alone,
            "beside_50": runs["beside_50"][middle],
            "ratios_50": [round(r, 3) for r in ratios],
            "ratio_50": round(statistics.median(ratios), 3),
            "beside_200": beside_200,
            "ratio_200": round(beside_200["per_s"] / alone["per_s"], 3),
            "runs": runs,
        },
        "refill": await _refill(session, workdir, database_url, receiver, refill_events),
        "ordered_pace": await ordered_webhook(session, workdir, database_url, receiver, ordered_events),
    }
