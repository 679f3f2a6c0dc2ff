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

Ready when its log says ``worker polling task queue`` (``bench.stack`` waits for it).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import worker as whn_worker
from bench.baselines import BaselineCaseWorkflow, no_op

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
            config["workflow_runner"] = SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
            )
        elif variant == "sandboxed":
            config["workflow_runner"] = SandboxedWorkflowRunner()
        return Worker(**config)

    return build


def main() -> None:
    workload = sys.argv[1] if len(sys.argv) > 1 else "case"
    variant = os.environ.get("BENCH_WORKER_VARIANT") or None
    if workload not in ("case", "naive", "floor") or variant not in (None, *VARIANTS):
        raise SystemExit(
            "usage: [BENCH_WORKER_VARIANT=...] python -m bench.worker {case,naive,floor}"
        )
    whn_worker.build_worker = _build_worker(workload, variant)  # type: ignore[assignment]
    print(f"bench worker: {workload}, {variant or 'as shipped'}", file=sys.stderr, flush=True)
    whn_worker.main()


if __name__ == "__main__":
    main()
