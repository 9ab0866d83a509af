"""The benchmark's load helpers count what they send (bench/ is measured by its own numbers)."""

from __future__ import annotations

import asyncio

from bench.infra import CpuMeter
from bench.load import run_batches


async def test_run_batches_counts_every_batch_of_concurrent_workers() -> None:
    async def send(index: int) -> int:
        await asyncio.sleep(0.001 * (index % 3))  # workers finish out of step
        return 1000

    rate = await run_batches(send, batches=20, concurrency=4, meter=CpuMeter({}))
    assert rate.count == 20_000
