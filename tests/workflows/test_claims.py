"""Claims on the time-skipping server with real PostgreSQL: one holder, refusals naming
them, a supervisor's override, the lapse, reassignment, and the audit of each."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from domain.actions import Claim, Reassign, Release
from domain.case import RecordCrime, RequestDetails, Stage
from starter.intake import submit
from tests.helpers import example, skip_time, wait_stage, wait_view
from tests.workflows.conftest import FAST
from whn import attributes as sa
from workflows.case import CaseWorkflow


@pytest.fixture
async def roster(db_pool):
    await db_pool.execute(
        """INSERT INTO staff (staff_id, name, roles, active) VALUES
             ('handler-2', 'Second Handler', ARRAY['call_handler'], true),
             ('handler-off', 'Left the Force', ARRAY['call_handler'], false)
           ON CONFLICT (staff_id) DO NOTHING"""
    )


async def _in_review(client, task_queue):
    submitted = await submit(client, example("ordinary"), task_queue=task_queue, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    return handle


async def _refused(call, match: str) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await call
    message = str(err.value.cause)
    assert match in message, message
    return message


async def _accepted_updates(handle) -> int:
    n = 0
    async for event in handle.fetch_history_events():
        n += event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return n


async def test_two_handlers_race_one_wins_the_other_told_who(client, case_worker, roster):
    handle = await _in_review(client, case_worker)
    results = await asyncio.gather(
        handle.execute_update(CaseWorkflow.claim, Claim(actor="handler-1")),
        handle.execute_update(CaseWorkflow.claim, Claim(actor="handler-2")),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
    assert len(won) == 1 and len(lost) == 1, results
    view = await handle.query(CaseWorkflow.view)
    holder = view.claimed_by
    other = {"handler-1", "handler-2"} - {holder}
    assert holder in won[0].detail
    assert f"held by {holder}" in str(lost[0].cause)
    # Claiming it again, the other handler is told the holder's name, before history.
    before = await _accepted_updates(handle)
    await _refused(
        handle.execute_update(CaseWorkflow.claim, Claim(actor=other.pop())), f"held by {holder}"
    )
    assert await _accepted_updates(handle) == before
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.ASSIGNEE) == holder


async def test_held_case_refused_to_another_allowed_to_a_supervisor(
    client, case_worker, roster, db_pool
):
    handle = await _in_review(client, case_worker)
    await handle.execute_update(CaseWorkflow.claim, Claim(actor="handler-1"))
    before = await _accepted_updates(handle)
    await _refused(
        handle.execute_update(
            CaseWorkflow.record_crime, RecordCrime(actor="handler-2", category="burglary")
        ),
        "held by handler-1",
    )
    await _refused(
        handle.execute_update(CaseWorkflow.release, Release(actor="handler-2")),
        "you do not hold this case: handler-1 does",
    )
    assert await _accepted_updates(handle) == before  # refused in the validator
    # Marking an action as a supervisor's does not make a handler one: the roster says no.
    await _refused(
        handle.execute_update(
            CaseWorkflow.record_crime,
            RecordCrime(actor="handler-2", category="burglary", override_claim=True),
        ),
        "held by handler-1: only they or a supervisor",
    )
    # The holder acts freely.
    await handle.execute_update(
        CaseWorkflow.request_details, RequestDetails(actor="handler-1", question="Which door?")
    )
    result = await handle.execute_update(
        CaseWorkflow.record_crime,
        RecordCrime(actor="supervisor-1", category="burglary", override_claim=True),
    )
    assert result.stage == Stage.WITH_IMU
    view = await handle.query(CaseWorkflow.view)
    assert view.claimed_by is None  # with the IMU now: the handler's claim ended
    events = [e.event for e in view.timeline]
    assert events.count("claimed") == 1 and "released" in events
    audit = await db_pool.fetch(
        "SELECT actor, action, allowed FROM audit_log WHERE workflow_id = $1 ORDER BY id",
        handle.id,
    )
    rows = [(a["actor"], a["action"], a["allowed"]) for a in audit]
    assert ("handler-1", "claimed", True) in rows
    assert ("handler-2", "record-crime", False) in rows
    assert ("supervisor-1", "record-crime", True) in rows
    assert ("system", "released", True) in rows


async def test_claim_lapses_after_the_timeout(client, case_worker, time_env, db_pool):
    handle = await _in_review(client, case_worker)
    await handle.execute_update(CaseWorkflow.claim, Claim(actor="handler-1"))
    held = await db_pool.fetchrow(
        "SELECT claimed_by, claimed_until FROM cases WHERE workflow_id = $1", handle.id
    )
    assert held["claimed_by"] == "handler-1"
    await skip_time(time_env, FAST.claim_timeout + timedelta(minutes=1))
    view = await wait_view(handle, lambda v: "claim_lapsed" in [e.event for e in v.timeline])
    assert view.claimed_by is None and view.stage == Stage.AWAITING_REVIEW
    row = await db_pool.fetchrow("SELECT claimed_by FROM cases WHERE workflow_id = $1", handle.id)
    assert row["claimed_by"] is None
    lapsed = await db_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE workflow_id = $1 AND action = 'claim_lapsed'",
        handle.id,
    )
    assert lapsed == 1
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.ASSIGNEE) is None
    # Free again: another handler may take it.
    await handle.execute_update(CaseWorkflow.claim, Claim(actor="supervisor-1"))


async def test_reassign_and_its_refusals(client, case_worker, roster, db_pool):
    handle = await _in_review(client, case_worker)
    await handle.execute_update(CaseWorkflow.claim, Claim(actor="handler-1"))
    for to, why in (
        ("nobody-at-all", "--to: unknown staff id 'nobody-at-all'"),
        ("handler-off", "--to: staff 'handler-off' is disabled"),
        ("officer-1", "--to: officer-1 has officer; the case needs call_handler"),
        ("handler-1", "--to: handler-1 already holds this case"),
    ):
        await _refused(
            handle.execute_update(
                CaseWorkflow.reassign, Reassign(actor="supervisor-1", to=to, override_claim=True)
            ),
            why,
        )
    await _refused(
        handle.execute_update(CaseWorkflow.reassign, Reassign(actor="handler-2", to="handler-2")),
        "reassign needs the role supervisor",
    )
    assert (await handle.query(CaseWorkflow.view)).claimed_by == "handler-1"  # nothing changed
    result = await handle.execute_update(
        CaseWorkflow.reassign, Reassign(actor="supervisor-1", to="handler-2", override_claim=True)
    )
    assert "handler-2 holds the case" in result.detail
    view = await handle.query(CaseWorkflow.view)
    assert view.claimed_by == "handler-2"
    assert [e.actor for e in view.timeline if e.event == "reassigned"] == ["supervisor-1"]
    row = await db_pool.fetchrow("SELECT claimed_by FROM cases WHERE workflow_id = $1", handle.id)
    assert row["claimed_by"] == "handler-2"
    await _refused(
        handle.execute_update(
            CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
        ),
        "held by handler-2",
    )
    await handle.execute_update(CaseWorkflow.release, Release(actor="handler-2"))
    await _refused(
        handle.execute_update(CaseWorkflow.release, Release(actor="handler-2")),
        "nobody holds this case",
    )
