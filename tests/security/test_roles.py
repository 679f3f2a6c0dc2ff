"""Every staff action is authorised against the roster inside the workflow, and audited.

For each staff action sent as an update, at the stage it belongs to: refused for a person without
its role, for an unknown id and for a disabled person (who holds every role), then
allowed for the right role; each attempt is one ``audit_log`` row with its answer.
Updates go straight to the workflow, as anything holding a Temporal client could send
them: the admin script's own checks are not what is tested here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.actions import Claim, LetterSent, Reassign, Release, action_rule, staff_actions
from domain.case import (
    AckEmergency,
    Acknowledge,
    Allocate,
    CloseCase,
    ImuClose,
    ImuInvestigate,
    NotACrime,
    RecordCrime,
    RecordStep,
    Redirect,
    RequestDetails,
    Role,
    StaffAction,
    Stage,
)
from domain.victims import RecordSuspectEvent, SetUpdates, SuspectEvent
from starter.intake import submit
from tests.helpers import example, wait_stage, wait_view
from tests.workflows.conftest import FAST
from workflows.case import CaseWorkflow

# One demo person per role (the contract's roster, seeded in the test database).
PERSON = {
    Role.CONTROL_ROOM: "control-1",
    Role.CALL_HANDLER: "handler-1",
    Role.IMU: "imu-1",
    Role.OFFICER: "officer-1",
    Role.SUPERVISOR: "supervisor-1",
}

Handle = WorkflowHandle[Any, Any]


async def _at_emergency(client, queue) -> Handle:
    return await _submitted(client, queue, "emergency", Stage.EMERGENCY)


async def _in_review(client, queue) -> Handle:
    return await _submitted(client, queue, "ordinary", Stage.AWAITING_REVIEW)


async def _with_imu(client, queue) -> Handle:
    handle = await _in_review(client, queue)
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await wait_view(handle, lambda v: v.stage == Stage.WITH_IMU and v.assessment is not None)
    return handle


async def _allocated(client, queue) -> Handle:
    handle = await _with_imu(client, queue)
    await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await wait_stage(handle, Stage.ALLOCATED)
    return handle


async def _investigating(client, queue) -> Handle:
    handle = await _allocated(client, queue)
    await handle.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    await wait_stage(handle, Stage.INVESTIGATING)
    return handle


async def _letter_owed(client, queue) -> Handle:
    """A phone report with no email whose receipt is owed (workflows.owed)."""
    return await _submitted(
        client, queue, "phone", Stage.AWAITING_REVIEW, receipt_given_by_staff=False
    )


async def _submitted(client, queue, name: str, stage: Stage, **changes: Any) -> Handle:
    submitted = await submit(client, example(name, **changes), task_queue=queue, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, stage)
    return handle


Reach = Callable[[Any, str], Awaitable[Handle]]
Build = Callable[[str], StaffAction]

# action, how to reach its stage, the update, its input for an actor, and a role it lacks.
CASES: list[tuple[str, Reach, Any, Build, Role]] = [
    (
        "ack-emergency",
        _at_emergency,
        CaseWorkflow.ack_emergency,
        lambda a: AckEmergency(actor=a),
        Role.CALL_HANDLER,
    ),
    (
        "redirect",
        _in_review,
        CaseWorkflow.redirect,
        lambda a: Redirect(actor=a, agency="Suffolk Constabulary", reason="Happened in Suffolk."),
        Role.OFFICER,
    ),
    (
        "request-details",
        _in_review,
        CaseWorkflow.request_details,
        lambda a: RequestDetails(actor=a, question="What colour were the bicycles?"),
        Role.IMU,
    ),
    (
        "record-crime",
        _in_review,
        CaseWorkflow.record_crime,
        lambda a: RecordCrime(actor=a, category="burglary"),
        Role.OFFICER,
    ),
    (
        "not-a-crime",
        _in_review,
        CaseWorkflow.not_a_crime,
        lambda a: NotACrime(actor=a, advice="Contact your insurer."),
        Role.CONTROL_ROOM,
    ),
    (
        "imu-close",
        _with_imu,
        CaseWorkflow.imu_close,
        lambda a: ImuClose(actor=a, reason="no-witnesses"),
        Role.CALL_HANDLER,
    ),
    (
        "imu-investigate",
        _with_imu,
        CaseWorkflow.imu_investigate,
        lambda a: ImuInvestigate(actor=a),
        Role.OFFICER,
    ),
    (
        "allocate",
        _allocated,
        CaseWorkflow.allocate,
        lambda a: Allocate(actor=a, team="cid"),
        Role.OFFICER,
    ),
    (
        "acknowledge",
        _allocated,
        CaseWorkflow.acknowledge,
        lambda a: Acknowledge(actor=a, officer="officer-1"),
        Role.IMU,
    ),
    (
        "record-step",
        _allocated,
        CaseWorkflow.record_step,
        lambda a: RecordStep(actor=a, step="witnesses", note="Two neighbours spoken to."),
        Role.CALL_HANDLER,
    ),
    (
        "close",
        _investigating,
        CaseWorkflow.close,
        lambda a: CloseCase(actor=a, outcome=18, note="No further lines of enquiry."),
        Role.IMU,
    ),
    (
        "suspect-event",
        _investigating,
        CaseWorkflow.suspect_event,
        lambda a: RecordSuspectEvent(actor=a, event=SuspectEvent.ARRESTED),
        Role.IMU,
    ),
    (
        "set-updates",
        _investigating,
        CaseWorkflow.set_updates,
        lambda a: SetUpdates(actor=a, every=timedelta(days=14)),
        Role.CALL_HANDLER,
    ),
    (
        "letter-sent",
        _letter_owed,
        CaseWorkflow.letter_sent,
        lambda a: LetterSent(actor=a, how="phone"),
        Role.CONTROL_ROOM,
    ),
    (
        "reassign",
        _in_review,
        CaseWorkflow.reassign,
        lambda a: Reassign(actor=a, to="handler-1"),
        Role.CALL_HANDLER,
    ),
]
# ``reopen`` starts a new run rather than updating one: the starter authorises it
# against the same table (tests/workflows/test_victims.py::test_refusals_write_nothing).
STARTER_AUTHORISED = {"reopen"}
# Open to every staff role (an unknown or disabled person is still refused): claim, release.


async def test_claim_is_open_to_every_role_but_not_to_strangers(client, case_worker, db_pool):
    handle = await _in_review(client, case_worker)
    message = await _refused(handle, CaseWorkflow.claim, Claim(actor="nobody-7781"))
    assert "unknown staff id" in message
    for role in (Role.IMU, Role.OFFICER):  # not the stage's role, and still allowed
        await handle.execute_update(CaseWorkflow.claim, Claim(actor=PERSON[role]))
        await handle.execute_update(CaseWorkflow.release, Release(actor=PERSON[role]))


def test_the_table_covers_every_action_and_each_wrong_role_really_lacks_it():
    every = [a for a in staff_actions() if action_rule(a).roles >= set(Role)]
    assert sorted(every) == ["claim", "release"]
    assert sorted(c[0] for c in CASES) == sorted(
        set(staff_actions()) - STARTER_AUTHORISED - set(every)
    )
    for action, *_, wrong in CASES:
        assert wrong not in action_rule(action).roles


async def _refused(handle: Handle, update: Any, arg: StaffAction) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update, arg)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NotAuthorised", cause
    return cause.message


@pytest.mark.parametrize(
    ("action", "reach", "update", "build", "wrong"), CASES, ids=[c[0] for c in CASES]
)
async def test_action_is_authorised_by_role_and_audited(
    client, case_worker, db_pool, disabled_staff, action, reach, update, build, wrong
):
    handle = await reach(client, case_worker)
    before = await handle.query(CaseWorkflow.view)

    wrong_person = PERSON[wrong]
    message = await _refused(handle, update, build(wrong_person))
    needed = sorted(action_rule(action).roles)
    assert all(role in message for role in needed), message  # names the missing role
    assert wrong.value in message

    message = await _refused(handle, update, build("nobody-7781"))
    assert "unknown staff id" in message and "nobody-7781" in message

    message = await _refused(handle, update, build(disabled_staff))
    assert "disabled" in message

    after_refusals = await handle.query(CaseWorkflow.view)
    assert after_refusals.stage == before.stage
    refused = {wrong_person, "nobody-7781", disabled_staff}
    new = [e for e in after_refusals.timeline if e not in before.timeline]
    assert not [e for e in new if e.actor in refused]  # nothing the refused did

    # The action's own role; a supervisor only where nobody else may (allocate).
    allowed_role = min(action_rule(action).roles, key=lambda r: r == Role.SUPERVISOR)
    result = await handle.execute_update(update, build(PERSON[allowed_role]))
    assert result.receipt_code == before.receipt_code

    rows = await db_pool.fetch(
        """SELECT actor, allowed, reason FROM audit_log
           WHERE workflow_id = $1 AND action = $2 ORDER BY id""",
        handle.id,
        action,
    )
    assert [(r["actor"], r["allowed"]) for r in rows] == [
        (wrong_person, False),
        ("nobody-7781", False),
        (disabled_staff, False),
        (PERSON[allowed_role], True),
    ]
    assert all(r["reason"] for r in rows[:3]) and rows[3]["reason"] is None


async def test_a_supervisor_may_act_at_every_step(client, case_worker, db_pool):
    handle = await _in_review(client, case_worker)
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="supervisor-1", category="burglary")
    )
    await wait_view(handle, lambda v: v.assessment is not None)
    await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="supervisor-1"))
    await handle.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="supervisor-1", officer="officer-1")
    )
    await handle.execute_update(
        CaseWorkflow.close, CloseCase(actor="supervisor-1", outcome=18, note="Closed.")
    )
    allowed = await db_pool.fetchval(
        "SELECT bool_and(allowed) FROM audit_log WHERE workflow_id = $1 AND actor = 'supervisor-1'",
        handle.id,
    )
    assert allowed is True
