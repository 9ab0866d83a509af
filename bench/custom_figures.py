"""Custom-type figures: ingest of a custom type (a ten-field schema) beside the catalog's main
type in the same run, single and batch, and the cost of the schema check alone.

Both types have the same three matching webhooks, so the two differ only in what ingest does
for them. The schema check alone is timed in this process, on the same compiled validator
Herald uses (``service.core.custom_schemas.compile_schema``) and the same ``data``; it is set
beside Herald's CPU time per custom event (its CPU share over the run divided by the events
it recorded), which is what it must stay under a fifth of.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson

from bench.infra import CpuMeter, Herald
from bench.ingest_figures import IngestOptions
from bench.load import Rate, closed_loop, median_rate, post_batch, rates_summary, run_batches
from bench.workload import (
    CUSTOM_SCHEMA,
    CUSTOM_TYPE,
    MAIN_TYPE,
    batch_body,
    custom_data,
    custom_event,
    main_event,
)
from service.core.custom_schemas import compile_schema

WEBHOOKS = 3
SCHEMA_CHECK_ROUNDS = 5
SCHEMA_CHECKS_PER_ROUND = 20_000


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with session.post(url, json=body) as response:
        if response.status != 201:
            raise RuntimeError(f"POST {url}: {response.status} {await response.text()}")


async def prepare(session: aiohttp.ClientSession, herald: Herald, receiver_url: str) -> None:
    """The custom type, and three webhooks that each hear of both types."""
    description = "An order was placed."
    body = {"name": CUSTOM_TYPE, "description": description, "schema": CUSTOM_SCHEMA}
    await _post(session, f"{herald.base_url}/api/v1/event-types", body)
    subscriptions = [{"event_type": MAIN_TYPE}, {"event_type": CUSTOM_TYPE}]
    for i in range(WEBHOOKS):
        hook = {"name": f"custom bench {i}", "url": f"{receiver_url}/c{i}", "subscriptions": subscriptions}
        await _post(session, f"{herald.base_url}/api/v1/subscribers/webhooks", hook)


def _in_turn(bodies: dict[str, bytes], round_number: int) -> list[tuple[str, bytes]]:
    # Each type goes first in every other round: neither always gets the warmer (or noisier) slot.
    items = list(bodies.items())
    return items if round_number % 2 == 0 else items[::-1]


def _summary(rates: list[Rate]) -> dict[str, Any]:
    median = median_rate(rates)
    herald_cpu = median.cpu.get("herald", 0.0)
    cpu_us = 1e6 * herald_cpu / 100 / median.per_s if median.per_s else None
    return rates_summary(rates) | {
        "cpu_percent_of_median_run": median.cpu,
        "herald_cpu_us_per_event": round(cpu_us, 1) if cpu_us is not None else None,
    }


async def single(session: aiohttp.ClientSession, herald: Herald, options: IngestOptions) -> dict[str, Any]:
    """Rounds of the catalog type then the custom type, each ``seconds`` long, ``clients`` in flight."""
    url = f"{herald.base_url}/api/v1/events"
    bodies = {"catalog": orjson.dumps(main_event()), "custom": orjson.dumps(custom_event())}
    rates: dict[str, list[Rate]] = {name: [] for name in bodies}
    for round_number in range(options.rounds):
        for name, body in _in_turn(bodies, round_number):
            meter = CpuMeter({"herald": [herald.child.pid]})
            rates[name].append(
                await closed_loop(
                    session,
                    url,
                    body,
                    clients=options.clients,
                    seconds=options.seconds,
                    warmup_s=options.warmup_s,
                    meter=meter,
                )
            )
    return {name: _summary(found) for name, found in rates.items()}


async def batch(session: aiohttp.ClientSession, herald: Herald, options: IngestOptions) -> dict[str, Any]:
    """Rounds of ``batches`` requests of ``batch_size`` events, catalog type then custom type."""
    size = options.batch_size
    bodies = {
        "catalog": batch_body([main_event() for _ in range(size)]),
        "custom": batch_body([custom_event() for _ in range(size)]),
    }
    rates: dict[str, list[Rate]] = {name: [] for name in bodies}
    for round_number in range(options.rounds):
        for name, body in _in_turn(bodies, round_number):

            async def send(_: int, body: bytes = body) -> int:
                await post_batch(session, herald.base_url, body)
                return size

            meter = CpuMeter({"herald": [herald.child.pid]})
            rates[name].append(await run_batches(send, options.batches, options.batch_concurrency, meter))
    return {name: _summary(found) for name, found in rates.items()}


def schema_check_us() -> float:
    """The median time of one check of the bench's ``data`` (µs), as ingest does it."""
    validator = compile_schema(CUSTOM_SCHEMA)
    data = orjson.loads(orjson.dumps(custom_data()))  # as pydantic hands it over: parsed JSON
    assert validator.is_valid(data)
    rounds: list[float] = []
    for _ in range(SCHEMA_CHECK_ROUNDS):
        started = time.perf_counter()
        for _ in range(SCHEMA_CHECKS_PER_ROUND):
            validator.is_valid(data)
        rounds.append((time.perf_counter() - started) / SCHEMA_CHECKS_PER_ROUND * 1e6)
    return round(sorted(rounds)[len(rounds) // 2], 2)


async def custom_figures(
    session: aiohttp.ClientSession, herald: Herald, receiver_url: str, options: IngestOptions
) -> dict[str, Any]:
    """Everything above, with the schema check's share of Herald's CPU per custom event."""
    await prepare(session, herald, receiver_url)
    figures: dict[str, Any] = {
        "single": await single(session, herald, options),
        "batch": await batch(session, herald, options),
        "schema_check_us": schema_check_us(),
    }
    for mode in ("single", "batch"):
        per_event = figures[mode]["custom"]["herald_cpu_us_per_event"]
        share = figures["schema_check_us"] / per_event if per_event else None
        figures[f"schema_check_share_{mode}"] = round(share, 4) if share is not None else None
    return {"custom_types": figures}
