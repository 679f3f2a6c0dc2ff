"""``whn-admin reopen``: a closed case back on new information (docs/reopening.md).

A closed case's workflow has finished, so there is nothing to send an update to: the
checks run here, before anything is written, and the reopening is a new run under the
same workflow id carrying the closed case's state.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from domain.case import ActionResult, CaseInput, CaseView, Reopen
from domain.victims import reopen_target, state_from_view
from starter import store
from starter.errors import RejectedError, UnavailableError
from starter.refs import resolve_workflow_id
from workflows.case import CaseWorkflow


async def closed_case(history: WorkflowHistory, converter: DataConverter) -> CaseInput:
    """The input a reopening starts from, read back from a finished run's history.

    Its start input gives the report, timings and any state it was carried; its result
    gives the case as it closed (whole, in ``final_state``, for runs since reopening
    exists; rebuilt from the view for runs before).
    """
    first, last = history.events[0], history.events[-1]
    if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        raise RejectedError("the case's workflow did not finish by closing; it cannot be reopened")
    started = first.workflow_execution_started_event_attributes
    [inp] = await converter.decode(started.input.payloads, [CaseInput])
    [view] = await converter.decode(
        last.workflow_execution_completed_event_attributes.result.payloads, [CaseView]
    )
    assert isinstance(inp, CaseInput) and isinstance(view, CaseView)
    state = view.final_state or state_from_view(view, inp.state)
    return CaseInput(
        report=inp.report,
        receipt_code=inp.receipt_code,
        received_at=inp.received_at or first.event_time.ToDatetime(tzinfo=UTC),
        timings=inp.timings,
        state=state,
    )


async def authorise(database_url: str | None, actor: str, workflow_id: str) -> None:
    """The roster check every staff action has (``CaseStore.authorise``), audited alike."""
    if database_url is None:
        raise UnavailableError("no case store configured to check the roster (WHN_DATABASE_URL)")
    async with store.case_store(database_url, max_size=1, down="the case store") as pool:
        await store.authorise(
            pool, actor, Reopen.rule.name, Reopen.rule.roles, workflow_id=workflow_id
        )


async def _refuse_open(handle: WorkflowHandle[Any, Any]) -> RejectedError:
    view: CaseView = await handle.query(CaseWorkflow.view)
    try:
        reopen_target(view.stage)
    except ValueError as err:
        return RejectedError(str(err))
    owed = [o.purpose for o in view.owed_letters if o.delivered_at is None]
    if owed:
        return RejectedError(
            f"the case still owes the reporter a letter ({', '.join(owed)}): record how it"
            " reached them with letter-sent first"
        )
    return RejectedError("the case is closing (its letters are on their way); try again shortly")


async def reopen(
    client: Client, ref: str, action: Reopen, *, database_url: str | None
) -> ActionResult:
    """Reopen the closed case ``ref`` names; RejectedError (nothing written) if it may not be."""
    workflow_id = await resolve_workflow_id(client, ref, database_url=database_url)
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    try:
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            raise await _refuse_open(handle)
        closed = await closed_case(await handle.fetch_history(), client.data_converter)
        assert closed.state is not None
        try:
            reopen_target(closed.state.stage)
        except ValueError as err:
            raise RejectedError(str(err)) from None
        await authorise(database_url, action.actor, workflow_id)
        number = closed.state.reopenings + 1
        started = await client.start_workflow(
            CaseWorkflow.run,
            closed.model_copy(update={"reopen": action.model_copy(update={"number": number})}),
            id=workflow_id,
            task_queue=described.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        result: ActionResult = await started.execute_update(CaseWorkflow.reopened)
    except WorkflowAlreadyStartedError:
        # Another reopening won the race: the case is open now.
        raise await _refuse_open(handle) from None
    except WorkflowUpdateFailedError as err:
        raise RejectedError(str(err.cause or err)) from None
    except RPCError as err:
        raise UnavailableError(f"Temporal could not be reached: {err.message}") from None
    return result
