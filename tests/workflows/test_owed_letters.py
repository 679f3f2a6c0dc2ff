"""A reporter with no email (phone and in-person reports), on the time-skipping server
with real PostgreSQL and SMTP: each promise reaches them by the call handler or by a
letter a person sends (``workflows.owed``), and its deadline is met then, or missed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError

from domain.actions import LetterSent
from domain.case import Acknowledge, ImuInvestigate, RecordCrime, Reopen, Stage
from starter import casework
from starter.errors import RejectedError
from starter.intake import submit
from starter.reopen import reopen
from tests.helpers import example, skip_time, wait_stage, wait_view
from tests.workflows.conftest import FAST
from whn.temporal import keyring
from workflows.case import CaseWorkflow


def _deadline(view, name):
    return next(d for d in view.deadlines if d.name == name)


async def _phone_case(client, task_queue, **overrides):
    report = example("phone", **overrides)
    submitted = await submit(client, report, task_queue=task_queue, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    return submitted, handle


async def _queued_letters(pg_dsn):
    result = await casework.queue(
        pg_dsn, actor="handler-1", review_deadline=FAST.review_deadline, limit=10_000
    )
    return result["letters"]


async def test_receipt_given_on_the_call_and_the_crn_letter_owed_until_posted(
    client, case_worker, mail_sink, db_pool, pg_dsn, settings
):
    submitted, handle = await _phone_case(client, case_worker)
    view = await handle.query(CaseWorkflow.view)
    # The call handler gave the code on the call: the receipt promise is kept at intake.
    receipt = _deadline(view, "receipt")
    assert receipt.met is True and receipt.met_at is not None
    (given,) = view.owed_letters
    assert (given.purpose, given.how, given.by) == ("receipt", "phone", "intake")
    assert [e.actor for e in view.timeline if e.event == "letter_delivered"] == ["intake"]
    assert not [m for m in mail_sink.messages() if submitted.receipt_code in m["Subject"]]
    assert not [
        c for c in await _queued_letters(pg_dsn) if c["receipt_code"] == submitted.receipt_code
    ]

    # The crime is recorded and the case closed: the CRN letter is owed, not lost.
    await handle.execute_update(
        CaseWorkflow.record_crime,
        RecordCrime(actor="handler-1", category="burglary", no_investigation=True, outcome=18),
    )
    view = await wait_view(
        handle, lambda v: any(o.purpose == "crime-recorded" for o in v.owed_letters)
    )
    assert view.stage == Stage.CLOSED
    assert _deadline(view, "crn_or_explanation").met is None  # open until it is sent
    queued = [
        c for c in await _queued_letters(pg_dsn) if c["receipt_code"] == submitted.receipt_code
    ]
    assert [(c["purpose"], c["ways"], c["meets"]) for c in queued] == [
        ("crime-recorded", ["post", "phone"], "crn_or_explanation")
    ]
    assert queued[0]["due_at"] == _deadline(view, "crn_or_explanation").due_at.isoformat()
    # Kept sealed: the letter (its CRN) is in neither the owed row nor the outbox in clear.
    row = await db_pool.fetchrow(
        "SELECT o.key_id, o.sealed, n.body FROM owed_letters o JOIN notifications n"
        " USING (workflow_id, purpose) WHERE workflow_id = $1",
        submitted.workflow_id,
    )
    assert row["key_id"] != "plaintext" and row["body"] == ""
    assert view.crime_reference.encode() not in bytes(row["sealed"])
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    # Not reopened while it still owes the reporter a letter.
    with pytest.raises(RejectedError, match="still owes the reporter a letter"):
        await reopen(
            client,
            submitted.receipt_code,
            Reopen(actor="handler-1", reason="New information."),
            database_url=pg_dsn,
        )

    # The case file (audited) has the letter to post, unsealed.
    file = await casework.case_file(
        pg_dsn, actor="handler-1", workflow_id=submitted.workflow_id, keyring=keyring(settings)
    )
    (letter,) = file["letters"]
    assert view.crime_reference in letter["text"] and letter["delivered_at"] is None

    # A handler posts it: the deadline is met now, on time; the case finishes.
    result = await handle.execute_update(
        CaseWorkflow.letter_sent, LetterSent(actor="handler-1", how="post")
    )
    assert "crn_or_explanation met on time" in result.detail
    final = await handle.result()
    assert _deadline(final, "crn_or_explanation").met is True
    (_, sent) = final.owed_letters
    assert (sent.how, sent.by) == ("post", "handler-1")
    assert not [
        c for c in await _queued_letters(pg_dsn) if c["receipt_code"] == submitted.receipt_code
    ]
    stored = await db_pool.fetchrow(
        "SELECT delivered_how, delivered_by FROM owed_letters WHERE workflow_id = $1"
        " AND purpose = 'crime-recorded'",
        submitted.workflow_id,
    )
    assert dict(stored) == {"delivered_how": "post", "delivered_by": "handler-1"}
    projected = await db_pool.fetchrow(
        "SELECT met_at IS NOT NULL AS met, missed FROM case_deadlines"
        " WHERE workflow_id = $1 AND promise = 'crn_or_explanation'",
        submitted.workflow_id,
    )
    assert dict(projected) == {"met": True, "missed": False}


async def test_receipt_owed_then_missed_and_met_late_by_phone(
    client, case_worker, mail_sink, db_pool, pg_dsn, time_env
):
    submitted, handle = await _phone_case(client, case_worker, receipt_given_by_staff=False)
    view = await handle.query(CaseWorkflow.view)
    assert _deadline(view, "receipt").met is None
    queued = [
        c for c in await _queued_letters(pg_dsn) if c["receipt_code"] == submitted.receipt_code
    ]
    assert [c["purpose"] for c in queued] == ["receipt"]
    assert queued[0]["band"] == "due_soon"

    # Nobody rings back within the grace: missed, honestly, and the supervisor is told.
    await skip_time(time_env, timedelta(minutes=10))
    view = await wait_view(handle, lambda v: _deadline(v, "receipt").missed)
    assert view.overdue
    queued = [
        c for c in await _queued_letters(pg_dsn) if c["receipt_code"] == submitted.receipt_code
    ]
    assert queued[0]["band"] == "overdue"

    result = await handle.execute_update(
        CaseWorkflow.letter_sent,
        LetterSent(actor="handler-1", how="phone", letter="receipt"),
    )
    assert "receipt met late" in result.detail
    view = await handle.query(CaseWorkflow.view)
    receipt = _deadline(view, "receipt")
    assert receipt.met is False and receipt.met_at is not None  # met, late
    assert not view.overdue
    assert not [
        c for c in await _queued_letters(pg_dsn) if c["receipt_code"] == submitted.receipt_code
    ]


async def test_letter_sent_refused_when_nothing_is_owed(client, case_worker, db_pool):
    submitted = await submit(client, example("ordinary"), task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            CaseWorkflow.letter_sent, LetterSent(actor="handler-1", how="post")
        )
    assert "no letter is owed" in str(refused.value.cause)
    phone, owed = await _phone_case(client, case_worker, receipt_given_by_staff=False)
    with pytest.raises(WorkflowUpdateFailedError) as wrong:
        await owed.execute_update(
            CaseWorkflow.letter_sent, LetterSent(actor="handler-1", how="post", letter="nope")
        )
    assert "'nope' is not owed (owed: receipt)" in str(wrong.value.cause)
    # Refused before history: no authorisation was even asked for.
    audited = await db_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE workflow_id = $1 AND action = 'letter-sent'",
        phone.workflow_id,
    )
    assert audited == 0


async def test_an_owed_victim_update_keeps_its_own_deadline(
    client, case_worker, db_pool, pg_dsn, time_env
):
    submitted, handle = await _phone_case(client, case_worker)
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await wait_view(handle, lambda v: v.stage == Stage.WITH_IMU and v.assessment is not None)
    await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await handle.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    for _ in range(3):  # the CRN letter, the investigation reference: posted
        view = await handle.query(CaseWorkflow.view)
        if not any(o.delivered_at is None for o in view.owed_letters):
            break
        await handle.execute_update(
            CaseWorkflow.letter_sent, LetterSent(actor="officer-1", how="post")
        )
    await wait_view(handle, lambda v: v.stage == Stage.INVESTIGATING and v.intelligence is not None)

    await skip_time(time_env, FAST.update_interval + timedelta(minutes=5))
    view = await wait_view(
        handle, lambda v: any(o.purpose == "victim-update-1" for o in v.owed_letters)
    )
    updates = [d for d in view.deadlines if d.name == "victim_update"]
    assert len(updates) == 2 and not any(d.superseded for d in updates)
    assert [d.met for d in updates] == [None, None]

    result = await handle.execute_update(
        CaseWorkflow.letter_sent, LetterSent(actor="officer-1", how="phone")
    )
    assert "victim_update met on time" in result.detail
    view = await handle.query(CaseWorkflow.view)
    first, second = [d for d in view.deadlines if d.name == "victim_update"]
    assert first.met is True and second.met is None  # the next update's stays open
