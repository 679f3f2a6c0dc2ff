"""Memory per cached case, where it goes, and what an evicted case leaves behind.

One worker of our case workflow with a small cache (``WHN_MAX_CACHED_WORKFLOWS`` =
``cache``) and ``tracemalloc`` on (``BENCH_TRACEMALLOC``, see ``bench.worker``):

1. ``cache`` / 2 cases parked in review (so that what loads once, on first use, such as
   the postcode table, is loaded): RSS and Python's traced bytes;
2. ``cache`` cases parked, every one cached: the growth per cached case over the second
   half, RSS and traced, and the traced growth by file and line (which code's objects a
   cached case holds);
3. ``evicted`` more cases parked: the cache stays full, so as many cases have been
   evicted; the growth per evicted case is what an evicted case leaves behind.

RSS minus traced is memory Python's allocator does not see: the SDK's Rust core (its
own copy of each cached run's state and pending history), and allocator slack. glibc's
``mallinfo2`` splits it further (``glibc_*``): bytes in use in malloc's heaps (the Rust
core, protobuf messages, Python's blocks over 512 bytes), free bytes in them (slack);
with ``PYTHONMALLOC=malloc`` (the ``python_malloc`` measure) every Python object is in
malloc's heaps too, so in-use minus traced is what is not Python's.
tracemalloc's own bookkeeping inflates RSS here, so the RSS per cached case of record is
the parked measure's (no tracemalloc, every case of its first level cached).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from bench.baselines import BaselineCaseWorkflow, BaselineInput
from bench.lifecycle import example_report
from bench.parked import Parking
from bench.stack import ROOT, BenchStack
from domain.case import Timings, receipt_code_for

KIB = 1024


async def _snapshot(pid: int, path: Path) -> dict[str, Any]:
    before = path.stat().st_mtime_ns if path.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 300
    while not path.exists() or path.stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            raise TimeoutError("the worker wrote no tracemalloc snapshot")
        await asyncio.sleep(0.2)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.removeprefix(str(ROOT) + "/")


def _growth(a: dict[str, Any], b: dict[str, Any], per: int, key: str, top: int) -> dict[str, float]:
    grown = {
        name: size - a[key].get(name, 0)
        for name, size in b[key].items()
        if size - a[key].get(name, 0) > 0
    }
    best = sorted(grown.items(), key=lambda kv: -kv[1])[:top]
    return {_short(name): round(size / KIB / per, 2) for name, size in best}


class FloorParking:
    """Floor workflows started and left once they have set their stage (no activities)."""

    def __init__(self, client: Client, task_queue: str, timings: Timings, label: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.timings = timings
        self.label = label
        self.started = 0

    async def park_to(self, total: int, pool: asyncpg.Pool) -> None:
        report = example_report()
        gate = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            r = report.model_copy(update={"submission_id": f"{self.label}-{i}"})
            async with gate:
                await self.client.start_workflow(
                    BaselineCaseWorkflow.run,
                    BaselineInput(
                        report=r,
                        receipt_code=receipt_code_for(r.submission_id),
                        timings=self.timings,
                        timers=False,
                    ),
                    id=f"{self.label}-{i}",
                    task_queue=self.task_queue,
                )

        await asyncio.gather(*(one(i) for i in range(self.started, total)))
        self.started = total
        query = f"TaskQueue = '{self.task_queue}' AND CaseStage = 'awaiting_review'"
        deadline = time.monotonic() + 600
        while (await self.client.count_workflows(query)).count < total:
            if time.monotonic() > deadline:
                raise TimeoutError("floor workflows did not all reach their stage")
            await asyncio.sleep(0.5)


async def bench_memory(
    client: Client,
    stack: BenchStack,
    pool: asyncpg.Pool,
    timings: Timings,
    *,
    cache: int,
    evicted: int,
    concurrency: int,
    env: dict[str, str | None] | None = None,
    label: str = "bench-memory",
    workload: str = "case",
) -> dict[str, Any]:
    """``env``: more of the worker's environment (``MALLOC_ARENA_MAX``, to try; None
    unsets one);
    ``workload`` ``floor``: the floor baseline's workflow parked instead of ours, on the
    same worker configuration (converter, codec, tracing), the engine's own share."""
    trace = stack.dir / f"{label}.json"
    worker = await stack.start_worker(
        workload,
        label,
        extra_env={
            "WHN_MAX_CACHED_WORKFLOWS": str(cache),
            "BENCH_TRACEMALLOC": str(trace),
            **(env or {}),
        },
    )
    try:
        parking: Parking | FloorParking = (
            Parking(
                client,
                stack,
                worker,
                timings,
                concurrency=concurrency,
                prefix=label,
                cache_size=cache,
            )
            if workload == "case"
            else FloorParking(client, worker.task_queue, timings, label)
        )
        half = cache // 2
        await parking.park_to(half, pool)
        await asyncio.sleep(3)
        idle_rss = worker.rss_bytes()
        idle = await _snapshot(worker.pid, trace)
        await parking.park_to(cache, pool)
        await asyncio.sleep(3)
        cached_rss = worker.rss_bytes()
        cached = await _snapshot(worker.pid, trace)
        await parking.park_to(cache + evicted, pool)
        await asyncio.sleep(3)
        after_rss = worker.rss_bytes()
        after = await _snapshot(worker.pid, trace)
    finally:
        await worker.stop()
    grown = cache - half
    traced = (env or {}).get("BENCH_TRACEMALLOC_OFF") != "1"
    rss_cached = (cached_rss - idle_rss) / KIB / grown
    traced_cached = (cached["traced_bytes"] - idle["traced_bytes"]) / KIB / grown
    glibc = {
        f"glibc_{k.removesuffix('_bytes')}_kib_per_cached_case": round(
            (cached["glibc"][k] - idle["glibc"][k]) / KIB / grown, 2
        )
        for k in ("heap_bytes", "in_use_bytes", "free_bytes")
        if k in cached.get("glibc", {}) and k in idle.get("glibc", {})
    }
    # What evicted cases leave held in malloc's heaps (RSS also keeps free memory the
    # allocator has not yet handed back after the parking's peak).
    if "in_use_bytes" in after.get("glibc", {}) and "in_use_bytes" in cached.get("glibc", {}):
        glibc["evicted_glibc_in_use_kib_per_case"] = round(
            (after["glibc"]["in_use_bytes"] - cached["glibc"]["in_use_bytes"]) / KIB / evicted, 2
        )
    if not traced:  # glibc's count alone: no tracemalloc, no Python split
        return {
            "cache": cache,
            "evicted": evicted,
            "worker_rss_half_full_mib": round(idle_rss / KIB / KIB, 1),
            "rss_kib_per_cached_case": round(rss_cached, 2),
            **glibc,
            # RSS outside malloc's heaps: pymalloc's arenas (Python's small objects).
            "outside_glibc_kib_per_cached_case": round(
                rss_cached - glibc.get("glibc_heap_kib_per_cached_case", 0), 2
            ),
            "evicted_rss_kib_per_case": round((after_rss - cached_rss) / KIB / evicted, 2),
        }
    return {
        "cache": cache,
        "evicted": evicted,
        "worker_rss_half_full_mib": round(idle_rss / KIB / KIB, 1),
        "rss_kib_per_cached_case_with_tracemalloc": round(rss_cached, 2),
        "traced_kib_per_cached_case": round(traced_cached, 2),
        "native_kib_per_cached_case": round(rss_cached - traced_cached, 2),
        # Where the native part is: glibc's heaps (in use: the Rust core, protobuf, Python's
        # large blocks; free: allocator slack), and the rest of RSS outside them
        # (pymalloc's arenas: Python's small objects and their fragmentation).
        **glibc,
        "traced_kib_per_cached_case_by_file": _growth(idle, cached, grown, "by_file", 25),
        "traced_kib_per_cached_case_by_line": _growth(idle, cached, grown, "by_line", 25),
        "evicted_rss_kib_per_case": round((after_rss - cached_rss) / KIB / evicted, 2),
        "evicted_traced_kib_per_case": round(
            (after["traced_bytes"] - cached["traced_bytes"]) / KIB / evicted, 2
        ),
        "evicted_traced_kib_per_case_by_file": _growth(cached, after, evicted, "by_file", 10),
    }
