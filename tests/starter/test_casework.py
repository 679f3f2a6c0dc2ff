"""The queue and the case file over the real case store (PostgreSQL), without Temporal.

Cases are written by the case store's own activities (``open_case``, ``record_change``)
as the workflow writes them; the queue and ``case_file`` read them back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activities.store import CaseStore
from domain.case import Deadline, case_workflow_id, receipt_code_for
from domain.effects import CaseChange, CaseNote, OpenCase
from starter import casework
from starter.errors import RejectedError
from tests.helpers import example
from whn.temporal import keyring

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
REVIEW = timedelta(hours=24)


async def _case(
    store: CaseStore,
    *,
    stage: str,
    priority: str = "grade-3",
    due_at: datetime | None = None,
    received_at: datetime = NOW - timedelta(hours=1),
    team: str | None = None,
    **fields: object,
) -> str:
    report = example("ordinary")
    code = receipt_code_for(report.submission_id)
    wid = case_workflow_id(code)
    await store.open_case(
        OpenCase(
            workflow_id=wid,
            receipt_code=code,
            submission_id=report.submission_id,
            report=report,
            received_at=received_at,
            stage="received",
            priority=priority,
            category="burglary",
        )
    )
    await store.record_change(
        CaseChange(
            workflow_id=wid,
            event_key="00001.stage",
            at=received_at,
            actor="system",
            event=f"stage:{stage}",
            fields={"stage": stage, "priority": priority, "team": team, **fields},
            # The queue's due_at is the earliest deadline staff owe: a reply the reporter
            # owes, due sooner, does not count.
            deadlines=[
                Deadline(name="details_reply_1", due_at=received_at),
                *([Deadline(name="crime_recording_decision", due_at=due_at)] if due_at else []),
            ],
        )
    )
    return code


@pytest.fixture
def store(db_pool, settings) -> CaseStore:
    return CaseStore(db_pool, force_code="35", keyring=keyring(settings))


def _mine(result: dict, codes: list[str]) -> list[str]:
    return [c["receipt_code"] for c in result["cases"] if c["receipt_code"] in codes]


async def test_queue_orders_by_priority_then_earliest_deadline(store, pg_dsn):
    late = await _case(store, stage="awaiting_review", due_at=NOW + timedelta(hours=20))
    soon = await _case(store, stage="awaiting_review", due_at=NOW + timedelta(minutes=30))
    urgent = await _case(
        store, stage="awaiting_review", priority="grade-2", due_at=NOW + timedelta(hours=22)
    )
    overdue = await _case(
        store, stage="awaiting_review", due_at=NOW - timedelta(hours=1), overdue=True
    )
    today = await _case(store, stage="awaiting_review", due_at=NOW + timedelta(hours=5))
    nothing_due = await _case(store, stage="awaiting_review")
    imu = await _case(store, stage="with_imu", priority="grade-1", due_at=NOW)
    codes = [late, soon, urgent, overdue, today, nothing_due, imu]

    result = await casework.queue(
        pg_dsn, actor="handler-1", review_deadline=REVIEW, limit=10_000, now=NOW
    )
    assert _mine(result, codes) == [urgent, overdue, soon, today, late, nothing_due]
    rows = {c["receipt_code"]: c for c in result["cases"]}
    assert {k: rows[k]["band"] for k in (urgent, overdue, soon, today, late, nothing_due)} == {
        urgent: "later",
        overdue: "overdue",
        soon: "due_soon",
        today: "today",
        late: "later",
        nothing_due: "later",
    }
    assert {rows[k]["next_action"] for k in (urgent, soon)} == {"review"}
    assert set(rows[soon]) >= {
        "receipt_code",
        "stage",
        "priority",
        "due_at",
        "band",
        "next_action",
        "claimed_by",
        "age",
    }
    assert rows[soon]["age"] == "1h 0m" and rows[soon]["claimed_by"] is None

    imu_queue = await casework.queue(
        pg_dsn, actor="imu-1", review_deadline=REVIEW, limit=10_000, now=NOW
    )
    assert _mine(imu_queue, codes) == [imu]
    assert imu_queue["cases"][0]["next_action"] == "IMU decision"


async def test_team_mine_and_supervisor_views(store, pg_dsn):
    team = "economic-crime"  # other tests' cases may be there too: only ours are compared
    allocated = await _case(store, stage="allocated", team=team, due_at=NOW + timedelta(hours=3))
    held = await _case(
        store,
        stage="investigating",
        team=team,
        claimed_by="officer-1",
        claimed_until=NOW + timedelta(hours=1),
    )
    lapsed = await _case(
        store,
        stage="awaiting_review",
        received_at=NOW - timedelta(days=2),
        claimed_by="handler-1",
        claimed_until=NOW - timedelta(minutes=1),
    )
    old_untouched = await _case(
        store, stage="awaiting_review", received_at=NOW - timedelta(hours=30)
    )
    old_touched = await _case(store, stage="awaiting_review", received_at=NOW - timedelta(hours=30))
    wid = case_workflow_id(old_touched)
    await store.record_change(
        CaseChange(
            workflow_id=wid,
            event_key="00002.flagged",
            at=NOW - timedelta(hours=2),
            actor="handler-1",
            event="note",
        )
    )
    fresh = await _case(store, stage="awaiting_review", received_at=NOW - timedelta(hours=3))
    codes = [allocated, held, lapsed, old_untouched, old_touched, fresh]

    by_team = await casework.queue(
        pg_dsn, actor="officer-1", team=team, review_deadline=REVIEW, limit=10_000, now=NOW
    )
    assert _mine(by_team, codes) == [allocated, held]
    rows = {c["receipt_code"]: c for c in by_team["cases"]}
    assert rows[allocated]["next_action"] == "acknowledge allocation"
    assert rows[held]["claimed_by"] == "officer-1"
    assert {c["team"] for c in by_team["cases"]} == {team}

    mine = await casework.queue(
        pg_dsn, actor="officer-1", mine=True, review_deadline=REVIEW, now=NOW
    )
    assert held in [c["receipt_code"] for c in mine["cases"]]
    mine_h = await casework.queue(
        pg_dsn, actor="handler-1", mine=True, review_deadline=REVIEW, now=NOW
    )
    assert lapsed not in [c["receipt_code"] for c in mine_h["cases"]]  # the claim has lapsed

    untouched = await casework.queue(
        pg_dsn,
        actor="supervisor-1",
        role="supervisor",
        review_deadline=REVIEW,
        limit=10_000,
        now=NOW,
    )
    assert set(_mine(untouched, codes)) == {lapsed, old_untouched}

    with pytest.raises(RejectedError, match="unknown staff id"):
        await casework.queue(pg_dsn, actor="nobody", review_deadline=REVIEW)
    with pytest.raises(RejectedError, match="--team: unknown team"):
        await casework.queue(pg_dsn, actor="officer-1", team="nowhere", review_deadline=REVIEW)
    with pytest.raises(RejectedError, match="--role"):
        await casework.queue(pg_dsn, actor="handler-1", role="janitor", review_deadline=REVIEW)


async def test_case_file_notes_sealed_and_reads_audited(store, pg_dsn, db_pool, settings):
    code = await _case(store, stage="awaiting_details")
    wid = case_workflow_id(code)
    await store.record_change(
        CaseChange(
            workflow_id=wid,
            event_key="00002.stage:awaiting_details",
            at=NOW,
            actor="handler-1",
            event="stage:awaiting_details",
            notes=[CaseNote(kind="details_question", text="Which door was forced?", request=1)],
        )
    )
    await store.record_change(
        CaseChange(
            workflow_id=wid,
            event_key="00003.details_received",
            at=NOW + timedelta(hours=1),
            actor="reporter",
            event="details_received",
            notes=[CaseNote(kind="details_reply", text="The back door.", request=1)],
        )
    )
    # A retried write (same event key) records the note once.
    await store.record_change(
        CaseChange(
            workflow_id=wid,
            event_key="00003.details_received",
            at=NOW + timedelta(hours=1),
            actor="reporter",
            event="details_received",
            notes=[CaseNote(kind="details_reply", text="The back door.", request=1)],
        )
    )
    raw = await db_pool.fetch("SELECT key_id, sealed FROM case_notes WHERE workflow_id = $1", wid)
    assert len(raw) == 2 and {r["key_id"] for r in raw} == {"test-2"}
    assert all(b"door" not in bytes(r["sealed"]) for r in raw)  # no plaintext at rest

    file = await casework.case_file(
        pg_dsn, actor="handler-1", workflow_id=wid, keyring=keyring(settings)
    )
    assert file["details"] == [
        {
            "number": 1,
            "question": "Which door was forced?",
            "asked_by": "handler-1",
            "asked_at": NOW.isoformat(),
            "replies": [{"at": (NOW + timedelta(hours=1)).isoformat(), "text": "The back door."}],
        }
    ]
    assert file["as_given"]["reporter"]["name"] == "Karen Smith"

    with pytest.raises(RejectedError, match="unknown staff id"):
        await casework.case_file(pg_dsn, actor="intruder", workflow_id=wid, keyring=None)
    audit = await db_pool.fetch(
        "SELECT actor, allowed FROM audit_log WHERE workflow_id = $1 AND action = 'show-report'"
        " ORDER BY id",
        wid,
    )
    assert [(a["actor"], a["allowed"]) for a in audit] == [("handler-1", True), ("intruder", False)]
    # Moved to another row, a sealed note does not open.
    from whn.codec import CodecKeyError
    from whn.sealed import unseal

    with pytest.raises(CodecKeyError):
        unseal(
            keyring(settings),
            raw[0]["key_id"],
            raw[0]["sealed"],
            context="case-x/00001/details_reply",
        )
