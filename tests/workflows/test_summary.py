"""The supervisor's morning email: its figures on the time-skipping server, and the
Schedule that sends it, triggered on the dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from activities.store import CaseStore
from domain.case import Deadline
from domain.compliance import SummaryInput
from domain.effects import CaseChange, OpenCase
from starter.report import SUMMARY_SCHEDULE_ID, schedule_summary
from tests.helpers import example
from whn import db
from worker import build_worker
from workflows.summary import SupervisorSummaryWorkflow


@pytest.fixture
async def fresh_pool(postgres_server) -> AsyncIterator[asyncpg.Pool]:  # type: ignore[no-untyped-def]
    dsn = await db.ensure_database(postgres_server.dsn(), f"whn_summary_{uuid4().hex[:8]}")
    await db.migrate(dsn)
    pool = await db.create_pool(dsn)
    yield pool
    await pool.close()


async def _case(store: CaseStore, received: datetime, stage: str, *deadlines: Deadline) -> str:
    report = example("ordinary")
    code = f"WHN-TEST-{uuid4().hex[:6].upper()}"
    workflow_id = f"case-{code}"
    await store.open_case(
        OpenCase(
            workflow_id=workflow_id,
            receipt_code=code,
            submission_id=report.submission_id,
            report=report,
            received_at=received,
            stage="received",
            priority="grade-3",
            category="burglary",
        )
    )
    await store.record_change(
        CaseChange(
            workflow_id=workflow_id,
            event_key="00001.stage",
            at=received,
            actor="system",
            event="stage",
            fields={"stage": stage},
            deadlines=list(deadlines),
        )
    )
    return code


async def test_the_summary_counts_overdue_now_and_yesterdays_misses(
    client, fresh_pool, settings, task_queue, mail_sink
):
    store = CaseStore(fresh_pool, force_code=settings.force_code)
    day = date(2026, 6, 15)
    t = datetime(2026, 6, 14, 10, tzinfo=UTC)
    # Open, its recording decision due on the day and never made: overdue and missed.
    late = await _case(
        store,
        t,
        "awaiting_review",
        Deadline(name="receipt", due_at=t + timedelta(minutes=5), met_at=t, opened_at=t),
        Deadline(name="crime_recording_decision", due_at=t + timedelta(hours=24), missed=True),
    )
    # Closed, its decision made an hour late on the day: missed, not overdue.
    t2 = t + timedelta(hours=10)
    await _case(
        store,
        t2,
        "closed",
        Deadline(
            name="crime_recording_decision",
            due_at=t2 + timedelta(hours=24),
            met_at=t2 + timedelta(hours=25),
            missed=True,
        ),
        Deadline(name="details_reply_1", due_at=t2 + timedelta(hours=20)),  # the reporter's
    )
    async with build_worker(client, fresh_pool, settings, task_queue=task_queue):
        summary = await client.execute_workflow(
            SupervisorSummaryWorkflow.run,
            SummaryInput(day=day),
            id=f"summary-test-{uuid4()}",
            task_queue=task_queue,
        )
    assert summary.overdue_now == {"crime_recording_decision": 1}
    assert summary.overdue_cases == [late]
    assert summary.due_yesterday == {"crime_recording_decision": 2}
    assert summary.missed_yesterday == {"crime_recording_decision": 2}
    mail = await mail_sink.await_for(
        lambda m: m["X-WHN-Case"] == "supervisor-summary-2026-06-15", timeout=10
    )
    assert mail["To"] == settings.supervisor_email
    assert mail["Subject"] == "Promises: 1 overdue now, 2 missed on Monday 15 June 2026"
    body = mail.get_content()
    assert late in body and "crime recording decision" in body


async def test_the_schedule_runs_the_summary_every_morning(
    dev_client, fresh_pool, settings, task_queue, mail_sink
):
    assert await schedule_summary(dev_client, task_queue=task_queue) == "created"
    handle = dev_client.get_schedule_handle(SUMMARY_SCHEDULE_ID)
    try:
        assert await schedule_summary(dev_client, task_queue=task_queue, hour=6) == "updated"
        spec = (await handle.describe()).schedule.spec
        assert spec.time_zone_name == "Europe/London"
        assert [(c.hour[0].start, c.minute[0].start) for c in spec.calendars] == [(6, 0)]
        async with build_worker(dev_client, fresh_pool, settings, task_queue=task_queue):
            await handle.trigger()
            yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
            mail = await mail_sink.await_for(
                lambda m: m["X-WHN-Case"] == f"supervisor-summary-{yesterday}", timeout=20
            )
    finally:
        await handle.delete()
    assert mail["Subject"].startswith("Promises: 0 overdue now, 0 missed on ")
