"""The floor of one update, and what the harness's own polls cost.

On an otherwise idle stack, one floor workflow (``BaselineCaseWorkflow``, no plan, no
timers), cached on its worker: ``updates`` sequential ``touch`` updates (validator,
lock, the ``CaseStage`` search attribute, answer), each timed; the engine's own cost of
one update round trip on this machine, for ours to be set against.

Then the polls the lifecycle driver makes while its staff wait: ``describe`` (answered
by the server alone) and the ``view`` query (a worker round trip), each repeated
``polls`` times on the same workflow with the CPU each process spent, so the CPU per
case of every workload can be given with and without its polls (``polls_per_case``).
"""

from __future__ import annotations

import time
from typing import Any

from temporalio.client import Client

from bench.baselines import BaselineCaseWorkflow, BaselineInput
from bench.lifecycle import example_report, staff_actions
from bench.stack import BenchStack
from bench.stats import CpuMeter, Failures, summary
from domain.case import Timings, receipt_code_for

WARM_UP = 50


async def bench_update_floor(
    client: Client, stack: BenchStack, timings: Timings, *, updates: int, polls: int
) -> dict[str, Any]:
    worker = await stack.start_worker("floor", "bench-update-floor")
    try:
        report = example_report().model_copy(update={"submission_id": "bench-update-floor"})
        handle = await client.start_workflow(
            BaselineCaseWorkflow.run,
            BaselineInput(
                report=report,
                receipt_code=receipt_code_for(report.submission_id),
                timings=timings,
                timers=False,
            ),
            id=f"bench-update-floor-{time.time_ns()}",
            task_queue=worker.task_queue,
        )
        action = staff_actions(report)["request_details"]
        for _ in range(WARM_UP):
            await handle.execute_update(BaselineCaseWorkflow.touch, action)
        meter = CpuMeter(stack.pids(worker))
        meter.start()
        ms = []
        failed = Failures()
        for _ in range(updates):
            t0 = time.perf_counter()
            try:
                await handle.execute_update(BaselineCaseWorkflow.touch, action)
            except Exception as err:  # counted, not timed; the run goes on
                failed.add(err)
                continue
            ms.append((time.perf_counter() - t0) * 1000)
        usage = meter.stop()
        out: dict[str, Any] = {
            "updates": summary(ms),
            "update_failures": failed.count,
            "update_failure_samples": failed.samples,
            "cpu_ms_per_update": _per(usage, max(1, len(ms))),
            "load_1m": usage["load_1m"],
        }
        for name, call in (
            ("describe", lambda: handle.describe()),
            ("query", lambda: handle.query(BaselineCaseWorkflow.view)),
        ):
            meter = CpuMeter(stack.pids(worker))
            meter.start()
            ms = []
            failed = Failures()
            for _ in range(polls):
                t0 = time.perf_counter()
                try:
                    await call()
                except Exception as err:  # counted, not timed
                    failed.add(err)
                    continue
                ms.append((time.perf_counter() - t0) * 1000)
            usage = meter.stop()
            out[f"{name}_ms"] = summary(ms)
            out[f"{name}_failures"] = failed.count
            out[f"cpu_ms_per_{name}"] = _per(usage, max(1, len(ms)))
        try:
            await handle.terminate("benchmark done")
        except Exception:  # the figures are taken; a workflow left running ends with the stack
            pass
    finally:
        await worker.stop()
    return out


def _per(usage: dict[str, object], n: int) -> dict[str, float]:
    cpu = usage["cpu_s"]
    assert isinstance(cpu, dict)
    return {k: round(v * 1000 / max(1, n), 3) for k, v in cpu.items()}
