"""Search attributes on a case at each stage, and never a reporter's personal data."""

from __future__ import annotations

from domain.case import Acknowledge, CloseCase, ImuInvestigate, RecordCrime, Stage
from starter.intake import submit
from tests.helpers import example, wait_stage, wait_view
from tests.workflows.conftest import FAST
from whn import attributes as sa
from workflows.case import CaseWorkflow

ALWAYS = (
    sa.CASE_STAGE,
    sa.RECEIPT_CODE,
    sa.CRIME_CATEGORY,
    sa.PRIORITY,
    sa.OVERDUE,
    sa.ENHANCED_RIGHTS,
    sa.REPORTED_AT,
)


async def _attributes(handle):
    described = await handle.describe()
    return described.typed_search_attributes


async def test_every_attribute_at_every_stage_and_no_personal_data(client, case_worker):
    report = example("ordinary")
    personal = [
        report.reporter.name,
        report.reporter.email,
        report.reporter.phone,
        report.incident.description,
        report.incident.location.address,
    ]
    submitted = await submit(client, report, task_queue=case_worker, timings=FAST)
    assert not any(p and p in submitted.workflow_id for p in personal)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)

    async def check(stage: Stage, *extra) -> None:
        await wait_stage(handle, stage)
        attrs = await _attributes(handle)
        for key in (*ALWAYS, *extra):
            assert attrs.get(key) is not None, f"{key.name} missing at {stage}"
        assert attrs.get(sa.CASE_STAGE) == stage.value
        assert attrs.get(sa.RECEIPT_CODE) == submitted.receipt_code
        text = repr([(pair.key.name, pair.value) for pair in attrs])
        for secret in personal:
            assert secret not in text

    await check(Stage.AWAITING_REVIEW)
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await check(Stage.WITH_IMU, sa.CRIME_REFERENCE)
    await wait_view(handle, lambda v: v.assessment is not None)
    await handle.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await check(Stage.ALLOCATED, sa.CRIME_REFERENCE, sa.INVESTIGATION_REFERENCE, sa.TEAM)
    await handle.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    await check(Stage.INVESTIGATING, sa.CRIME_REFERENCE, sa.INVESTIGATION_REFERENCE, sa.TEAM)
    await handle.execute_update(
        CaseWorkflow.close, CloseCase(actor="officer-1", outcome=8, note="Community resolution.")
    )
    await check(Stage.CLOSED, sa.CRIME_REFERENCE, sa.INVESTIGATION_REFERENCE, sa.TEAM)
    attrs = await _attributes(handle)
    assert attrs.get(sa.TEAM) == "lpt-cambridge"


async def test_emergency_and_redirect_stages_carry_their_attributes(client, case_worker):
    emergency = await submit(client, example("emergency"), task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, emergency.workflow_id)
    await wait_stage(handle, Stage.EMERGENCY)
    attrs = await _attributes(handle)
    assert attrs.get(sa.CASE_STAGE) == "emergency" and attrs.get(sa.PRIORITY) == "grade-1"

    fraud = await submit(client, example("fraud"), task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, fraud.workflow_id)
    await handle.result()
    attrs = await _attributes(handle)
    assert attrs.get(sa.CASE_STAGE) == "redirected"
    for key in ALWAYS:
        assert attrs.get(key) is not None
