"""Cases driven through the common full path by scripted staff, with a stopwatch.

Per case, in order, at most ``concurrency`` cases at a time:

1. submit (``starter.intake.submit``; ``start_workflow`` for a baseline);
2. wait until the case is ``awaiting_review`` (its ``CaseStage`` search attribute, read
   with ``describe``: answered by the server alone, so waiting costs the worker nothing);
3. ``request-details`` (update), then the reporter's reply (signal), then wait until the
   reply has put the case back in review;
4. ``record-crime``, then ``imu-investigate`` (updates);
5. wait until the work the allocation starts (hand-off to the team, intelligence
   search) is done, as the officer would find the case on the team's queue: the ``view``
   query, polled with back-off;
6. ``acknowledge``, then ``close`` (updates), then the workflow's result.

Each admin action's round trip is ``execute_update`` on a handle, validator to answer.
Submit-to-receipt is the time from just before ``start_workflow`` to the receipt
email's arrival in the mail sink (the sink's own timestamp in the file name).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench.baselines import CASE_STAGE, BaselineCaseWorkflow, BaselineInput
from bench.stats import summary
from domain.case import (
    Acknowledge,
    CaseView,
    CloseCase,
    DetailsReply,
    ImuInvestigate,
    RecordCrime,
    RequestDetails,
    StaffAction,
    Stage,
    Timings,
    case_workflow_id,
    receipt_code_for,
)
from domain.report import Report
from starter.intake import submit
from workflows.case import CaseWorkflow

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ordinary.json"
ACTIONS = ("request_details", "record_crime", "imu_investigate", "acknowledge", "close")
CASE_TIMEOUT_S = 600.0


def example_report() -> Report:
    return Report.model_validate_json(EXAMPLE.read_text())


def staff_actions(report: Report) -> dict[str, StaffAction]:
    """The scripted staff, one demo-roster person per step."""
    return {
        "request_details": RequestDetails(
            actor="handler-1", question="Which bicycles were taken, and their frame numbers?"
        ),
        "record_crime": RecordCrime(actor="handler-1", category=report.incident.category),
        "imu_investigate": ImuInvestigate(actor="imu-1"),
        "acknowledge": Acknowledge(actor="officer-1", officer="officer-1"),
        "close": CloseCase(actor="officer-1", outcome=18, note="No suspect identified."),
    }


@dataclass
class Target:
    """Which workflow the cases run: ours (``case``) or a baseline (``naive``, ``floor``)."""

    workload: str
    task_queue: str
    timings: Timings
    plan: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        return self.workload == "case"

    def update(self, action: str) -> Any:
        """The update method for ``action``: the same name on ours and the baselines."""
        return getattr(CaseWorkflow if self.ours else BaselineCaseWorkflow, action)

    def reply_signal(self) -> Any:
        return CaseWorkflow.details_reply if self.ours else BaselineCaseWorkflow.details_reply

    async def start(self, client: Client, report: Report) -> WorkflowHandle[Any, Any]:
        if self.ours:
            done = await submit(client, report, task_queue=self.task_queue, timings=self.timings)
            return client.get_workflow_handle(done.workflow_id)
        code = receipt_code_for(report.submission_id)
        return await client.start_workflow(
            BaselineCaseWorkflow.run,
            BaselineInput(
                report=report,
                receipt_code=code,
                timings=self.timings,
                plan=self.plan,
                timers=self.workload == "naive",
            ),
            id=case_workflow_id(code),
            task_queue=self.task_queue,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(CASE_STAGE, Stage.RECEIVED.value)]
            ),
        )

    async def allocation_work_done(self, handle: WorkflowHandle[Any, Any]) -> bool:
        if self.ours:
            view: CaseView = await handle.query(CaseWorkflow.view)
            return view.intelligence is not None and any(
                e.event == "handed_off" for e in view.timeline
            )
        # The floor has no work after allocation, but asks like the others (one query at
        # least per case for every workload: the harness's polls are alike for all three).
        baseline = await handle.query(BaselineCaseWorkflow.view)
        return "after:imu_investigate" not in self.plan or "after:imu_investigate" in baseline.done


@dataclass
class Tally:
    submit_wall: dict[str, float] = field(default_factory=dict)
    submit_ms: list[float] = field(default_factory=list)
    ready_ms: list[float] = field(default_factory=list)
    signal_ms: list[float] = field(default_factory=list)
    update_ms: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    case_s: list[float] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=lambda: {"describe": 0, "query": 0})
    failures: list[str] = field(default_factory=list)
    completed: int = 0
    handles: list[WorkflowHandle[Any, Any]] = field(default_factory=list)


async def _poll(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Check, then back off (0.1 s, growing to 1 s): few polls even when a step is slow.

    Polls cost the server (``describe``) or the worker (``query``) for every workload
    alike; their count per case is in the results.
    """
    delay = 0.1
    deadline = time.monotonic() + CASE_TIMEOUT_S
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {CASE_TIMEOUT_S:.0f} s for {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 1.0)


