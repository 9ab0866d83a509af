"""``uv run python -m bench``: Herald's figures beside raw baselines, measured in one run.

Starts PostgreSQL (embedded, or ``HERALD_DATABASE_URL``'s server: the run creates its own
databases there and drops them at the end), a fast webhook receiver process, Herald
(``herald serve``) as a subprocess and the raw baselines, all on 127.0.0.1; the load is
generated from this process. Prints one table and writes ``bench/results.json``.

Order: ingest figures (Herald's dispatcher off, so delivery does not compete for the CPU; the
events they record leave the delivery backlog), naive send loops, then a second Herald with
the dispatcher on drains the backlog (throughput and memory), then idle latency, the healthy
endpoint beside a hanging one, drains signed with a secret encrypted at rest beside the same
drains with it in plain text, several Herald processes (``--workers 2``, two replicas) beside
one, the claim query on a database of its own, and last the custom-type figures (a custom type
beside the catalog's main type, on a Herald of their own).
``--quick`` is a smoke run (< 60 s) whose figures are not assessed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import asyncpg
import orjson
import uvloop

from bench import claim_figures, custom_figures, delivery_figures, ingest_figures, outage, report, scaling
from bench.infra import (
    IDLE_CONNECTION_S,
    Child,
    Herald,
    Postgres,
    Receiver,
    child_env,
    free_port,
    python_module,
    rss_mib,
    spawn,
    start_herald,
    start_receiver,
    wait_http,
)
from bench.load import arrival_counts, post_batch
from bench.workload import MAIN_TYPE, batch_body, main_event
from service.db import asyncpg_dsn

RESULTS_PATH = Path(__file__).with_name("results.json")
# A smoke run must not overwrite the figures of a real one.
QUICK_RESULTS_PATH = Path(tempfile.gettempdir()) / "herald-bench-quick.json"
STARTED_AT = time.monotonic()
PARTS = ("ingest", "deliveries", "secrets", "scaling", "claims", "custom", "outage")


def step(message: str) -> None:
    print(f"[{time.monotonic() - STARTED_AT:6.1f} s] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, < 60 s, goals not assessed")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only these parts (repeatable)")
    parser.add_argument("--rounds", type=int, help="runs per ingest figure; the median is reported (3)")
    parser.add_argument("--seconds", type=float, help="length of one single-ingest run (8)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent single-ingest clients (64)")
    parser.add_argument("--batches", type=int, help="1000-event batches per batch-ingest run (10)")
    parser.add_argument("--batch-concurrency", type=int, default=2, help="batches in flight (2)")
    parser.add_argument("--memory-mark", type=int, help="deliveries before reading Herald's memory (100000)")
    parser.add_argument("--naive-seconds", type=float, help="length of each naive send loop (5)")
    parser.add_argument("--latency-samples", type=int, help="idle ingest → receipt samples (200)")
    parser.add_argument("--isolation-events", type=int, help="healthy endpoint's backlog per run (20000)")
    parser.add_argument("--isolation-rounds", type=int, help="alone / beside-hanging run pairs (5)")
    parser.add_argument("--ordered-events", type=int, help="backlog of the ordered webhook (1000)")
    parser.add_argument("--secrets-events", type=int, help="backlog per secrets-at-rest drain (20000)")
    parser.add_argument("--secrets-rounds", type=int, help="plain / encrypted run pairs (3)")
    parser.add_argument("--scaling-seconds", type=float, help="single-ingest run per scaling set-up (8)")
    parser.add_argument("--scaling-drain", type=int, help="events drained per scaling set-up (20000)")
    parser.add_argument("--claim-sizes", help="small,large not-yet-due rows (10000,1000000)")
    parser.add_argument("--claims", type=int, help="timed claims per size (200)")
    parser.add_argument("--outage-events", type=int, help="healthy webhook's backlog per outage run (20000)")
    parser.add_argument("--refill-events", type=int, help="events for the three 20 ms webhooks (6000)")
    parser.add_argument("--outage-rounds", type=int, help="alone / beside-50-hanging run pairs (3)")
    parser.add_argument(
        "--output", type=Path, help=f"results file ({RESULTS_PATH}; with --quick, {QUICK_RESULTS_PATH})"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults: dict[str, Any] = {
        "rounds": 1 if quick else 3,
        "seconds": 1.0 if quick else 8.0,
        "batches": 1 if quick else 10,
        "memory_mark": 3_000 if quick else 100_000,
        "naive_seconds": 1.0 if quick else 5.0,
        "latency_samples": 15 if quick else 200,
        # Enough that the backlog outlasts the drain watcher's sampling even at quick-mode sizes.
        "isolation_events": 2_000 if quick else 20_000,
        "isolation_rounds": 1 if quick else 5,
        "secrets_events": 2_000 if quick else 20_000,
        "ordered_events": 100 if quick else 1_000,
        "secrets_rounds": 1 if quick else 3,
        "scaling_seconds": 1.0 if quick else 8.0,
        "scaling_drain": 1_000 if quick else 20_000,
        "claim_sizes": "10000,50000" if quick else "10000,1000000",
        "claims": 20 if quick else 200,
        "outage_events": 2_000 if quick else 20_000,
        "refill_events": 600 if quick else 6_000,
        "outage_rounds": 1 if quick else 3,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.only = set(args.only or PARTS)
    args.output = args.output or (QUICK_RESULTS_PATH if quick else RESULTS_PATH)
    return args


async def start_raw_app(workdir: Path, database_url: str, subscribers: list[UUID]) -> tuple[Child, str]:
    port = free_port()
    env = child_env(
        {"BENCH_RAW_DATABASE_URL": database_url, "BENCH_RAW_SUBSCRIBERS": ",".join(map(str, subscribers))}
    )
    child = spawn("raw-app", python_module("bench.raw_app", "--port", str(port)), workdir, env)
    base_url = f"http://127.0.0.1:{port}"
    await wait_http(child, f"{base_url}/health")
    return child, base_url


async def pending_deliveries(database_url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM deliveries WHERE status = 'pending'"))
    finally:
        await conn.close()


async def top_up(session: aiohttp.ClientSession, herald: Herald, database_url: str, wanted: int) -> int:
    """Ingest more batches (untimed) until ``wanted`` deliveries wait; return how many wait."""
    body = batch_body([main_event() for _ in range(1000)])
    backlog = await pending_deliveries(database_url)
    while backlog < wanted:
        await post_batch(session, herald.base_url, body)
        backlog = await pending_deliveries(database_url)
    return backlog


def ingest_options(args: argparse.Namespace) -> ingest_figures.IngestOptions:
    return ingest_figures.IngestOptions(
        rounds=args.rounds,
        seconds=args.seconds,
        warmup_s=0.5 if args.quick else 1.5,
        clients=args.clients,
        batches=args.batches,
        batch_size=1000,
        batch_concurrency=args.batch_concurrency,
    )


async def ingest_part(
    args: argparse.Namespace, session: aiohttp.ClientSession, pg: Postgres, herald: Herald, workdir: Path
) -> dict[str, Any]:
    options = ingest_options(args)
    raw_db = await pg.create_database("raw")
    raw_subscribers = [uuid4() for _ in range(3)]
    raw_app, raw_url = await start_raw_app(workdir, raw_db, raw_subscribers)
    try:
        step("  single-event ingest ...")
        single = await ingest_figures.single_ingest(
            session,
            f"{herald.base_url}/api/v1/events",
            f"{raw_url}/events",
            options,
            herald.child.pid,
            raw_app.pid,
        )
        step("  batch ingest ...")
        batch = await ingest_figures.batch_ingest(
            session, herald.base_url, raw_url, raw_db, raw_subscribers, options, herald.child.pid, raw_app.pid
        )
    finally:
        raw_app.stop()
    return {"single_ingest": single, "batch_ingest": batch}


async def deliveries_part(
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    herald_db: str,
    receiver: Receiver,
    workdir: Path,
    backlog: int,
) -> dict[str, Any]:
    step("  naive send loops ...")
    naive = {
        f"naive_{name.replace('-', '_')}": await delivery_figures.naive_loop(
            receiver, name, args.naive_seconds, 64, 0.5 if args.quick else 1.0
        )
        for name in ("httpx", "httpx-aiohttp")
    }
    step(f"  draining {backlog:,} deliveries ...")
    base = await arrival_counts(session, receiver, ["/w"])
    herald = await start_herald(workdir, herald_db, dispatcher=True)
    try:
        sustained = await delivery_figures.sustained(
            session, herald, receiver, backlog, args.memory_mark, herald_db, base
        )
        step("  idle latency (after VACUUM and CHECKPOINT) ...")
        await delivery_figures.settle(herald_db)
        latency = await delivery_figures.latency(session, herald, receiver, args.latency_samples, 0.05)
        step(f"  memory after twice {args.isolation_events:,} more deliveries ...")
        more = [
            await delivery_figures.more_deliveries(session, herald, receiver, args.isolation_events)
            for _ in range(2)
        ]
    finally:
        herald.child.stop()
    step(f"  healthy endpoint beside a hanging one ({args.isolation_rounds} rounds) ...")
    isolation = await delivery_figures.isolation(
        session, workdir, herald_db, receiver, args.isolation_events, args.isolation_rounds
    )
    step(f"  one ordered webhook, 5 ms receiver ({args.ordered_events:,} events) ...")
    ordered = await delivery_figures.ordered_webhook(
        session, workdir, herald_db, receiver, args.ordered_events
    )
    return {
        "ordered": ordered,
        "deliveries": {
            "sustained": sustained,
            **naive,
            "more": more,
        },
        "latency": latency,
        "isolation": isolation,
    }


async def secrets_part(
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    herald_db: str,
    receiver: Receiver,
    workdir: Path,
) -> dict[str, Any]:
    figures = await delivery_figures.secrets_at_rest(
        session, workdir, herald_db, receiver, args.secrets_events, args.secrets_rounds
    )
    return {"secrets": figures}


async def scaling_part(
    args: argparse.Namespace, session: aiohttp.ClientSession, workdir: Path, pg: Postgres, receiver: Receiver
) -> dict[str, Any]:
    options = scaling.ScalingOptions(
        seconds=args.scaling_seconds,
        clients=args.clients,
        batches=1 if args.quick else 10,
        drain_events=args.scaling_drain,
    )
    return {"scaling": await scaling.scaling(session, workdir, pg, receiver, options)}


async def claims_part(pg: Postgres, sizes: tuple[int, int], count: int) -> dict[str, Any]:
    return {"claims": await claim_figures.claim_figure(pg, sizes, count, 64)}


async def outage_part(
    args: argparse.Namespace, session: aiohttp.ClientSession, pg: Postgres, receiver: Receiver, workdir: Path
) -> dict[str, Any]:
    database = await pg.create_database("outage", migrate=False)  # herald serve migrates
    figures = await outage.outage(
        session,
        workdir,
        database,
        receiver,
        events=args.outage_events,
        refill_events=args.refill_events,
        ordered_events=args.ordered_events,
        rounds=args.outage_rounds,
    )
    step(f"  {orjson.dumps(figures).decode()}")
    return figures


async def custom_part(
    args: argparse.Namespace, session: aiohttp.ClientSession, pg: Postgres, receiver: Receiver, workdir: Path
) -> dict[str, Any]:
    database = await pg.create_database("custom", migrate=False)  # herald serve migrates
    herald = await start_herald(workdir, database, dispatcher=False)
    try:
        return await custom_figures.custom_figures(session, herald, receiver.base_url, ingest_options(args))
    finally:
        herald.child.stop()


async def guarded(results: dict[str, Any], part: str, work: Awaitable[dict[str, Any]]) -> None:
    """Run one part; a failure is recorded (and printed) and the run goes on with the next."""
    try:
        results |= await work
    except Exception:
        trace = traceback.format_exc()
        results.setdefault("failures", {})[part] = trace
        step(f"  {part} FAILED:\n{trace}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    pg = Postgres(workdir)
    results: dict[str, Any] = {"machine": report.machine(), "quick": args.quick}
    children: list[Child] = []
    ok = False
    started = time.monotonic()
    try:
        await pg.start()
        results["postgres"] = await pg.server_facts() | {"server": pg.description}
        print(
            f"PostgreSQL {results['postgres']['version']} ({pg.description}); work dir {workdir}", flush=True
        )
        receiver = await start_receiver(workdir)
        children.append(receiver.child)
        # uvicorn closes a keep-alive connection idle for 5 s; aiohttp keeps one 15 s by default,
        # so a request on a connection left idle between parts could meet the server's close
        # mid-body ("Can not write request body"). Idle connections are dropped first here.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=IDLE_CONNECTION_S)
        async with aiohttp.ClientSession(connector=connector) as session:
            if args.only & {"ingest", "deliveries", "secrets"}:
                herald_db = await pg.create_database("herald", migrate=False)  # herald serve migrates
                herald = await start_herald(workdir, herald_db, dispatcher=False)
                children.append(herald.child)
                results["herald_rss_idle_start_mib"] = round(rss_mib(herald.child.pid), 1)
                for i in range(3):
                    await delivery_figures.create_webhook(
                        session, herald.base_url, f"bench {i}", f"{receiver.base_url}/w{i}", MAIN_TYPE
                    )
                if "ingest" in args.only:
                    step("ingest figures (dispatcher off):")
                    await guarded(results, "ingest", ingest_part(args, session, pg, herald, workdir))
                if "deliveries" in args.only:
                    backlog = await top_up(session, herald, herald_db, args.memory_mark)
                herald.child.stop()
                if "deliveries" in args.only:
                    step("delivery figures:")
                    await guarded(
                        results,
                        "deliveries",
                        deliveries_part(args, session, herald_db, receiver, workdir, backlog),
                    )
                if "secrets" in args.only:
                    step(f"secrets at rest: plain / encrypted drains ({args.secrets_rounds} rounds) ...")
                    await guarded(
                        results, "secrets", secrets_part(args, session, herald_db, receiver, workdir)
                    )
            if "scaling" in args.only:
                step("several processes: --workers 1 and 2, two replicas ...")
                await guarded(results, "scaling", scaling_part(args, session, workdir, pg, receiver))
            if "claims" in args.only:
                step("claim query:")
                small, large = (int(s) for s in args.claim_sizes.split(","))
                await guarded(results, "claims", claims_part(pg, (small, large), args.claims))
            if "outage" in args.only:
                step("outage: a healthy webhook beside 50 and 200 hanging ones; 20 ms receivers; ordered ...")
                await guarded(results, "outage", outage_part(args, session, pg, receiver, workdir))
            if "custom" in args.only:
                step("custom-type figures (dispatcher off):")
                await guarded(results, "custom", custom_part(args, session, pg, receiver, workdir))
        results["anomalies"] = report.anomalies(results)
        ok = "failures" not in results and not results["anomalies"]
    finally:
        for child in children:
            child.stop()
        await pg.stop()
        results["seconds"] = round(time.monotonic() - started, 1)
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            results["logs"] = str(workdir)
            print(f"failures or anomalies: the processes' logs are kept in {workdir}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = uvloop.run(run(args))
    results["command"] = "uv run python -m bench " + " ".join(sys.argv[1:])
    args.output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    m = results["machine"]
    print()
    print(
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; Herald, PostgreSQL, the "
        "receiver and the load generator share these cores. PostgreSQL "
        f"{results.get('postgres', {}).get('version', '?')}. Run took {results['seconds']} s."
    )
    print(report.markdown(results, assess=not args.quick))
    print(report.noise(results))
    for anomaly in results.get("anomalies", []):
        print(f"ANOMALY: {anomaly}")
    print(f"CPU shares (% of one core) and details: {args.output}")
    for part in results.get("failures", {}):
        print(f"FAILED: {part} (see {args.output})", file=sys.stderr)
    return 1 if "failures" in results else 0


if __name__ == "__main__":
    sys.exit(main())
