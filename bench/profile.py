"""Profile Herald under one benchmark load with py-spy (``uv run --with py-spy python -m bench.profile``).

``python -m bench.profile ingest|batch|deliveries [--seconds S] [--out DIR]`` starts PostgreSQL,
the receiver and Herald as ``python -m bench`` does, puts the chosen load on Herald and
records it with ``py-spy record`` (collapsed stacks, ``DIR/<load>.txt``), then prints the
functions with the most samples: where they are themselves (self) and below them (total).
Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import aiohttp
import orjson
import uvloop

from bench.delivery_figures import create_webhook
from bench.infra import IDLE_CONNECTION_S, CpuMeter, Postgres, start_herald, start_receiver
from bench.load import closed_loop, run_batches
from bench.workload import JSON_HEADERS, MAIN_TYPE, batch_body, main_event


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy not found: run with `uv run --with py-spy python -m bench.profile ...`")
    return found


def summarize(stacks_path: Path, top: int) -> str:
    """Self and total samples per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in stacks_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")" for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples"]
    for title, counter in (("self", own), ("total", total)):
        lines.append(f"-- top {top} by {title} --")
        lines += [f"{100 * n / samples:5.1f}%  {name}" for name, n in counter.most_common(top)]
    return "\n".join(lines)


async def run(load: str, seconds: float, out: Path, top: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="herald-profile-"))
    pg = Postgres(workdir)
    await pg.start()
    children = []
    try:
        receiver = await start_receiver(workdir)
        children.append(receiver.child)
        database = await pg.create_database("profile", migrate=False)
        herald = await start_herald(workdir, database, dispatcher=False)
        children.append(herald.child)
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=IDLE_CONNECTION_S)
        async with aiohttp.ClientSession(connector=connector) as session:
            for i in range(3):
                await create_webhook(
                    session, herald.base_url, f"p{i}", f"{receiver.base_url}/w{i}", MAIN_TYPE
                )
            if load == "deliveries":
                body = batch_body([main_event() for _ in range(1000)])
                for _ in range(int(seconds * 2)):  # ~ a backlog of 6,000 deliveries per second of profile
                    async with session.post(f"{herald.base_url}/api/v1/events/batch", data=body) as r:
                        assert r.status == 202, await r.text()
                herald.child.stop()
                herald = await start_herald(workdir, database, dispatcher=True)
                children.append(herald.child)
            stacks = out / f"{load}.txt"
            spy = subprocess.Popen(
                [py_spy(), "record", "--pid", str(herald.child.pid), "--duration", str(int(seconds)),
                 "--rate", "250", "--format", "raw", "--output", str(stacks), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            meter = CpuMeter({"herald": [herald.child.pid]})
            if load == "ingest":
                rate = await closed_loop(
                    session,
                    f"{herald.base_url}/api/v1/events",
                    orjson.dumps(main_event()),
                    clients=64,
                    seconds=seconds,
                    warmup_s=0.0,
                    meter=meter,
                )
                print(f"{rate.per_s:.0f} events/s; CPU {rate.cpu}")
            elif load == "batch":
                body = batch_body([main_event() for _ in range(1000)])

                async def send(_: int) -> int:
                    async with session.post(
                        f"{herald.base_url}/api/v1/events/batch", data=body, headers=JSON_HEADERS
                    ) as r:
                        await r.read()
                    return 1000

                rate = await run_batches(send, int(seconds * 2), 2, meter)
                print(f"{rate.per_s:.0f} events/s; CPU {rate.cpu}")
            else:
                meter.start()
            await asyncio.to_thread(spy.wait)
            if load == "deliveries":
                print(f"{await receiver.count(session, '/w')} deliveries received; CPU {meter.stop()}")
        print(summarize(stacks, top))
        print(f"collapsed stacks: {stacks}")
    finally:
        for child in children:
            child.stop()
        await pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("load", choices=("ingest", "batch", "deliveries"))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    uvloop.run(run(args.load, args.seconds, args.out, args.top))


if __name__ == "__main__":
    main()