async def _stage_is(handle: WorkflowHandle[Any, Any], stage: Stage, tally: Tally) -> bool:
    tally.polls["describe"] += 1
    described = await handle.describe()
    return described.typed_search_attributes.get(CASE_STAGE) == stage.value


async def one_case(client: Client, target: Target, report: Report, tally: Tally) -> None:
    actions = staff_actions(report)
    started = time.perf_counter()
    tally.submit_wall[case_workflow_id(receipt_code_for(report.submission_id))] = time.time()
    handle = await target.start(client, report)
    tally.submit_ms.append((time.perf_counter() - started) * 1000)
    tally.handles.append(handle)

    async def review() -> bool:
        return await _stage_is(handle, Stage.AWAITING_REVIEW, tally)

    await _poll(review, "awaiting_review")
    tally.ready_ms.append((time.perf_counter() - started) * 1000)

    async def act(action: str) -> None:
        t0 = time.perf_counter()
        await handle.execute_update(target.update(action), actions[action])
        tally.update_ms[action].append((time.perf_counter() - t0) * 1000)

    await act("request_details")
    t0 = time.perf_counter()
    await handle.signal(target.reply_signal(), DetailsReply(text="A red Dawes, frame WD12345."))
    tally.signal_ms.append((time.perf_counter() - t0) * 1000)
    await _poll(review, "the reply to be handled")
    await act("record_crime")
    await act("imu_investigate")

    async def allocated() -> bool:
        tally.polls["query"] += 1
        return await target.allocation_work_done(handle)

    await _poll(allocated, "hand-off and intelligence search")
    await act("acknowledge")
    await act("close")
    await handle.result()
    tally.case_s.append(time.perf_counter() - started)
    tally.completed += 1


