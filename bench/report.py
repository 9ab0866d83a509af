"""The one table of a run, from its results, with each goal checked."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    figure: str
    herald: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _n(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


def _ok(*checks: bool | None) -> bool | None:
    if any(c is None for c in checks):
        return None
    return all(checks)


def _at_least(value: float | None, goal: float) -> bool | None:
    return None if value is None else value >= goal


def _at_most(value: float | None, goal: float) -> bool | None:
    return None if value is None else value <= goal


def _single(r: dict[str, Any]) -> Row:
    herald, raw = r["herald"]["median_per_s"], r["raw"]["median_per_s"]
    ratio = _ratio(herald, raw)
    return Row(
        "single-event HTTP ingest, 3 matching webhooks per event, 64 concurrent clients (events/s)",
        _n(herald),
        f"{_n(raw)} (FastAPI + raw asyncpg, same uvicorn settings)",
        f"{_n(ratio, 2)}x",
        "≥ 0.85x",
        _at_least(ratio, 0.85),
    )


def _batch(r: dict[str, Any]) -> Row:
    herald, raw = r["herald"]["median_per_s"], r["raw_copy_endpoint"]["median_per_s"]
    direct = r["raw_copy"]["median_per_s"]
    ratio = _ratio(herald, raw)
    return Row(
        "batch ingest, 1000 events per request (events/s)",
        _n(herald),
        f"{_n(raw)} (raw endpoint: HTTP, orjson, COPY of the same rows); {_n(direct)} COPY alone",
        f"{_n(ratio, 2)}x",
        "≥ 0.7x",
        _at_least(ratio, 0.7),
    )


def _deliveries(r: dict[str, Any]) -> Row:
    herald = r["sustained"]["per_s"]
    stock, aio = r["naive_httpx"]["per_s"], r["naive_httpx_aiohttp"]["per_s"]
    vs_aio, vs_stock = _ratio(herald, aio), _ratio(herald, stock)
    return Row(
        "sustained webhook deliveries, 1 process, fast receiver (deliveries/s)",
        _n(herald),
        f"(a) {_n(stock)} naive loop, stock httpx, 64 in flight; (b) {_n(aio)} same on httpx-aiohttp",
        f"{_n(vs_aio, 2)}x (b), {_n(vs_stock, 1)}x (a)",
        "≥ 2,500/s, ≥ 0.9x (b), Herald's own HTTP stack",
        _ok(_at_least(herald, 2500), _at_least(vs_aio, 0.9)),
    )


def _latency(r: dict[str, Any]) -> Row:
    p50, p99 = r["herald_p50_ms"], r["herald_p99_ms"]
    return Row(
        "idle ingest → receipt latency (p50 / p99 ms)",
        f"{_n(p50, 1)} / {_n(p99, 1)}",
        f"{_n(r['loopback_p50_ms'], 2)} / {_n(r['loopback_p99_ms'], 2)} (loopback HTTP round trip)",
        "",
        "≤ 10 / ≤ 30 ms",
        _ok(_at_most(p50, 10), _at_most(p99, 30), r["received"] == r["samples"]),
    )


def _isolation(r: dict[str, Any]) -> Row:
    beside, alone = r["beside_hanging"]["per_s"], r["alone"]["per_s"]
    ratio = r["median_ratio"]
    spread = f" (rounds {', '.join(f'{x:.2f}' for x in r['ratios'])})" if len(r["ratios"]) > 1 else ""
    return Row(
        "healthy endpoint beside a hanging one (its deliveries/s; median round)",
        _n(beside),
        f"{_n(alone)} (the same endpoint alone)",
        f"{_n(ratio, 2)}x{spread}",
        "≥ 0.9x",
        _at_least(ratio, 0.9),
    )


def _secrets(r: dict[str, Any]) -> Row:
    encrypted, plain = r["encrypted"]["per_s"], r["plain"]["per_s"]
    ratio = r["median_ratio"]
    spread = f" (rounds {', '.join(f'{x:.2f}' for x in r['ratios'])})" if len(r["ratios"]) > 1 else ""
    return Row(
        "deliveries signed with a secret encrypted at rest (deliveries/s; median round)",
        _n(encrypted),
        f"{_n(plain)} (the same drain, secret stored in plain text)",
        f"{_n(ratio, 2)}x{spread}",
        "≥ 0.95x",
        _at_least(ratio, 0.95),
    )


def _scaling(r: dict[str, Any]) -> Row:
    def three(label: str) -> str:
        f = r[label]
        parts = (f["single_ingest"]["per_s"], f["batch_ingest"]["per_s"], f["deliveries"]["per_s"])
        return " / ".join(_n(p) for p in parts)

    ratios = {label: r[label]["ratios_to_one"] for label in ("workers_2", "replicas_2")}
    shown = "; ".join(
        f"{label.replace('_', ' ')}: " + " / ".join(f"{_n(v, 2)}x" for v in ratio.values())
        for label, ratio in ratios.items()
    )
    return Row(
        "several processes: single / batch ingest / deliveries per s (--workers 2; two replicas)",
        f"{three('workers_2')}; {three('replicas_2')}",
        f"{three('workers_1')} (one process, one worker)",
        shown,
        "reported",
        None,
    )


def _ordered(r: dict[str, Any]) -> Row:
    return Row(
        "one ordered webhook, receiver answering in 5 ms (deliveries/s)",
        _n(r["per_s"]),
        "≤ 200/s: one request at a time, 5 ms each",
        "",
        "reported",
        None if r["arrived"] >= r["events"] else False,
    )


def _outage(r: dict[str, Any]) -> Row:
    ratios = r["ratios_50"]
    spread = f" (rounds {', '.join(f'{x:.2f}' for x in ratios)})" if len(ratios) > 1 else ""
    return Row(
        "healthy webhook beside 50 / 200 webhooks that never answer, from the outage's start "
        "(its deliveries/s; median round)",
        f"{_n(r['beside_50']['per_s'])} / {_n(r['beside_200']['per_s'])}",
        f"{_n(r['alone']['per_s'])} (the same webhook alone)",
        f"{_n(r['ratio_50'], 2)}x{spread} / {_n(r['ratio_200'], 2)}x",
        "≥ 0.9x (50); 200 reported",
        _at_least(r["ratio_50"], 0.9),
    )


def _refill(r: dict[str, Any]) -> Row:
    return Row(
        f"{r['webhooks']} webhooks, receivers answering in {r['receiver_delay_ms']} ms (deliveries/s)",
        _n(r["per_s"]),
        f"{_n(r['slots_allow_per_s'])} (what their 48 slots allow)",
        f"{_n(r['ratio'], 2)}x",
        "≥ 0.9x",
        _at_least(r["ratio"], 0.9),
    )


def _rate_limited(r: dict[str, Any]) -> Row:
    f = r["rate_limited"]
    ratio = _ratio(f["with_median_ms"], f["without_median_ms"])
    return Row(
        f"claim with {f['webhooks']:,} rate-limited webhooks waiting, all with due rows (median ms)",
        _n(f["with_median_ms"], 2),
        f"{_n(f['without_median_ms'], 2)} (the same claim without them)",
        f"{_n(ratio, 2)}x",
        "reported",
        None,
    )


def _claims(r: dict[str, Any]) -> Row:
    small, large = (k for k in r if k.isdigit())
    ratio = _ratio(r[large]["median_ms"], r[small]["median_ms"])
    return Row(
        f"claim query ({r['limit']} rows) with {int(large):,} not-yet-due rows (ms per claim)",
        _n(r[large]["median_ms"], 2),
        f"{_n(r[small]['median_ms'], 2)} (with {int(small):,})",
        f"{_n(ratio, 2)}x",
        "≤ 1.5x",
        _at_most(ratio, 1.5),
    )


def _memory(r: dict[str, Any]) -> Row:
    s = r["sustained"]
    first, second = (m["rss_after_mib"] for m in r["more"])
    return Row(
        f"resident memory of Herald after {s['memory_mark']:,} deliveries (MiB)",
        f"{_n(s['rss_at_mark_mib'], 1)}; drained {_n(s['rss_drained_mib'], 1)}; after "
        f"{_n(r['more'][0]['arrived'])} more {_n(first, 1)}, twice as many {_n(second, 1)}",
        f"{_n(s['rss_start_mib'], 1)} (at start)",
        f"{_n(_ratio(s['rss_at_mark_mib'], s['rss_start_mib']), 2)}x",
        "report; no growth after the backlog drains",
        # The first further round is the process's first ingest (a one-off high-water mark);
        # "no growth" is the second one's memory within 5 % of the first one's.
        second <= 1.05 * first,
    )


def _custom(mode: str, label: str) -> Callable[[dict[str, Any]], Row]:
    def row(r: dict[str, Any]) -> Row:
        custom, catalog = r[mode]["custom"], r[mode]["catalog"]
        share = r[f"schema_check_share_{mode}"]
        return Row(
            f"{label} of a custom type, 10-field schema (events/s; schema check vs Herald CPU per event)",
            f"{_n(custom['median_per_s'])}; check {_n(r['schema_check_us'], 2)} µs of "
            f"{_n(custom['herald_cpu_us_per_event'], 1)} µs",
            f"{_n(catalog['median_per_s'])} (catalog type, {_n(catalog['herald_cpu_us_per_event'], 1)} µs)",
            f"{_n(_ratio(custom['median_per_s'], catalog['median_per_s']), 2)}x; check {_n(share, 3)}",
            "check < 0.2 of the ingest",
            None if share is None else share < 0.2,
        )

    return row


ROWS: list[tuple[str, Callable[[dict[str, Any]], Row]]] = [
    ("single_ingest", _single),
    ("batch_ingest", _batch),
    ("deliveries", _deliveries),
    ("latency", _latency),
    ("isolation", _isolation),
    ("secrets", _secrets),
    ("scaling", _scaling),
    ("ordered", _ordered),
    ("outage", _outage),
    ("refill", _refill),
    ("ordered_pace", _ordered),
    ("claims", _claims),
    ("claims", _rate_limited),
    ("deliveries", _memory),
    ("custom_types", _custom("single", "single-event ingest")),
    ("custom_types", _custom("batch", "batch ingest (1000 per request)")),
]


def rows(results: dict[str, Any]) -> list[Row]:
    return [build(results[key]) for key, build in ROWS if key in results]


def markdown(results: dict[str, Any], *, assess: bool) -> str:
    lines = ["| figure | Herald | baseline (same run) | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for row in rows(results):
        met = ("yes" if row.met else "no" if row.met is not None else "n/a") if assess else "(smoke)"
        lines.append(f"| {row.figure} | {row.herald} | {row.baseline} | {row.ratio} | {row.goal} | {met} |")
    return "\n".join(lines)


def anomalies(results: dict[str, Any]) -> list[str]:
    """What makes a figure untrustworthy whatever its value: errors, losses, duplicates."""
    found: list[str] = []
    parts = {part: results.get(part, {}) for part in ("single_ingest", "batch_ingest")}
    custom = results.get("custom_types", {})
    parts |= {f"custom_types {mode}": custom[mode] for mode in ("single", "batch") if mode in custom}
    for part, sides in parts.items():
        for side, figures in sides.items():
            if figures.get("errors"):
                found.append(
                    f"{part} ({side}): {figures['errors']} failed requests, e.g. {figures['first_error']}"
                )
    deliveries = results.get("deliveries", {})
    drains = {
        "sustained delivery": deliveries.get("sustained"),
    }
    drains |= {f"more deliveries ({i + 1})": more for i, more in enumerate(deliveries.get("more", []))}
    for label, runs in results.get("secrets", {}).get("runs", {}).items():
        drains |= {f"secrets ({label}, round {i + 1})": run for i, run in enumerate(runs)}
    for label, runs in results.get("isolation", {}).get("runs", {}).items():
        drains |= {f"isolation ({label}, round {i + 1})": run for i, run in enumerate(runs)}
    for name, drain in drains.items():
        if drain is None:
            continue
        if drain.get("tail_seconds", 0) > 10:
            found.append(f"{name}: the last 5 % took {drain['tail_seconds']} s to arrive")
        if drain["stalled"]:
            found.append(
                f"{name}: gave up waiting, {drain['arrived']:,} arrived of the backlog; "
                f"deliveries by status then: {drain.get('states_after_drain', '?')}"
            )
        if drain["duplicates"]:
            found.append(f"{name}: {drain['duplicates']} duplicate deliveries")
    latency = results.get("latency")
    if latency and latency["received"] != latency["samples"]:
        found.append(f"latency: {latency['samples'] - latency['received']} events never arrived")
    return found


def _other_shares(value: Any) -> list[float]:
    if isinstance(value, dict):
        found = [float(value["other processes"])] if "other processes" in value else []
        return found + [x for v in value.values() for x in _other_shares(v)]
    return []


def noise(results: dict[str, Any]) -> str:
    """How much CPU processes outside the run took while it measured (a shared machine's noise)."""
    shares = sorted(_other_shares(results))
    if not shares:
        return ""
    median = shares[len(shares) // 2]
    return (
        f"Processes outside the benchmark used a median {median:.0f} % (max {shares[-1]:.0f} %) of one "
        f"core during the measured windows (of {100 * (os.cpu_count() or 1)} % on this machine)."
    )
