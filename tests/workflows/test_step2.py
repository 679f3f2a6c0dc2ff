"""Step 2 on the time-skipping server with real PostgreSQL and SMTP: every timer branch."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.case import (
    AckEmergency,
    DetailsReply,
    NotACrime,
    RecordCrime,
    Redirect,
    RequestDetails,
    Stage,
)
from starter.intake import submit
from tests.helpers import example, skip_time, until, wait_stage, wait_view
from tests.workflows.conftest import FAST
from workflows.case import CaseWorkflow

CRN = re.compile(r"^35/\d{5}/\d{2}$")


async def _case_in_review(client, task_queue, name="ordinary"):
    submitted = await submit(client, example(name), task_queue=task_queue, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    return submitted, handle


async def _ask(handle, question="Which shed door was forced?"):
    return await handle.execute_update(
        CaseWorkflow.request_details, RequestDetails(actor="handler-1", question=question)
    )


async def test_reply_before_reminder(client, case_worker, mail_sink, db_pool):
    submitted, handle = await _case_in_review(client, case_worker)
    result = await _ask(handle)
    assert result.stage == Stage.AWAITING_DETAILS
    mail = await mail_sink.await_for(
        lambda m: "more information" in m["Subject"] and submitted.receipt_code in m["Subject"]
    )
    assert "Which shed door was forced?" in mail.get_content()

    await handle.signal(
        CaseWorkflow.details_reply, DetailsReply(text="The back door, by the garden.")
    )
    view = await wait_stage(handle, Stage.AWAITING_REVIEW)
    assert next(d for d in view.deadlines if d.name == "details_reply_1").met is True
    reminders = await db_pool.fetchval(
        "SELECT count(*) FROM notifications WHERE workflow_id = $1 AND purpose LIKE 'details-reminder%'",
        submitted.workflow_id,
    )
    assert reminders == 0
    # Patched in while cases were open ("details-reply-acknowledged"): new cases thank
    # the reporter for the reply.
    await mail_sink.await_for(
        lambda m: m["Subject"] == f"Thank you: we have your reply ({submitted.receipt_code})"
    )


async def test_reminder_then_reply(client, case_worker, mail_sink, time_env):
    submitted, handle = await _case_in_review(client, case_worker)
    await _ask(handle)
    await skip_time(time_env, FAST.details_reminder + timedelta(minutes=1))
    reminder = await mail_sink.await_for(
        lambda m: m["Subject"].startswith("Reminder") and submitted.receipt_code in m["Subject"]
    )
    assert "Which shed door was forced?" in reminder.get_content()
    assert (await handle.query(CaseWorkflow.view)).stage == Stage.AWAITING_DETAILS

    await handle.signal(CaseWorkflow.details_reply, DetailsReply(text="Back door."))
    view = await wait_stage(handle, Stage.AWAITING_REVIEW)
    assert "details_not_received" not in view.flags


async def test_expiry_returns_case_to_review_flagged(client, case_worker, mail_sink, time_env):
    submitted, handle = await _case_in_review(client, case_worker)
    await _ask(handle)
    await skip_time(time_env, FAST.details_expiry + timedelta(minutes=1))
    view = await wait_stage(handle, Stage.AWAITING_REVIEW)
    assert "details_not_received" in view.flags
    assert next(d for d in view.deadlines if d.name == "details_reply_1").met is False
    assert not view.stage.is_closed  # silence alone never closes a report


async def test_repeated_identical_reply_is_recorded_once(client, case_worker, db_pool):
    submitted, handle = await _case_in_review(client, case_worker)
    await _ask(handle)
    for _ in range(3):
        await handle.signal(CaseWorkflow.details_reply, DetailsReply(text="Back door."))
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    await _ask(handle, "Anything else taken?")
    await handle.signal(CaseWorkflow.details_reply, DetailsReply(text="Back  door. "))
    await handle.signal(CaseWorkflow.details_reply, DetailsReply(text="A drill as well."))
    view = await wait_stage(handle, Stage.AWAITING_REVIEW)
    assert sum(1 for e in view.timeline if e.event == "details_received") == 2

    async def recorded() -> int:
        # The case commits a reply with the stage it moves to (one transaction), so the
        # store may be a moment behind the view.
        return int(
            await db_pool.fetchval(
                "SELECT count(*) FROM case_events"
                " WHERE workflow_id = $1 AND event = 'details_received'",
                submitted.workflow_id,
            )
        )

    received = await until(lambda: _at_least(recorded(), 2), what="both replies recorded")
    assert received == 2
    assert await recorded() == 2


async def test_record_crime_issues_crn_emails_it_and_refers_victim(
    client, case_worker, mail_sink, db_pool
):
    submitted, handle = await _case_in_review(client, case_worker)
    result = await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    assert result.stage == Stage.WITH_IMU
    assert result.reference and CRN.match(result.reference)
    mail = await mail_sink.await_for(
        lambda m: m["Subject"] == f"Your crime reference number: {result.reference}"
    )
    body = mail.get_content()
    assert "Offence: burglary" in body and "Investigations Management Unit" in body
    assert "Victim Support" in body
    referral = await db_pool.fetchrow(
        "SELECT agency, due_at FROM referrals WHERE workflow_id = $1 AND kind = 'victim_support'",
        submitted.workflow_id,
    )
    assert referral["agency"] == "Victim Support" and referral["due_at"] is not None
    # The letters follow the recorded decision; the deadlines they meet are met as they go.
    view = await wait_view(
        handle,
        lambda v: all(
            d.met for d in v.deadlines if d.name in ("crn_or_explanation", "victim_support_referral")
        ),
    )
    met = {d.name: d.met for d in view.deadlines}
    assert met["crime_recording_decision"] is True
    assert met["crn_or_explanation"] is True
    assert met["victim_support_referral"] is True
    assert (
        await db_pool.fetchval(
            "SELECT crime_reference FROM cases WHERE workflow_id = $1", submitted.workflow_id
        )
        == result.reference
    )


async def test_record_crime_and_close_without_investigation(client, case_worker):
    _, handle = await _case_in_review(client, case_worker)
    result = await handle.execute_update(
        CaseWorkflow.record_crime,
        RecordCrime(actor="handler-1", category="other-theft", no_investigation=True, outcome=18),
    )
    assert result.stage == Stage.CLOSED
    view = await handle.result()
    assert (view.stage, view.outcome) == (Stage.CLOSED, 18)


async def test_not_a_crime_advises_and_closes(client, case_worker, mail_sink):
    submitted, handle = await _case_in_review(client, case_worker)
    await handle.execute_update(
        CaseWorkflow.not_a_crime,
        NotACrime(
            actor="handler-1", advice="This is a civil dispute.", agencies=["Citizens Advice"]
        ),
    )
    view = await handle.result()
    assert view.stage == Stage.NOT_A_CRIME
    mail = await mail_sink.await_for(
        lambda m: m["Subject"] == f"About your report {submitted.receipt_code}"
    )
    assert "civil dispute" in mail.get_content() and "- Citizens Advice" in mail.get_content()


async def test_handler_redirects(client, case_worker, mail_sink):
    submitted, handle = await _case_in_review(client, case_worker)
    await handle.execute_update(
        CaseWorkflow.redirect,
        Redirect(
            actor="handler-1", agency="Norfolk Constabulary", reason="it happened in King's Lynn"
        ),
    )
    view = await handle.result()
    assert (view.stage, view.redirected_to) == (Stage.REDIRECTED, "Norfolk Constabulary")


async def test_overdue_review_marks_case_and_tells_supervisor_once(
    client, case_worker, mail_sink, time_env, db_pool
):
    submitted, handle = await _case_in_review(client, case_worker)
    await skip_time(time_env, FAST.review_deadline + timedelta(minutes=1))
    view = await wait_view(handle, lambda v: v.overdue)
    assert next(d for d in view.deadlines if d.name == "crime_recording_decision").met is False
    await skip_time(time_env, timedelta(hours=1))
    escalations = await db_pool.fetch(
        "SELECT purpose FROM notifications WHERE workflow_id = $1 AND purpose LIKE 'escalation-crime_recording%'",
        submitted.workflow_id,
    )
    assert len(escalations) == 1
    # The decision, late, clears the overdue mark but stays recorded as missed.
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    view = await handle.query(CaseWorkflow.view)
    decision = next(d for d in view.deadlines if d.name == "crime_recording_decision")
    assert decision.met is False and decision.met_at is not None


async def test_wrong_stage_is_rejected_before_history(client, case_worker):
    submitted, handle = await _case_in_review(client, case_worker)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(CaseWorkflow.ack_emergency, AckEmergency(actor="control-1"))
    assert "awaiting_review" in str(caught.value.cause)
    history = await handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert accepted == []


async def test_wrong_role_is_refused_and_audited(client, case_worker, db_pool):
    submitted, handle = await _case_in_review(client, case_worker)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(
            CaseWorkflow.record_crime, RecordCrime(actor="officer-1", category="burglary")
        )
    assert "call_handler" in str(caught.value.cause)
    row = await db_pool.fetchrow(
        "SELECT allowed, reason FROM audit_log WHERE workflow_id = $1 AND actor = 'officer-1'",
        submitted.workflow_id,
    )
    assert row["allowed"] is False and "call_handler" in row["reason"]
    assert (await handle.query(CaseWorkflow.view)).stage == Stage.AWAITING_REVIEW


async def _at_least(count: Awaitable[int], least: int) -> int | None:
    n = await count
    return n if n >= least else None
