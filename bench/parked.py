"""Open cases parked in review: what each costs, and how fast staff get answers meanwhile.

Cases are submitted (at most ``concurrency`` starts in flight) and left once they reach
``awaiting_review`` (counted in the case store). With them parked and nothing else
running, the run reads the worker's and the Temporal server's RSS and the case
database's size, then times admin actions one after another, as a handler would:
``request-details`` on random parked cases (each case asked once) and the ``view``
query (``whn-admin show``) on others. With more cases parked than the worker caches
(``max_cached_workflows``), most of those land on a case that must be replayed first.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import asyncpg
from temporalio.client import Client

from bench.history import update_breakdown
from bench.lifecycle import example_report, staff_actions
from bench.stack import BenchStack, WorkerProcess
from bench.stats import MIB, CpuMeter, Failures, summary
from domain.case import Timings
from starter.intake import submit
from workflows.case import CaseWorkflow

STAGE_SQL = "SELECT count(*) FROM cases WHERE stage = 'awaiting_review' AND workflow_id = ANY($1)"
PARK_TIMEOUT_S = 3600.0
STALL_S = 180.0  # no case reaching review for this long: the level goes on without them


class Parking:
    """Cases parked so far, on one worker; ``park_to()`` adds more, ``measure()`` reads."""

    def __init__(
        self,
        client: Client,
        stack: BenchStack,
        worker: WorkerProcess,
        timings: Timings,
        *,
        concurrency: int,
        prefix: str = "bench-parked",
        cache_size: int | None = None,
    ) -> None:
        self.client = client
        self.stack = stack
        self.worker = worker
        self.timings = timings
        self.concurrency = concurrency
        self.prefix = prefix
        self.cache_size = cache_size or stack.settings.max_cached_workflows
        self.cache_from = "the worker's setting"
        self.ids: list[str] = []
        self.untouched: list[str] = []
        self.started = 0  # submission numbers used so far (failed ones included)
        self.action_failures = Failures()
        self.rng = random.Random(7)

    async def baseline(self, pool: asyncpg.Pool) -> None:
        await asyncio.sleep(2)
        self.worker_rss0 = self.worker.rss_bytes()
        self.server_rss0 = self.stack.server_rss_bytes()
        self.pg_bytes0 = await pool.fetchval("SELECT pg_database_size(current_database())")

    async def rebaseline_worker(self) -> None:
        """After the worker was replaced: its idle RSS, from which the next level counts."""
        await asyncio.sleep(2)
        self.worker_rss0 = self.worker.rss_bytes()

    async def park_to(self, total: int, pool: asyncpg.Pool) -> dict[str, Any]:
        """Submit cases until ``total`` have been started, and wait until all are in review.

        A failed submission is counted (with samples) and left out; a case that never
        reaches review within ``PARK_TIMEOUT_S`` is counted as not parked. Neither ends
        the run: the level is measured with the cases that did park.
        """
        template = example_report()
        gate = asyncio.Semaphore(self.concurrency)
        start = self.started
        new: list[str] = []
        failed = Failures()
        meter = CpuMeter(self.stack.pids(self.worker))
        meter.start()

        async def one(i: int) -> None:
            report = template.model_copy(update={"submission_id": f"{self.prefix}-{i}"})
            async with gate:
                try:
                    done = await submit(
                        self.client, report, task_queue=self.worker.task_queue, timings=self.timings
                    )
                except Exception as err:  # counted; one failure must not end the run
                    failed.add(err)
                    return
            new.append(done.workflow_id)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(start, total)))
        self.started = max(self.started, total)
        submitted_s = time.perf_counter() - t0
        waiting = self.untouched + new  # cases not yet acted on: all should be in review
        parked = 0
        progress = (0, time.perf_counter())  # the count, and when it last grew
        while True:
            try:
                parked = await pool.fetchval(STAGE_SQL, waiting)
            except Exception as err:  # counted; the next poll may answer
                failed.add(err)
            now = time.perf_counter()
            if parked > progress[0]:
                progress = (parked, now)
            if (
                parked >= len(waiting)
                or now - t0 > PARK_TIMEOUT_S
                or now - progress[1] > STALL_S  # a dead worker must not hold the run an hour
            ):
                break
            await asyncio.sleep(0.5)
        parked_s = time.perf_counter() - t0
        usage = meter.stop()
        self.ids += new
        self.untouched = waiting
        out: dict[str, Any] = {
            "added": len(new),
            "submit_s": round(submitted_s, 1),
            "parked_s": round(parked_s, 1),
            "parked_per_s": round(len(new) / max(parked_s, 0.001), 1),
            **usage,
        }
        if failed.count:
            out["submit_failures"] = failed.count
            out["submit_failure_samples"] = failed.samples
        if parked < len(waiting):
            out["not_in_review"] = len(waiting) - parked
        return out

    async def admin_actions(self, actions: int) -> list[float]:
        """``request-details`` on ``actions`` random untouched cases, one after another.

        A failed action is counted in ``action_failures`` (with samples), not timed.
        """
        request = staff_actions(example_report())["request_details"]
        chosen = self.rng.sample(self.untouched, min(actions, len(self.untouched)))
        taken = set(chosen)
        self.untouched = [i for i in self.untouched if i not in taken]
        self.action_failures = Failures()
        update_ms = []
        timed = []
        for workflow_id in chosen:
            handle = self.client.get_workflow_handle(workflow_id)
            t0 = time.perf_counter()
            try:
                await handle.execute_update(CaseWorkflow.request_details, request)
            except Exception as err:  # counted; one failure must not end the run
                self.action_failures.add(err)
                continue
            update_ms.append((time.perf_counter() - t0) * 1000)
            timed.append(workflow_id)
        self.last_chosen = timed
        return update_ms

    async def measure(self, pool: asyncpg.Pool, actions: int) -> dict[str, Any]:
        await asyncio.sleep(3)  # let the last activations and the server's writes settle
        cases = len(self.ids)
        worker_rss = self.worker.rss_bytes()
        server_rss = self.stack.server_rss_bytes()
        pg_bytes = await pool.fetchval("SELECT pg_database_size(current_database())")
        meter = CpuMeter(self.stack.pids(self.worker))
        meter.start()
        update_ms = await self.admin_actions(actions)
        usage = meter.stop()
        action_failures = self.action_failures
        try:
            breakdown = await self._breakdown(dict(zip(self.last_chosen, update_ms, strict=True)))
        except Exception as err:  # the breakdown is commentary: its failure ends nothing
            breakdown = {"not_measured": f"{type(err).__name__}: {str(err)[:200]}"}
        query_ms = []
        query_failures = Failures()
        for workflow_id in self.rng.sample(self.ids, min(actions, len(self.ids))):
            handle = self.client.get_workflow_handle(workflow_id)
            t0 = time.perf_counter()
            try:
                await handle.query(CaseWorkflow.view)
            except Exception as err:  # counted (the crash of 2026-12-01: a deadlock
                query_failures.add(err)  # detector's failure at load 15); the run goes on
                continue
            query_ms.append((time.perf_counter() - t0) * 1000)
        return {
            "cases": cases,
            "worker_rss_mib": round(worker_rss / MIB, 1),
            "server_rss_mib": round(server_rss / MIB, 1),
            "worker_kib_per_case": round((worker_rss - self.worker_rss0) / 1024 / max(1, cases), 2),
            # The worker holds at most max_cached_workflows cases in memory; the rest are
            # replayed from history when touched.
            "worker_kib_per_cached_case": round(
                (worker_rss - self.worker_rss0) / 1024 / max(1, min(cases, self.cache_size)), 2
            ),
            "server_kib_per_case": round((server_rss - self.server_rss0) / 1024 / max(1, cases), 2),
            "pg_kib_per_case": round((pg_bytes - self.pg_bytes0) / 1024 / max(1, cases), 2),
            "worker_rss_idle_mib": round(self.worker_rss0 / MIB, 1),
            "server_rss_before_mib": round(self.server_rss0 / MIB, 1),
            "admin_ms": summary(update_ms),
            "admin_failures": action_failures.count,
            "admin_failure_samples": action_failures.samples,
            "admin_cpu_ms_per_action": {
                k: round(v * 1000 / max(1, len(update_ms)), 2)
                for k, v in usage["cpu_s"].items()  # type: ignore[attr-defined]
            },
            "admin_breakdown_ms": breakdown,
            "query_ms": summary(query_ms),
            "query_failures": query_failures.count,
            "query_failure_samples": query_failures.samples,
            "cached": min(cases, self.cache_size),
        }

    async def _breakdown(self, measured: dict[str, float], sample: int = 50) -> dict[str, Any]:
        """Median and p99 of each part of request-details, from the cases' histories."""
        parts: dict[str, list[float]] = {}
        for workflow_id in list(measured)[:sample]:
            events = await self.client.get_workflow_handle(workflow_id).fetch_history()
            split = update_breakdown(events, "request_details")
            if split is None:
                continue
            split["client_and_rpc"] = round(measured[workflow_id] - split["server_total"], 2)
            for part, ms in split.items():
                parts.setdefault(part, []).append(ms)
        return {
            part: {k: v for k, v in summary(ms).items() if k in ("p50", "p99")}
            for part, ms in parts.items()
        }
