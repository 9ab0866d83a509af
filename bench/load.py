"""Load generation: closed-loop HTTP clients with aiohttp, and drain watching at the receiver."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.infra import CpuMeter, Receiver, rss_mib
from bench.workload import JSON_HEADERS


@dataclass
class Rate:
    """Completed operations over a measured window, and who used the CPU meanwhile."""

    count: int
    seconds: float
    errors: int = 0
    first_error: str | None = None
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


async def closed_loop(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    clients: int,
    seconds: float,
    warmup_s: float,
    meter: CpuMeter,
) -> Rate:
    """``clients`` concurrent clients each POSTing ``body`` to ``url`` as soon as the last answered.

    Requests answered during the first ``warmup_s`` are not counted.
    """
    done = errors = 0
    first_error: str | None = None
    counting = False
    stop = False

    async def client() -> None:
        nonlocal done, errors, first_error
        while not stop:
            async with session.post(url, data=body, headers=JSON_HEADERS) as response:
                text = await response.read()
                ok = response.status in (200, 202)
            if not counting:
                continue
            if ok:
                done += 1
            else:
                errors += 1
                first_error = first_error or f"{response.status} {text[:300]!r}"

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    try:
        await asyncio.sleep(warmup_s)
        counting = True
        meter.start()
        start = time.monotonic()
        await asyncio.sleep(seconds)
        count, elapsed = done, time.monotonic() - start
        cpu = meter.stop()
        result = Rate(count, elapsed, errors, first_error, cpu)
    finally:
        stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


async def run_batches(
    send: Callable[[int], Awaitable[int]], batches: int, concurrency: int, meter: CpuMeter
) -> Rate:
    """Call ``send(i)`` for ``i`` in ``range(batches)``, ``concurrency`` at a time; sum what they return."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(batches):
        queue.put_nowait(i)
    total = 0

    async def worker() -> None:
        nonlocal total
        while not queue.empty():
            # Not ``total += await ...``: that reads ``total`` before the await and loses the
            # other workers' additions made meanwhile.
            sent = await send(queue.get_nowait())
            total += sent

    meter.start()
    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - start
    return Rate(total, elapsed, cpu=meter.stop())


async def arrival_counts(
    session: aiohttp.ClientSession, receiver: Receiver, prefixes: Sequence[str]
) -> tuple[int, int]:
    """(requests, distinct webhook-ids) the receiver got on paths starting with ``prefixes``."""
    stats = await receiver.stats(session)
    hits = [v for path, v in stats.items() if path.startswith(tuple(prefixes))]
    return sum(v["count"] for v in hits), sum(v["unique"] for v in hits)


@dataclass
class Drain:
    """How a backlog reached the receiver: sustained rate and the memory of the sender on the way."""

    delivered: int
    unique: int
    rate: Rate
    rss_marks_mib: dict[int, float]
    stalled: bool
    tail_s: float
    """From 95 % of the backlog to its last delivery (or to giving up)."""


async def watch_drain(
    session: aiohttp.ClientSession,
    receiver: Receiver,
    prefixes: Sequence[str],
    expected: int,
    *,
    meter: CpuMeter,
    herald_pid: int,
    base: tuple[int, int] | None = None,
    rss_marks: Sequence[int] = (),
    stall_s: float = 30.0,
    interval_s: float = 0.1,
) -> Drain:
    """Watch arrivals under ``prefixes`` until ``expected`` more than ``base`` came (or none for
    ``stall_s``); ``base`` is (count, unique) read before the backlog was made, else now.

    The rate is the sustained one: between 5 % and 95 % of the backlog, so start-up and the
    tail of the last few in flight do not count. ``rss_marks`` are arrival counts at which
    the sender's resident memory is read.
    """

    async def counts() -> tuple[int, int]:
        return await arrival_counts(session, receiver, prefixes)

    base_count, base_unique = base or await counts()
    low, high = max(1, expected // 20), max(2, expected - expected // 20)
    marks: dict[int, float] = {}
    pending_marks = sorted(rss_marks)
    low_at: tuple[float, int] | None = None
    high_at: tuple[float, int] | None = None
    cpu: dict[str, float] = {}
    last_change = time.monotonic()
    seen = 0
    stalled = False
    while seen < expected:
        await asyncio.sleep(interval_s)
        now = time.monotonic()
        arrived = (await counts())[0] - base_count
        if arrived != seen:
            last_change = now
        seen = arrived
        while pending_marks and seen >= pending_marks[0]:
            marks[pending_marks.pop(0)] = rss_mib(herald_pid)
        if low_at is None and seen >= low:
            low_at = (now, seen)
            meter.start()
        if high_at is None and seen >= high and low_at is not None:
            high_at = (now, seen)
            cpu = meter.stop()
        if now - last_change > stall_s:
            stalled = True
            break
    total, unique = await counts()
    if low_at is not None and high_at is not None and high_at[0] > low_at[0]:
        rate = Rate(high_at[1] - low_at[1], high_at[0] - low_at[0], cpu=cpu)
    else:
        rate = Rate(0, 0.0)
    tail_s = time.monotonic() - high_at[0] if high_at is not None else float("nan")
    return Drain(total - base_count, unique - base_unique, rate, marks, stalled, round(tail_s, 1))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median_rate(rates: Sequence[Rate]) -> Rate:
    """The run with the median rate (its CPU shares come with it)."""
    return sorted(rates, key=lambda r: r.per_s)[(len(rates) - 1) // 2]


def rates_summary(rates: Sequence[Rate]) -> dict[str, Any]:
    return {
        "runs_per_s": [round(r.per_s, 1) for r in rates],
        "median_per_s": round(statistics.median(r.per_s for r in rates), 1),
        "errors": sum(r.errors for r in rates),
        "first_error": next((r.first_error for r in rates if r.first_error), None),
    }


async def post_batch(session: aiohttp.ClientSession, herald_url: str, body: bytes) -> None:
    """POST one ``{"events": [...]}`` body to Herald's batch ingest; anything but 202 raises."""
    async with session.post(f"{herald_url}/api/v1/events/batch", data=body, headers=JSON_HEADERS) as response:
        answer = await response.read()
        if response.status != 202:
            raise RuntimeError(f"batch ingest -> {response.status}: {answer[:300]!r}")


async def post_json(session: aiohttp.ClientSession, url: str, body: Mapping[str, Any]) -> Any:
    async with session.post(url, json=body) as response:
        data = await response.json(content_type=None)
        if response.status >= 300:
            raise RuntimeError(f"POST {url} -> {response.status}: {data}")
        return data
