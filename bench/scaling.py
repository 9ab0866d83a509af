"""Several Herald processes on one database: ``herald serve --workers N`` for N = 1 and 2, and two
replicas (two ``herald serve`` processes, each on its own port) beside one.

Each set-up gets a database of its own and three webhooks on the fast receiver, then: single-event
ingest (64 clients, shared out over the replicas' ports), batch ingest (1000-event requests, two in
flight per replica), and the drain of a backlog recorded with the dispatchers off (so the drain
does not share the machine with ingest). Every figure counts all of Herald's processes (a
supervisor's workers too) in its CPU share.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from bench.delivery_figures import create_webhook, settle
from bench.infra import CpuMeter, Herald, Postgres, Receiver, start_herald
from bench.load import Rate, arrival_counts, closed_loop, post_batch, run_batches, watch_drain
from bench.workload import MAIN_TYPE, batch_body, main_event
from service.db import asyncpg_dsn

SETUPS = (("workers_1", 1, 1), ("workers_2", 2, 1), ("replicas_2", 1, 2))
"""(label, workers per process, processes)."""


@dataclass(frozen=True)
class ScalingOptions:
    seconds: float
    clients: int
    batches: int
    drain_events: int


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (a supervisor's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _meter(heralds: list[Herald]) -> CpuMeter:
    return CpuMeter({"herald": [pid for h in heralds for pid in process_tree(h.child.pid)]})


async def _start(
    workdir: Path, database_url: str, workers: int, processes: int, *, dispatcher: bool
) -> list[Herald]:
    heralds: list[Herald] = []
    for _ in range(processes):
        heralds.append(await start_herald(workdir, database_url, dispatcher=dispatcher, workers=workers))
    return heralds


def _stop(heralds: list[Herald]) -> None:
    for herald in heralds:
        herald.child.stop()


def _summary(rate: Rate) -> dict[str, Any]:
    return {
        "per_s": round(rate.per_s, 1),
        "errors": rate.errors,
        "first_error": rate.first_error,
        "cpu": rate.cpu,
    }


async def _single(session: aiohttp.ClientSession, heralds: list[Herald], options: ScalingOptions) -> Rate:
    body = orjson.dumps(main_event())
    meter = _meter(heralds)
    share = max(1, options.clients // len(heralds))
    meter.start()
    rates = await asyncio.gather(
        *(
            closed_loop(
                session,
                f"{h.base_url}/api/v1/events",
                body,
                clients=share,
                seconds=options.seconds,
                warmup_s=1.0,
                meter=CpuMeter({}),
            )
            for h in heralds
        )
    )
    cpu = meter.stop()
    return Rate(
        sum(r.count for r in rates),
        max(r.seconds for r in rates),
        sum(r.errors for r in rates),
        next((r.first_error for r in rates if r.first_error), None),
        cpu,
    )


async def _batches(session: aiohttp.ClientSession, heralds: list[Herald], batches: int) -> Rate:
    body = batch_body([main_event() for _ in range(1000)])

    async def send(i: int) -> int:
        await post_batch(session, heralds[i % len(heralds)].base_url, body)
        return 1000

    return await run_batches(send, batches, 2 * len(heralds), _meter(heralds))


async def _record_backlog(
    session: aiohttp.ClientSession, herald: Herald, database_url: str, events: int
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # What ingest left is not part of the drain: only the backlog recorded here is.
        await conn.execute("UPDATE deliveries SET status = 'cancelled' WHERE status = 'pending'")
    finally:
        await conn.close()
    for start in range(0, events, 1000):
        await post_batch(
            session, herald.base_url, batch_body([main_event() for _ in range(min(1000, events - start))])
        )
    await settle(database_url)


async def one_setup(
    session: aiohttp.ClientSession,
    workdir: Path,
    pg: Postgres,
    receiver: Receiver,
    setup: tuple[str, int, int],
    options: ScalingOptions,
) -> dict[str, Any]:
    label, workers, processes = setup
    database_url = await pg.create_database(f"scaling_{label}", migrate=False)
    prefix = f"/scaling-{label}-"
    heralds = await _start(workdir, database_url, workers, processes, dispatcher=False)
    try:
        for i in range(3):
            await create_webhook(
                session, heralds[0].base_url, f"{label} {i}", f"{receiver.base_url}{prefix}{i}", MAIN_TYPE
            )
        single = await _single(session, heralds, options)
        batch = await _batches(session, heralds, options.batches)
        await _record_backlog(session, heralds[0], database_url, options.drain_events)
    finally:
        _stop(heralds)
    base = await arrival_counts(session, receiver, [prefix])
    senders = await _start(workdir, database_url, workers, processes, dispatcher=True)
    try:
        drain = await watch_drain(
            session,
            receiver,
            [prefix],
            3 * options.drain_events,
            meter=_meter(senders),
            herald_pid=senders[0].child.pid,
            base=base,
            stall_s=90.0,
        )
    finally:
        _stop(senders)
    return {
        "workers": workers,
        "processes": processes,
        "single_ingest": _summary(single),
        "batch_ingest": _summary(batch),
        "deliveries": _summary(drain.rate)
        | {"arrived": drain.delivered, "duplicates": drain.delivered - drain.unique},
    }


async def scaling(
    session: aiohttp.ClientSession, workdir: Path, pg: Postgres, receiver: Receiver, options: ScalingOptions
) -> dict[str, Any]:
    """Each of ``SETUPS`` in turn, with the ratios of each to one process with one worker."""
    figures = {setup[0]: await one_setup(session, workdir, pg, receiver, setup, options) for setup in SETUPS}
    one = figures["workers_1"]
    for figure in figures.values():
        figure["ratios_to_one"] = {
            part: round(figure[part]["per_s"] / one[part]["per_s"], 2) if one[part]["per_s"] else None
            for part in ("single_ingest", "batch_ingest", "deliveries")
        }
    return figures
