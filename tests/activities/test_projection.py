"""The deadline counters and live gauges on the worker's Prometheus endpoint.

A case whose recording decision is missed and then met late, on the time-skipping server,
counts ``missed`` and ``met_late`` once each; its receipt counts ``met``; the gauges show
the open case by stage and its overdue CRN.
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from temporalio.client import Client

from activities.compliance import publish_live_counts
from activities.store import CaseStore
from domain.case import Deadline, RecordCrime, Stage
from domain.effects import CaseChange, OpenCase
from starter.intake import submit
from tests.helpers import example, skip_time, until, wait_stage, wait_view
from tests.workflows.conftest import FAST
from whn.devstack.temporal_server import free_port
from whn.telemetry import runtime_for
from whn.temporal import data_converter, register_search_attributes
from worker import build_worker
from workflows.case import CaseWorkflow


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _value(text: str, name: str, **labels: str) -> float | None:
    """The sample of ``name`` whose labels include ``labels`` (None if there is none)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_deadline_counters_and_gauges(time_env, db_pool, settings, task_queue):
    await register_search_attributes(time_env.client, "default")
    port = free_port()
    runtime = runtime_for(settings.model_copy(update={"metrics_port": port}))
    assert runtime is not None
    client = await Client.connect(
        time_env.client.service_client.config.target_host,
        runtime=runtime,
        data_converter=data_converter(),
    )
    async with build_worker(client, db_pool, settings, task_queue=task_queue):
        submitted = await submit(client, example("ordinary"), task_queue=task_queue, timings=FAST)
        handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
        await wait_stage(handle, Stage.AWAITING_REVIEW)
        await skip_time(time_env, timedelta(hours=49))
        await wait_view(handle, lambda v: v.overdue and sum(d.missed for d in v.deadlines) == 2)
        gauges = asyncio.create_task(publish_live_counts(db_pool, runtime.metric_meter, every=0.2))
        try:
            text = await until(
                lambda: (
                    (t := _scrape(port))
                    and _value(t, "whn_deadlines_overdue", deadline="crn_or_explanation")
                    and t
                ),
                within=20,
                what="the overdue gauge",
            )
        finally:
            gauges.cancel()
        assert (_value(text, "whn_cases", stage="awaiting_review") or 0) >= 1
        await handle.execute_update(
            CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
        )
        await wait_view(handle, lambda v: all(d.met_at for d in v.deadlines))
        text = await until(
            lambda: (
                (t := _scrape(port))
                and _value(
                    t, "whn_deadlines_total", deadline="crn_or_explanation", result="met_late"
                )
                and t
            ),
            within=20,
            what="the met_late counter",
        )
    for deadline, result, count in [
        ("receipt", "met", 1),
        ("receipt", "missed", None),
        ("crime_recording_decision", "missed", 1),
        ("crime_recording_decision", "met_late", 1),
        ("crime_recording_decision", "met", None),
        ("crn_or_explanation", "missed", 1),
        ("crn_or_explanation", "met_late", 1),
    ]:
        got = _value(
            text, "whn_deadlines_total", deadline=deadline, result=result, task_queue=task_queue
        )
        assert got == count, (deadline, result, got)


async def test_a_change_recorded_out_of_order_keeps_the_newer_deadlines(db_pool, settings):
    """Two local activities of one workflow task may commit in either order."""
    store = CaseStore(db_pool, force_code=settings.force_code)
    report = example("ordinary")
    workflow_id = f"case-test-{uuid4()}"
    now = datetime.now(UTC)
    await store.open_case(
        OpenCase(
            workflow_id=workflow_id,
            receipt_code=f"T-{uuid4().hex[:10]}",
            submission_id=report.submission_id,
            report=report,
            received_at=now,
            stage="received",
            priority="grade-3",
            category="burglary",
        )
    )
    due = now + timedelta(hours=24)

    def change(number: int, met: datetime | None) -> CaseChange:
        return CaseChange(
            workflow_id=workflow_id,
            event_key=f"{number:05d}.test",
            at=now,
            actor="system",
            event="test",
            fields={"overdue": False},
            deadlines=[Deadline(name="details_reply_1", due_at=due, met_at=met, opened_at=now)],
        )

    await store.record_change(change(3, now + timedelta(hours=1)))
    await store.record_change(change(2, None))  # older, committed later
    row = await db_pool.fetchrow(
        "SELECT name, promise, state, met_at FROM case_deadlines WHERE workflow_id = $1",
        workflow_id,
    )
    assert dict(row) == {
        "name": "details_reply_1",
        "promise": "details_reply",
        "state": "met_on_time",
        "met_at": now + timedelta(hours=1),
    }
