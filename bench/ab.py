"""``uv run python -m bench.ab --other PATH``: sustained deliveries of this checkout beside another's.

``PATH`` is another checkout of Herald, usually ``git worktree add /tmp/before <commit>``; it runs
on this checkout's environment (the two must share their dependencies). Each round drains the
same backlog (three webhooks under the receiver's ``/w`` paths, as ``python -m bench`` does) once
with each checkout's ``herald serve``, alternating (this, other, this, other, ...), so that the
machine's noise falls on both. Every drain has a database of its own, migrated by that
checkout's Herald. Prints each round's deliveries/s, the medians and their ratio (this / other)
and writes ``bench/ab_results.json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

from bench import delivery_figures
from bench.infra import (
    IDLE_CONNECTION_S,
    Postgres,
    Receiver,
    child_env,
    start_herald,
    start_receiver,
)
from bench.load import arrival_counts, post_batch
from bench.workload import MAIN_TYPE, batch_body, main_event

HERE = Path(__file__).resolve().parents[1]
RESULTS_PATH = Path(__file__).with_name("ab_results.json")


def _commit(tree: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _imports_from(tree: Path) -> None:
    """Fail unless ``service`` imports from ``tree`` with the environment its Herald gets."""
    found = subprocess.run(
        [sys.executable, "-c", "import service; print(service.__file__)"],
        env=child_env({"PYTHONPATH": str(tree)}),
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(tree):
        raise RuntimeError(f"service imports from {found}, not from {tree}")


async def _drain(
    session: aiohttp.ClientSession, pg: Postgres, receiver: Receiver, tree: Path, workdir: Path, events: int
) -> dict[str, Any]:
    """One drain of ``3 * events`` deliveries by ``tree``'s Herald on a database of its own."""
    database = await pg.create_database(f"ab_{tree.name}", migrate=False)  # herald serve migrates
    herald = await start_herald(workdir, database, dispatcher=False, tree=tree)
    try:
        for i in range(3):
            await delivery_figures.create_webhook(
                session, herald.base_url, f"ab {i}", f"{receiver.base_url}/w{i}", MAIN_TYPE
            )
        for start in range(0, events, 1000):
            body = batch_body([main_event() for _ in range(min(1000, events - start))])
            await post_batch(session, herald.base_url, body)
    finally:
        herald.child.stop()
    await delivery_figures.settle(database)
    backlog = 3 * events
    base = await arrival_counts(session, receiver, ["/w"])
    herald = await start_herald(workdir, database, dispatcher=True, tree=tree)
    try:
        return await delivery_figures.sustained(
            session, herald, receiver, backlog, backlog + 1, database, base
        )
    finally:
        herald.child.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    trees = {"this": HERE, "other": Path(args.other).resolve()}
    for tree in trees.values():
        _imports_from(tree)
    workdir = Path(tempfile.mkdtemp(prefix="herald-ab-"))
    pg = Postgres(workdir)
    await pg.start()
    receiver = await start_receiver(workdir)
    rounds: list[dict[str, float]] = []
    try:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=IDLE_CONNECTION_S)
        async with aiohttp.ClientSession(connector=connector) as session:
            for number in range(args.rounds):
                figures: dict[str, float] = {}
                for side, tree in trees.items():
                    drain = await _drain(session, pg, receiver, tree, workdir, args.events)
                    if drain["arrived"] < 3 * args.events:
                        raise RuntimeError(f"{side}: {drain['arrived']} of {3 * args.events} arrived")
                    figures[side] = drain["per_s"]
                    print(f"round {number + 1}: {side:5} {drain['per_s']:,.0f} deliveries/s", flush=True)
                rounds.append(figures)
    finally:
        receiver.child.stop()
        await pg.stop()
    medians = {side: statistics.median(r[side] for r in rounds) for side in trees}
    return {
        "command": " ".join(["python -m bench.ab", *sys.argv[1:]]),
        "commits": {side: _commit(tree) for side, tree in trees.items()},
        "deliveries_per_round": 3 * args.events,
        "rounds": rounds,
        "median_per_s": medians,
        "ratio": round(medians["this"] / medians["other"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--other", required=True, help="the other checkout (a git worktree)")
    parser.add_argument("--events", type=int, default=20_000, help="events per drain, 3 deliveries each")
    parser.add_argument("--rounds", type=int, default=2, help="drains per checkout (2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 2,000 events")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.rounds = 2_000, 1
    results = uvloop.run(run(args))
    print(
        f"| sustained deliveries (/s), median of {args.rounds} | this {results['commits']['this']}: "
        f"{results['median_per_s']['this']:,.0f} | other {results['commits']['other']}: "
        f"{results['median_per_s']['other']:,.0f} | {results['ratio']:.2f}x |"
    )
    if not args.quick:
        RESULTS_PATH.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