async def drive(
    client: Client,
    target: Target,
    n: int,
    *,
    concurrency: int,
    label: str,
    mail_dir: Path | None = None,
) -> dict[str, Any]:
    """Run ``n`` cases through the full path; throughput and latencies."""
    template = example_report()
    tally = Tally()
    gate = asyncio.Semaphore(concurrency)
    run_id = f"{label}-{time.time_ns()}"

    async def guarded(i: int) -> None:
        report = template.model_copy(update={"submission_id": f"bench-{run_id}-{i}"})
        async with gate:
            try:
                await asyncio.wait_for(one_case(client, target, report, tally), CASE_TIMEOUT_S)
            except Exception as err:  # counted and reported; the run goes on
                tally.failures.append(f"{type(err).__name__}: {str(err)[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(guarded(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    updates = [ms for action in ACTIONS for ms in tally.update_ms[action]]
    result: dict[str, Any] = {
        "workload": target.workload,
        "cases": n,
        "completed": tally.completed,
        "failures": len(tally.failures),
        "failure_samples": sorted(set(tally.failures))[:5],
        "concurrency": concurrency,
        "elapsed_s": round(elapsed, 2),
        "cases_per_s": round(tally.completed / elapsed, 2),
        "update_ms": summary(updates),
        "update_ms_by_action": {a: summary(tally.update_ms[a]) for a in ACTIONS},
        "signal_ms": summary(tally.signal_ms),
        "submit_ms": summary(tally.submit_ms),
        "submit_to_review_ms": summary(tally.ready_ms),
        "case_s": summary(s * 1000 for s in tally.case_s),
        "polls_per_case": {k: round(v / max(1, n), 2) for k, v in tally.polls.items()},
    }
    if mail_dir is not None and target.ours:
        result["submit_to_receipt_ms"] = summary(receipt_latencies(mail_dir, tally.submit_wall))
    result["_handles"] = tally.handles
    return result


async def drive_open(
    client: Client,
    target: Target,
    rate: float,
    duration_s: float,
    *,
    label: str,
    mail_dir: Path | None = None,
    seed: int = 11,
) -> dict[str, Any]:
    """Open loop: cases arrive on a schedule (Poisson, ``rate`` a second, for
    ``duration_s``), however many are already in flight; latencies of every one.

    Unlike ``drive``'s fixed number in flight, a slow answer does not slow the arrivals,
    so the latencies are those a load of ``rate`` cases a second meets, not Little's law.
    """
    template = example_report()
    tally = Tally()
    run_id = f"{label}-{time.time_ns()}"
    rng = random.Random(seed)
    schedule: list[float] = []
    at = 0.0
    while (at := at + rng.expovariate(rate)) < duration_s:
        schedule.append(at)
    lag_ms: list[float] = []

    async def arrive(i: int, due: float, t0: float) -> None:
        await asyncio.sleep(max(0.0, t0 + due - time.perf_counter()))
        lag_ms.append((time.perf_counter() - t0 - due) * 1000)
        report = template.model_copy(update={"submission_id": f"bench-{run_id}-{i}"})
        try:
            await asyncio.wait_for(one_case(client, target, report, tally), CASE_TIMEOUT_S)
        except Exception as err:  # counted and reported; the run goes on
            tally.failures.append(f"{type(err).__name__}: {str(err)[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(arrive(i, due, t0) for i, due in enumerate(schedule)))
    elapsed = time.perf_counter() - t0
    updates = [ms for action in ACTIONS for ms in tally.update_ms[action]]
    result: dict[str, Any] = {
        "offered_per_s": round(rate, 3),
        "arrivals": len(schedule),
        "arrival_window_s": duration_s,
        "completed": tally.completed,
        "failures": len(tally.failures),
        "failure_samples": sorted(set(tally.failures))[:5],
        "elapsed_s": round(elapsed, 2),
        "achieved_per_s": round(tally.completed / duration_s, 3),
        "arrival_lag_ms": summary(lag_ms),
        "update_ms": summary(updates),
        "case_s": summary(s * 1000 for s in tally.case_s),
    }
    if mail_dir is not None and target.ours:
        result["receipt_ms"] = summary(receipt_latencies(mail_dir, tally.submit_wall))
    return result


def receipt_latencies(mail_dir: Path, submitted: dict[str, float]) -> list[float]:
    """Submit to the receipt email's arrival, from the sink's file names.

    The sink names each file ``<UTC time>-<sequence>-<Message-ID>.eml`` and the receipt's
    Message-ID is ``<workflow id>.receipt@...``.
    """
    out = []
    for path in mail_dir.glob("*.eml"):
        stamp, _, rest = path.name.partition("-")
        _, _, message_id = rest.partition("-")
        workflow_id, _, purpose = message_id.partition(".")
        if not purpose.startswith("receipt@") or workflow_id not in submitted:
            continue
        arrived = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC).timestamp()
        out.append((arrived - submitted[workflow_id]) * 1000)
    return out


def dumps(result: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, indent=2)
