"""Ingest figures: single events over HTTP beside the raw FastAPI + asyncpg endpoint, and
1000-event batches beside a raw asyncpg COPY of the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import orjson

from bench.infra import CpuMeter
from bench.load import Rate, closed_loop, median_rate, post_batch, rates_summary, run_batches
from bench.workload import (
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    Rows,
    batch_body,
    copy_rows,
    main_event,
)
from service.db import asyncpg_dsn


@dataclass(frozen=True)
class IngestOptions:
    rounds: int
    seconds: float
    warmup_s: float
    clients: int
    batches: int
    batch_size: int
    batch_concurrency: int


async def single_ingest(
    session: aiohttp.ClientSession,
    herald_url: str,
    raw_url: str,
    options: IngestOptions,
    herald_pid: int,
    raw_pid: int,
) -> dict[str, Any]:
    """Rounds of Herald then the raw endpoint, each ``seconds`` long with ``clients`` in flight."""
    body = orjson.dumps(main_event())
    herald: list[Rate] = []
    raw: list[Rate] = []
    for _ in range(options.rounds):
        for target, url, pid in ((herald, herald_url, herald_pid), (raw, raw_url, raw_pid)):
            rate = await closed_loop(
                session,
                url,
                body,
                clients=options.clients,
                seconds=options.seconds,
                warmup_s=options.warmup_s,
                meter=CpuMeter({"server": [pid]}),
            )
            target.append(rate)
    return {
        "herald": rates_summary(herald) | {"cpu_percent_of_median_run": median_rate(herald).cpu},
        "raw": rates_summary(raw) | {"cpu_percent_of_median_run": median_rate(raw).cpu},
    }


async def batch_ingest(
    session: aiohttp.ClientSession,
    herald_url: str,
    raw_url: str,
    raw_database_url: str,
    subscribers: list[UUID],
    options: IngestOptions,
    herald_pid: int,
    raw_pid: int,
) -> dict[str, Any]:
    """Rounds of ``batches`` requests of ``batch_size`` events to Herald, then the same requests to the
    raw COPY endpoint (HTTP, orjson, COPY: the goal's baseline), then the same rows by COPY from
    this process (no HTTP, no parsing: the database's own ceiling)."""
    size = options.batch_size
    body = batch_body([main_event() for _ in range(size)])

    async def send_herald(_: int) -> int:
        await post_batch(session, herald_url, body)
        return size

    async def send_raw(_: int) -> int:
        await post_batch(session, raw_url, body)
        return size

    pool = await asyncpg.create_pool(
        asyncpg_dsn(raw_database_url), min_size=options.batch_concurrency, max_size=options.batch_concurrency
    )
    herald: list[Rate] = []
    endpoint: list[Rate] = []
    raw: list[Rate] = []
    try:
        if options.warmup_s > 0.5:
            await send_herald(0)  # warm up (not in a smoke run: its events would lengthen the drain)
        for _ in range(options.rounds):
            herald.append(
                await run_batches(
                    send_herald,
                    options.batches,
                    options.batch_concurrency,
                    CpuMeter({"herald": [herald_pid]}),
                )
            )
            endpoint.append(
                await run_batches(
                    send_raw, options.batches, options.batch_concurrency, CpuMeter({"raw": [raw_pid]})
                )
            )
            prepared = [copy_rows([main_event()] * size, subscribers) for _ in range(options.batches)]

            async def send_copy(i: int, prepared: list[Rows] = prepared) -> int:
                events, deliveries = prepared[i]
                async with pool.acquire() as conn, conn.transaction():
                    await conn.copy_records_to_table("events", records=events, columns=EVENT_COLUMNS)
                    await conn.copy_records_to_table(
                        "deliveries", records=deliveries, columns=DELIVERY_COLUMNS
                    )
                return size

            raw.append(await run_batches(send_copy, options.batches, options.batch_concurrency, CpuMeter({})))
    finally:
        await pool.close()
    return {
        "herald": rates_summary(herald) | {"cpu_percent_of_median_run": median_rate(herald).cpu},
        "raw_copy_endpoint": rates_summary(endpoint)
        | {"cpu_percent_of_median_run": median_rate(endpoint).cpu},
        "raw_copy": rates_summary(raw) | {"cpu_percent_of_median_run": median_rate(raw).cpu},
    }
