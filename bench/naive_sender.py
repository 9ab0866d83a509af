"""The raw baselines of webhook delivery: a naive send loop, run as its own process.

``python -m bench.naive_sender --url U --seconds S --transport httpx|httpx-aiohttp`` keeps
``--in-flight`` POSTs of a webhook-sized JSON body going to ``U`` from one asyncio process
(uvloop, as Herald) and prints ``{"sent", "failed", "seconds", "cpu_percent"}``. No database,
no signing, no bookkeeping: the HTTP client alone. ``httpx`` is the stock client (httpcore
transport); ``httpx-aiohttp`` is the same client on the transport Herald sends through, built
by the same function (``httpx-aiohttp`` on an aiohttp session, behind the private-address guard,
here allowing the loopback receiver). Both get a pool as large as the number in flight, so no
connection is opened twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import httpx
import orjson
import uvloop

from bench.workload import main_event
from service.delivery.http import guarded_transport


def client_for(transport: str, in_flight: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    if transport == "httpx":
        return httpx.AsyncClient(limits=limits, timeout=15.0)
    guarded = guarded_transport(
        verify=httpx.create_ssl_context(verify=True), allow_private=True, max_connections=in_flight
    )
    return httpx.AsyncClient(transport=guarded, timeout=15.0)


async def run(url: str, seconds: float, transport: str, in_flight: int, warmup_s: float) -> dict[str, float]:
    body = orjson.dumps(
        {"delivered_for": {"uuid": "x", "name": "bench", "type": "webhook"}, "event": main_event()}
    )
    headers = {"content-type": "application/json", "webhook-id": "naive"}
    sent = failed = 0
    counting = True
    stop = False

    async with client_for(transport, in_flight) as client:

        async def sender() -> None:
            nonlocal sent, failed
            while not stop:
                try:
                    response = await client.post(url, content=body, headers=headers)
                    ok = response.is_success
                except httpx.HTTPError:
                    ok = False
                if counting:
                    if ok:
                        sent += 1
                    else:
                        failed += 1

        tasks = [asyncio.create_task(sender()) for _ in range(in_flight)]
        counting = False
        await asyncio.sleep(warmup_s)
        sent = failed = 0
        counting = True
        cpu_start = sum(os.times()[:2])
        start = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - start
        result = {"sent": sent, "failed": failed, "seconds": elapsed}
        result["cpu_percent"] = round(100 * (sum(os.times()[:2]) - cpu_start) / elapsed, 1)
        stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="naive webhook send loop (delivery baseline)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--transport", choices=("httpx", "httpx-aiohttp"), required=True)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    result = uvloop.run(run(args.url, args.seconds, args.transport, args.in_flight, args.warmup))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
