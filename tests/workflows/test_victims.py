"""After the crime is recorded, on the time-skipping server with PostgreSQL and SMTP:
reopening from each closed stage, Right 6 suspect events and their working-day
deadlines, the agreed update cadence and the Victim Personal Statement offer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory

from domain.calendar import LONDON
from domain.case import (
    Acknowledge,
    CloseCase,
    ImuClose,
    ImuInvestigate,
    NotACrime,
    RecordCrime,
    RecordStep,
    Redirect,
    Reopen,
    Stage,
)
from domain.victims import RecordSuspectEvent, SetUpdates, SuspectEvent
from starter.admin import act
from starter.errors import RejectedError
from starter.intake import submit
from starter.reopen import closed_case, reopen
from tests.helpers import example, skip_time, wait_stage, wait_view
from tests.workflows.conftest import FAST
from workflows.case import CaseWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories"


async def _review(client, task_queue, **overrides):
    submitted = await submit(
        client, example("ordinary", **overrides), task_queue=task_queue, timings=FAST
    )
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    return submitted, handle


async def _investigating(client, task_queue, **overrides):
    submitted, handle = await _review(client, task_queue, **overrides)
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await handle.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    return submitted, handle


def _enhanced() -> dict:
    reporter = json.loads(example("ordinary").reporter.model_dump_json())
    reporter["under_18"] = True
    return {"reporter": reporter}


async def _reopen(client, dsn, code, actor="handler-1", reason="A witness came forward."):
    return await reopen(client, code, Reopen(actor=actor, reason=reason), database_url=dsn)


# --- reopening --------------------------------------------------------------------------


async def test_not_a_crime_reopens_to_review_with_everything_kept(
    client, case_worker, db_pool, pg_dsn, mail_sink
):
    submitted, handle = await _review(client, case_worker)
    await handle.execute_update(
        CaseWorkflow.not_a_crime, NotACrime(actor="handler-1", advice="Call the landlord.")
    )
    closed = await handle.result()
    result = await _reopen(client, pg_dsn, submitted.receipt_code)
    assert (result.receipt_code, result.stage) == (submitted.receipt_code, Stage.AWAITING_REVIEW)

    view = await handle.query(CaseWorkflow.view)
    assert view.reopenings == 1 and view.outcome is None
    assert view.timeline[: len(closed.timeline)] == closed.timeline
    assert [e.event for e in view.timeline[len(closed.timeline) :]][:2] == [
        "reopened",
        "stage:awaiting_review",
    ]
    pending = [d for d in view.deadlines if d.met is None and not d.superseded]
    assert {d.name for d in pending} >= {"crime_recording_decision", "crn_or_explanation"}
    assert all(d.due_at > closed.timeline[-1].at for d in pending)
    await mail_sink.await_for(
        lambda m: m["Subject"] == f"We have reopened your report {submitted.receipt_code}"
    )
    row = await db_pool.fetchrow(
        "SELECT stage, closed_at FROM cases WHERE workflow_id = $1", submitted.workflow_id
    )
    assert (row["stage"], row["closed_at"]) == ("awaiting_review", None)
    audit = await db_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE workflow_id = $1 AND action = 'reopen' AND allowed",
        submitted.workflow_id,
    )
    assert audit == 1
    reason = await db_pool.fetchval(
        "SELECT detail->>'reason' FROM case_events WHERE workflow_id = $1 AND event = 'reopened'",
        submitted.workflow_id,
    )
    assert reason == "A witness came forward."

    with pytest.raises(RejectedError, match="while the case is awaiting_review: it is open"):
        await _reopen(client, pg_dsn, submitted.receipt_code)

    # The reopened case goes on as any other: the crime is recorded, its letter sent.
    recorded = await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    assert recorded.stage == Stage.WITH_IMU
    view = await wait_view(
        handle,
        lambda v: (
            next(
                d
                for d in v.deadlines
                if d.name == "crn_or_explanation"
                and not d.superseded
                and d.due_at > closed.timeline[-1].at
            ).met
            is True
        ),
    )


async def test_closed_by_imu_reopens_to_the_imu_and_closes_again(
    client, case_worker, db_pool, pg_dsn, mail_sink
):
    submitted, handle = await _review(client, case_worker)
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await handle.execute_update(
        CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason="no-witnesses")
    )
    closed = await handle.result()
    result = await _reopen(client, pg_dsn, closed.crime_reference, actor="imu-1")
    assert result.stage == Stage.WITH_IMU
    view = await handle.query(CaseWorkflow.view)
    assert view.crime_reference == closed.crime_reference
    assert [d.name for d in view.deadlines if d.met is None and not d.superseded] == [
        "imu_decision"
    ]
    await mail_sink.await_for(
        lambda m: m["Subject"] == f"We have reopened your case {closed.crime_reference}"
    )
    await handle.execute_update(
        CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason="witnesses-unwilling")
    )
    again = await handle.result()
    assert again.stage == Stage.CLOSED_BY_IMU
    assert next(d for d in again.deadlines if d.name == "imu_decision").met is True
    letters = await db_pool.fetchval(
        "SELECT count(*) FROM notifications WHERE workflow_id = $1 AND purpose LIKE 'imu-closed%'"
        " AND sent_at IS NOT NULL",
        submitted.workflow_id,
    )
    assert letters == 2  # the second closure is a letter of its own


async def test_closed_investigation_reopens_keeping_its_references(
    client, case_worker, db_pool, pg_dsn
):
    submitted, handle = await _investigating(client, case_worker)
    first = await handle.query(CaseWorkflow.view)
    await handle.execute_update(
        CaseWorkflow.close, CloseCase(actor="officer-1", outcome=14, note="no suspect")
    )
    await handle.result()
    result = await _reopen(client, pg_dsn, first.investigation_reference, actor="supervisor-1")
    assert result.stage == Stage.WITH_IMU
    opened = await handle.execute_update(
        CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1")
    )
    assert opened.reference == first.investigation_reference

    # Handed off again, as a hand-off of its own (not taken for the first one).
    def handed_off_again(v) -> bool:
        events = [e.event for e in v.timeline]
        return "handed_off" in events[events.index("reopened") :]

    view = await wait_view(handle, handed_off_again, timeout=30)
    assert view.stage == Stage.ALLOCATED and view.crime_reference == first.crime_reference
    # The update planned before the closure is not owed any more, nor reported as missed.
    states = await db_pool.fetch(
        "SELECT state FROM case_deadlines WHERE workflow_id = $1 AND name = 'victim_update'",
        submitted.workflow_id,
    )
    assert [r["state"] for r in states] == ["superseded"]


async def test_refusals_write_nothing(client, case_worker, db_pool, pg_dsn):
    submitted, handle = await _review(client, case_worker)
    await handle.execute_update(
        CaseWorkflow.redirect,
        Redirect(actor="handler-1", agency="Essex Police", reason="happened in Essex"),
    )
    await handle.result()
    with pytest.raises(RejectedError, match="redirected: another agency has it"):
        await _reopen(client, pg_dsn, submitted.receipt_code)

    other, other_handle = await _review(client, case_worker)
    with pytest.raises(RejectedError, match="while the case is awaiting_review"):
        await _reopen(client, pg_dsn, other.receipt_code)
    await other_handle.execute_update(
        CaseWorkflow.not_a_crime, NotACrime(actor="handler-1", advice="Call the landlord.")
    )
    await other_handle.result()
    with pytest.raises(RejectedError, match="reopen needs the role"):
        await _reopen(client, pg_dsn, other.receipt_code, actor="officer-1")
    for workflow_id in (submitted.workflow_id, other.workflow_id):
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.status == WorkflowExecutionStatus.COMPLETED  # no new run
        reopened = await db_pool.fetchval(
            "SELECT count(*) FROM case_events WHERE workflow_id = $1 AND event = 'reopened'",
            workflow_id,
        )
        assert reopened == 0


@pytest.mark.parametrize(
    ("recorded", "stage"),
    [
        ("not_a_crime", Stage.AWAITING_REVIEW),
        ("imu_close", Stage.WITH_IMU),
        ("investigated", Stage.WITH_IMU),
    ],
)
async def test_a_case_closed_before_reopening_existed_reopens_from_its_history(
    client, case_worker, db_pool, mail_sink, recorded, stage
):
    """A history recorded by the workflow as it was before this change: its result has no
    ``final_state``; the state is rebuilt from its view and start input."""
    path = HISTORIES / f"{recorded}.json"
    history = WorkflowHistory.from_json("old", path.read_text())
    inp = await closed_case(history, client.data_converter)
    state = inp.state
    assert state is not None and state.stage.is_closed
    assert state.events == len(state.timeline) - 1
    # The case as the store held it (this test's database never saw the old run).
    workflow_id = f"case-{inp.receipt_code}"
    await db_pool.execute("DELETE FROM case_events WHERE workflow_id = $1", workflow_id)
    await db_pool.execute("DELETE FROM notifications WHERE workflow_id = $1", workflow_id)
    await db_pool.execute("DELETE FROM case_references WHERE workflow_id = $1", workflow_id)
    await db_pool.execute("DELETE FROM referrals WHERE workflow_id = $1", workflow_id)
    await db_pool.execute("DELETE FROM audit_log WHERE workflow_id = $1", workflow_id)
    await db_pool.execute("DELETE FROM cases WHERE workflow_id = $1", workflow_id)
    await db_pool.execute(
        "INSERT INTO cases (workflow_id, receipt_code, submission_id, stage, priority, category,"
        " report, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        workflow_id,
        inp.receipt_code,
        inp.report.submission_id,
        state.stage.value,
        state.priority.value,
        state.category,
        inp.report.model_dump(mode="json"),
        inp.received_at,
    )
    handle = await client.start_workflow(
        CaseWorkflow.run,
        inp.model_copy(update={"reopen": Reopen(actor="supervisor-1", reason="new CCTV")}),
        id=workflow_id,
        task_queue=case_worker,
    )
    result = await handle.execute_update(CaseWorkflow.reopened)
    assert result.stage == stage
    view = await handle.query(CaseWorkflow.view)
    assert view.timeline[: len(state.timeline)] == state.timeline
    assert view.crime_reference == state.crime_reference
    keys = await db_pool.fetch(
        "SELECT event_key FROM case_events WHERE workflow_id = $1 ORDER BY event_key", workflow_id
    )
    assert keys[0]["event_key"].startswith(f"{state.events + 1:05d}.reopened")


# --- Right 6: suspect events ------------------------------------------------------------


async def _at_london(time_env, when: datetime) -> None:
    now = await time_env.get_current_time()
    await skip_time(time_env, when.replace(tzinfo=LONDON).astimezone(UTC) - now)


def _london(at: datetime) -> datetime:
    """London wall-clock time to the minute (the skipped clock lands a few ms late)."""
    return at.astimezone(LONDON).replace(tzinfo=None, second=0, microsecond=0)


async def _event(handle, event: SuspectEvent, note: str | None = None):
    return await handle.execute_update(
        CaseWorkflow.suspect_event,
        RecordSuspectEvent(actor="officer-1", event=event, note=note),
    )


@pytest.mark.parametrize(
    ("enhanced", "friday_due", "christmas_due"),
    [
        (False, datetime(2026, 12, 11, 11, 0), datetime(2027, 1, 5, 10, 0)),
        (True, datetime(2026, 12, 7, 11, 0), datetime(2026, 12, 29, 10, 0)),
    ],
)
async def test_suspect_events_are_told_within_working_days_over_weekends_and_holidays(
    client, case_worker, time_env, mail_sink, enhanced, friday_due, christmas_due
):
    submitted, handle = await _investigating(
        client, case_worker, **(_enhanced() if enhanced else {})
    )
    assert (await handle.query(CaseWorkflow.view)).enhanced_rights is enhanced
    # Friday 4 December 2026, 11:00: a weekend before the deadline.
    await _at_london(time_env, datetime(2026, 12, 4, 11, 0))
    await _event(handle, SuspectEvent.ARRESTED, "Arrested at home.")
    # Christmas Eve, 10:00: Christmas, a weekend, Boxing Day's substitute and New Year.
    await _at_london(time_env, datetime(2026, 12, 24, 10, 0))
    await _event(handle, SuspectEvent.CHARGED)
    view = await wait_view(
        handle, lambda v: all(d.met for d in v.deadlines if d.name.startswith("right6_"))
    )
    arrested = next(d for d in view.deadlines if d.name == "right6_arrested")
    charged = next(d for d in view.deadlines if d.name == "right6_charged")
    assert _london(arrested.due_at) == friday_due
    assert _london(charged.due_at) == christmas_due
    assert arrested.met_at is not None and arrested.met_at <= arrested.due_at
    assert view.vps_offered_at is not None  # offered in the charged letter
    mail = await mail_sink.await_for(
        lambda m: m["Subject"] == f"The suspect has been charged: {view.crime_reference}"
    )
    assert "Victim Personal Statement" in mail.get_content()


async def test_every_suspect_event_is_recorded_and_told(client, case_worker, mail_sink, db_pool):
    submitted, handle = await _investigating(client, case_worker)
    for event in SuspectEvent:
        result = await _event(handle, event, note=f"note for {event.value}")
        assert "victim is told by" in result.detail
    view = await wait_view(
        handle,
        lambda v: sum(1 for d in v.deadlines if d.name.startswith("right6_") and d.met) == 7,
    )
    assert [e.event for e in view.timeline if e.event.startswith("suspect:")] == [
        f"suspect:{e.value}" for e in SuspectEvent
    ]
    subjects = {
        row["subject"]
        for row in await db_pool.fetch(
            "SELECT subject FROM notifications WHERE workflow_id = $1 AND purpose LIKE 'suspect-%'"
            " AND sent_at IS NOT NULL",
            submitted.workflow_id,
        )
    }
    assert len(subjects) == 7
    nfa = await mail_sink.await_for(
        lambda m: (
            m["Subject"].startswith("No further action") and view.crime_reference in m["Subject"]
        )
    )
    assert "Victims' Right to" in nfa.get_content() and "note for released-nfa" in nfa.get_content()
    bail = await mail_sink.await_for(
        lambda m: (
            m["Subject"].startswith("The suspect has been released on bail")
            and view.crime_reference in m["Subject"]
        )
    )
    assert "not contacting you" in bail.get_content()


async def test_suspect_events_and_updates_outside_their_stages_are_refused(
    client, case_worker, pg_dsn
):
    submitted, handle = await _review(client, case_worker)
    before = await handle.query(CaseWorkflow.view)
    code = submitted.receipt_code
    event = RecordSuspectEvent(actor="officer-1", event=SuspectEvent.ARRESTED)
    agreed = SetUpdates(actor="officer-1", every=timedelta(days=7))
    with pytest.raises(
        RejectedError, match="suspect-event is not allowed while the case is awaiting_review"
    ):
        await act(client, code, event, database_url=pg_dsn)
    with pytest.raises(
        RejectedError, match="set-updates is not allowed while the case is awaiting_review"
    ):
        await act(client, code, agreed, database_url=pg_dsn)
    after = await handle.query(CaseWorkflow.view)
    assert after.timeline == before.timeline and after.deadlines == before.deadlines


# --- agreed updates and the VPS -------------------------------------------------------


async def test_agreed_cadence_replaces_the_default(client, case_worker, time_env, mail_sink):
    submitted, handle = await _investigating(client, case_worker)
    result = await handle.execute_update(
        CaseWorkflow.set_updates, SetUpdates(actor="officer-1", every=timedelta(days=7))
    )
    assert "every week" in result.detail
    await mail_sink.await_for(
        lambda m: (
            m["Subject"].startswith("How often we will update you")
            and "every week" in m.get_content()
        )
    )
    await skip_time(time_env, timedelta(days=7, minutes=5))
    view = await wait_view(handle, lambda v: v.victim_updates == 1)
    default, *agreed = [d for d in view.deadlines if d.name == "victim_update"]
    assert default.superseded and default.met is None  # the 28-day one, replaced
    assert agreed[0].met is True  # on time, a week in
    assert agreed[0].due_at - agreed[0].met_at < timedelta(hours=1)
    assert view.update_interval == timedelta(days=7)
    await skip_time(time_env, timedelta(days=7))
    view = await wait_view(handle, lambda v: v.victim_updates == 2)
    assert FAST.update_interval > timedelta(days=14)
    updates = [d for d in view.deadlines if d.name == "victim_update" and not d.superseded]
    assert [d.met for d in updates] == [True, True, None]  # the third one is planned
    assert updates[2].due_at - updates[1].met_at > timedelta(days=7)


async def test_vps_offer_recorded_as_a_step(client, case_worker):
    submitted, handle = await _investigating(client, case_worker)
    result = await handle.execute_update(
        CaseWorkflow.record_step, RecordStep(actor="officer-1", step="vps", note="offered at home")
    )
    assert "Victim Personal Statement" in result.detail
    view = await handle.query(CaseWorkflow.view)
    assert view.vps_offered_at is not None
    assert "vps" not in view.tasks
    assert "vps_offered" in [e.event for e in view.timeline]
