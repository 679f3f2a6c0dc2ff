"""Step 1 on the time-skipping server with real PostgreSQL and SMTP: receipt, emergency, agency."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.case import Priority, Stage
from starter.intake import submit
from tests.helpers import example, skip_time, wait_stage, wait_view
from tests.workflows.conftest import FAST
from workflows.case import CaseWorkflow


async def test_ordinary_report_is_receipted_and_waits_for_review(
    client, case_worker, mail_sink, db_pool
):
    report = example("ordinary")
    submitted = await submit(client, report, task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    view = await wait_stage(handle, Stage.AWAITING_REVIEW)

    mail = await mail_sink.await_for(lambda m: submitted.receipt_code in m["Subject"], timeout=10)
    assert mail["To"] == "karen@example.org"
    assert submitted.receipt_code in mail.get_content()
    assert view.deadlines[0].name == "receipt" and view.deadlines[0].met is True
    assert [d.name for d in view.deadlines if d.met is None] == [
        "crime_recording_decision",
        "crn_or_explanation",
    ]
    row = await db_pool.fetchrow(
        "SELECT stage, receipt_code, report->'reporter'->>'email' AS email FROM cases WHERE workflow_id = $1",
        submitted.workflow_id,
    )
    assert dict(row) == {
        "stage": "awaiting_review",
        "receipt_code": submitted.receipt_code,
        "email": "karen@example.org",
    }
    events = [
        r["event"]
        for r in await db_pool.fetch(
            "SELECT event FROM case_events WHERE workflow_id = $1 ORDER BY id",
            submitted.workflow_id,
        )
    ]
    assert events == ["received", "stage:screening", "stage:awaiting_review"]


async def test_same_submission_twice_is_one_case_and_one_receipt(
    client, case_worker, mail_sink, db_pool
):
    report = example("ordinary")
    first = await submit(client, report, task_queue=case_worker, timings=FAST)
    second = await submit(client, report, task_queue=case_worker, timings=FAST)
    assert (second.receipt_code, second.duplicate) == (first.receipt_code, True)
    assert first.duplicate is False
    await wait_stage(
        client.get_workflow_handle_for(CaseWorkflow.run, first.workflow_id), Stage.AWAITING_REVIEW
    )
    sent = await db_pool.fetchval(
        "SELECT count(*) FROM notifications WHERE workflow_id = $1 AND purpose = 'receipt'",
        first.workflow_id,
    )
    assert sent == 1
    assert len([m for m in mail_sink.messages() if first.receipt_code in m["Subject"]]) == 1


async def test_emergency_alerts_control_room_and_waits_for_ack(
    client, case_worker, mail_sink, db_pool, time_env
):
    from domain.case import AckEmergency
    from workflows.case import CaseWorkflow

    submitted = await submit(client, example("emergency"), task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    view = await wait_stage(handle, Stage.EMERGENCY)
    assert view.priority == Priority.EMERGENCY
    alert = await mail_sink.await_for(
        lambda m: "EMERGENCY" in m["Subject"] and submitted.receipt_code in m["Subject"], timeout=10
    )
    assert alert["To"] == "control-room@cambs.police.example"

    # Nobody confirms within the deadline: re-alert, escalate to a supervisor, keep waiting.
    await skip_time(time_env, FAST.emergency_ack_deadline + timedelta(seconds=5))
    view = await wait_view(handle, lambda v: any(e.event == "escalated" for e in v.timeline))
    assert view.stage == Stage.EMERGENCY
    await mail_sink.await_for(
        lambda m: "REPEAT 2" in m["Subject"] and submitted.receipt_code in m["Subject"], timeout=10
    )
    await mail_sink.await_for(
        lambda m: (
            m["To"] == "duty-supervisor@cambs.police.example"
            and submitted.receipt_code in m["Subject"]
        ),
        timeout=10,
    )
    alerts = await db_pool.fetchval(
        "SELECT count(*) FROM control_room_alerts WHERE workflow_id = $1", submitted.workflow_id
    )
    assert alerts == 2

    result = await handle.execute_update(
        CaseWorkflow.ack_emergency, AckEmergency(actor="control-1")
    )
    assert result.stage == Stage.AWAITING_REVIEW
    view = await handle.query(CaseWorkflow.view)
    ack = next(d for d in view.deadlines if d.name == "emergency_acknowledgement")
    assert ack.met is False and ack.met_at is not None  # done, but late
    assert view.priority == Priority.EMERGENCY


@pytest.mark.parametrize(
    ("name", "agency_words"),
    [
        ("fraud", "Report Fraud"),
        ("railway", "British Transport Police"),
        ("council", "Peterborough"),
        ("other-force", "Suffolk"),
    ],
)
async def test_wrong_agency_is_redirected_and_reporter_told(
    client, case_worker, mail_sink, db_pool, name, agency_words
):
    submitted = await submit(client, example(name), task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    view = await handle.result()
    assert view.stage == Stage.REDIRECTED
    assert agency_words in (view.redirected_to or "")
    told = await mail_sink.await_for(
        lambda m: "passed to" in m["Subject"] and submitted.receipt_code in m["Subject"], timeout=10
    )
    assert agency_words in told["Subject"]
    copy = await db_pool.fetchrow(
        "SELECT recipient, body FROM notifications WHERE workflow_id = $1 AND purpose = 'agency-copy'",
        submitted.workflow_id,
    )
    assert copy is not None and "Account as given by the reporter" in copy["body"]
    referral = await db_pool.fetchval(
        "SELECT agency FROM referrals WHERE workflow_id = $1 AND kind = 'redirect'",
        submitted.workflow_id,
    )
    assert agency_words in referral
    assert next(d for d in view.deadlines if d.name == "crn_or_explanation").met is True


async def test_undecidable_area_goes_to_review_flagged_never_redirected(client, case_worker):
    submitted = await submit(
        client, example("undecidable-area"), task_queue=case_worker, timings=FAST
    )
    view = await wait_stage(
        client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id),
        Stage.AWAITING_REVIEW,
    )
    assert "manual_area_check" in view.flags
    assert view.redirected_to is None
