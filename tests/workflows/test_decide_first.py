"""A staff action decided before it is authorised (patch begin-in-commit): one local
activity, and a refusal leaves the case exactly as it was (time-skipping server, real
PostgreSQL and SMTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.case import DetailsReply, RequestDetails, Stage
from starter.intake import submit
from tests.helpers import example, wait_stage, wait_view
from tests.workflows.conftest import FAST
from whn import attributes as sa
from workflows.case import CaseWorkflow

Handle = WorkflowHandle[Any, Any]
_UPSERT = EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES


async def _in_review(client, queue) -> Handle:  # type: ignore[no-untyped-def]
    submitted = await submit(client, example("ordinary"), task_queue=queue, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    return handle


def _of_update(history: Any, nth: int) -> list[str]:
    """The local activities (by type) and upserts of the ``nth`` update, accepted to
    completed, in order."""
    seen, inside, out = -1, False, []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            seen += 1
            inside = seen == nth
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            if inside:
                return out
        elif inside and e.event_type == _UPSERT:
            out.append("upsert")
        elif inside and (m := e.marker_recorded_event_attributes).marker_name == (
            "core_local_activity"
        ):
            out.append(json.loads(m.details["data"].payloads[0].data)["activity_type"])
    raise AssertionError(f"update {nth} not completed in the history")


async def _store(pool: Any, workflow_id: str) -> dict[str, Any]:
    """Everything the case store holds of the case but its audit rows."""
    return {
        "case": dict(await pool.fetchrow("SELECT * FROM cases WHERE workflow_id = $1", workflow_id)),
        "events": [
            dict(r)
            for r in await pool.fetch(
                "SELECT * FROM case_events WHERE workflow_id = $1 ORDER BY id", workflow_id
            )
        ],
        "notes": await pool.fetchval(
            "SELECT count(*) FROM case_notes WHERE workflow_id = $1", workflow_id
        ),
        "deadlines": [
            dict(r)
            for r in await pool.fetch(
                "SELECT * FROM case_deadlines WHERE workflow_id = $1 ORDER BY promise", workflow_id
            )
        ],
        "outbox": await pool.fetchval(
            "SELECT count(*) FROM notifications WHERE workflow_id = $1", workflow_id
        ),
    }


def _letters(sink: Any, workflow_id: str) -> list[str]:
    return [m["X-WHN-Purpose"] for m in sink.messages() if m["X-WHN-Case"] == workflow_id]


async def _audit(pool: Any, workflow_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT actor, action, allowed, reason, action_key, xmin::text AS txn
           FROM audit_log WHERE workflow_id = $1 ORDER BY id""",
        workflow_id,
    )
    return [dict(r) for r in rows]


async def test_a_refused_action_decided_first_leaves_the_case_as_it_was(
    client, case_worker, db_pool, mail_sink
):
    handle = await _in_review(client, case_worker)
    view = await handle.query(CaseWorkflow.view)
    attributes = (await handle.describe()).typed_search_attributes
    store = await _store(db_pool, handle.id)
    letters = _letters(mail_sink, handle.id)
    audit = await _audit(db_pool, handle.id)
    question = RequestDetails(actor="imu-1", question="Which door was forced?")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(CaseWorkflow.request_details, question)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NotAuthorised", cause
    assert "call_handler" in cause.message

    # Nothing of what the body did survives: the case's state, its search attributes,
    # its rows, its letters; the refusal's audit row is all the store gained.
    assert await handle.query(CaseWorkflow.view) == view
    assert (await handle.describe()).typed_search_attributes == attributes
    assert await _store(db_pool, handle.id) == store
    assert _letters(mail_sink, handle.id) == letters == ["receipt"]
    new = (await _audit(db_pool, handle.id))[len(audit) :]
    assert [(r["actor"], r["action"], r["allowed"]) for r in new] == [
        ("imu-1", "request-details", False)
    ]
    assert new[0]["reason"] and new[0]["action_key"]
    history = await handle.fetch_history()
    assert _of_update(history, 0) == ["decide"]  # one local activity, no upsert

    # The same action by a call handler: decided, authorised and written at once.
    allowed = question.model_copy(update={"actor": "handler-1"})
    await handle.execute_update(CaseWorkflow.request_details, allowed)
    history = await handle.fetch_history()
    assert _of_update(history, 1) == ["decide", "upsert"]
    stage = (await handle.describe()).typed_search_attributes.get(sa.CASE_STAGE)
    assert stage == Stage.AWAITING_DETAILS.value
    rows = (await _audit(db_pool, handle.id))[len(audit) + 1 :]
    assert [(r["actor"], r["allowed"]) for r in rows] == [("handler-1", True)]
    assert rows[0]["action_key"] and rows[0]["action_key"] != new[0]["action_key"]
    written = await db_pool.fetch(
        """SELECT event, xmin::text AS txn FROM case_events
           WHERE workflow_id = $1 AND id > $2 ORDER BY id""",
        handle.id,
        store["events"][-1]["id"],
    )
    assert [r["event"] for r in written] == ["stage:awaiting_details"]
    # One transaction: the audit row and the events share its id.
    assert {r["txn"] for r in written} == {rows[0]["txn"]}
    await mail_sink.await_for(
        lambda m: m["X-WHN-Case"] == handle.id and m["X-WHN-Purpose"] == "details-request-1"
    )
    # The case goes on as before: the reply brings it back to review.
    await handle.signal(CaseWorkflow.details_reply, DetailsReply(text="The back door."))
    view = await wait_view(handle, lambda v: v.stage == Stage.AWAITING_REVIEW)
    assert [e.event for e in view.timeline].count("stage:awaiting_details") == 1
