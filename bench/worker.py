"""A worker process for one workload: ``python -m bench.worker {case,naive,floor}``.

Every workload runs the production worker, ``worker.main()``, exactly as ``whn-worker``
does (settings from ``WHN_*``, tracing, metrics runtime, data converter and codec,
pool size, cache size, concurrency, pollers, graceful shutdown). For a baseline only
``build_worker`` is wrapped: the worker it builds keeps its whole configuration and
gets the baseline's workflow and activity instead of ours. So a change to the real
worker's tuning changes all three workloads alike.

``BENCH_WORKER_VARIANT`` tries a tuning on all three alike, without editing the worker:
``sandboxed`` (the SDK's workflow sandbox, as the tests run it; production runs without
it, see ``WHN_WORKFLOW_SANDBOX``) or ``passthrough`` (the sandbox with every module
passed through: no per-workflow re-import). Unset, the worker is as shipped.

``BENCH_TRACEMALLOC=FILE`` (the memory measure only) starts ``tracemalloc`` and, on
every SIGUSR1, writes what Python has allocated (total, and by file of the allocating
line) to FILE as JSON: set against the process's RSS it says which part of a cached
case's memory is Python objects and which is native (the SDK's Rust core, allocator).
With ``BENCH_TRACEMALLOC_OFF=1`` as well, the file has glibc's count of malloc's heaps
alone and tracemalloc never starts (its bookkeeping would be in those heaps).

Ready when its log says ``worker polling task queue`` (``bench.stack`` waits for it).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import sys
import tracemalloc
from typing import Any

from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxRestrictions

import worker as whn_worker
from bench.baselines import BaselineCaseWorkflow, no_op
from whn.runner import CompactSandboxedRunner

READY_LINE = "worker polling task queue"
VARIANTS = ("sandboxed", "passthrough")

_real_build_worker = whn_worker.build_worker


def _build_worker(workload: str, variant: str | None) -> Any:
    def build(client: Any, pool: Any, settings: Any, *, task_queue: str | None = None) -> Worker:
        queue = task_queue or settings.task_queue
        if workload == "case" and variant is None:
            return _real_build_worker(client, pool, settings, task_queue=queue)
        # Built on a queue of its own and never run (the SDK refuses two workers on one
        # queue): only its configuration is used.
        template = _real_build_worker(client, pool, settings, task_queue=f"{queue}-template")
        config = template.config()
        config["task_queue"] = queue
        if workload != "case":
            config["workflows"] = [BaselineCaseWorkflow]
            config["activities"] = [no_op]
        if variant == "passthrough":
            config["workflow_runner"] = CompactSandboxedRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
            )
        elif variant == "sandboxed":
            config["workflow_runner"] = CompactSandboxedRunner()
        return Worker(**config)

    return build


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",  # bytes of glibc's heaps (sbrk and arena heaps)
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",  # bytes mmapped for large blocks
            "usmblks",
            "fsmblks",
            "uordblks",  # bytes in use in the heaps
            "fordblks",  # bytes free in the heaps (allocator slack)
            "keepcost",
        )
    ]


def _glibc_malloc() -> dict[str, int]:
    """glibc's own count of its heaps, summed over every arena (``mallinfo2``).

    Everything allocated with ``malloc`` is in it: the SDK's Rust core, protobuf (upb)
    messages, Python's blocks over 512 bytes; Python's small objects are not (pymalloc
    maps arenas of its own), unless ``PYTHONMALLOC=malloc``.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {
        "heap_bytes": info.arena + info.hblkhd,
        "in_use_bytes": info.uordblks + info.hblkhd,
        "free_bytes": info.fordblks,
    }


def _trace_memory(out: str, *, trace: bool = True) -> None:
    """On SIGUSR1, write what is allocated to ``out``; ``trace`` False: glibc's count
    alone, with no tracemalloc (whose own bookkeeping sits in malloc's heaps)."""
    if trace:
        tracemalloc.start(1)

    def dump(*_: object) -> None:
        gc.collect()  # what is held, not garbage awaiting the cycle collector
        if not trace:
            _write(out, {"traced_bytes": 0, "glibc": _glibc_malloc(), "by_file": {}, "by_line": {}})
            return
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        by_file = snapshot.statistics("filename")
        total = sum(s.size for s in by_file)
        data = {
            "traced_bytes": total,
            "glibc": _glibc_malloc(),
            "by_file": {str(s.traceback[0].filename): s.size for s in by_file[:400]},
            "by_line": {
                f"{s.traceback[0].filename}:{s.traceback[0].lineno}": s.size
                for s in snapshot.statistics("lineno")[:60]
            },
        }
        _write(out, data)

    signal.signal(signal.SIGUSR1, dump)


def _write(out: str, data: dict[str, Any]) -> None:
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, out)


def main() -> None:
    workload = sys.argv[1] if len(sys.argv) > 1 else "case"
    variant = os.environ.get("BENCH_WORKER_VARIANT") or None
    if workload not in ("case", "naive", "floor") or variant not in (None, *VARIANTS):
        raise SystemExit(
            "usage: [BENCH_WORKER_VARIANT=...] python -m bench.worker {case,naive,floor}"
        )
    if trace := os.environ.get("BENCH_TRACEMALLOC"):
        _trace_memory(trace, trace=os.environ.get("BENCH_TRACEMALLOC_OFF") != "1")
    whn_worker.build_worker = _build_worker(workload, variant)  # type: ignore[assignment]
    print(f"bench worker: {workload}, {variant or 'as shipped'}", file=sys.stderr, flush=True)
    whn_worker.main()


if __name__ == "__main__":
    main()
