"""Staff actions and case views as functions: what ``whn-admin`` calls, importable alike."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.actions import ActionResult, StaffAction
from domain.case import WORKFLOW_TYPE, CaseView, Stage
from starter.errors import NotFoundError, PayloadKeyError, RejectedError, UnavailableError
from starter.guard import KEY_HINT, decoding, require_encryption, undecodable
from starter.refs import lookup, resolve_workflow_id, workflow_id_of
from whn import attributes as sa
from workflows.acting import update_for
from workflows.case import CaseWorkflow

_RPC_TIMEOUT = timedelta(seconds=15)


async def act(
    client: Client, ref: str, action: StaffAction, *, database_url: str | None
) -> ActionResult:
    """Send one staff action to the case ``ref`` names and wait for its answer.

    Nothing is sent unless ``client`` encrypts and can open this case's payloads.
    """
    require_encryption(client)
    workflow_id, action = await prepare(client, ref, action, database_url=database_url)
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    try:
        result: ActionResult = await handle.execute_update(
            update_for(type(action)), action, rpc_timeout=_RPC_TIMEOUT
        )
    except (KeyError, ValueError) as err:
        # The case answered, under a key this client lacks: it may have recorded the
        # action, so say so rather than report a plain failure.
        if (reason := undecodable(err)) is None:
            raise
        raise PayloadKeyError(
            f"the action reached case {ref} but its answer could not be decoded ({reason});"
            f" {KEY_HINT}, then see whn-admin show {ref} for whether it was recorded"
        ) from None
    except WorkflowUpdateFailedError as err:
        raise RejectedError(_reason(err)) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise RejectedError(f"case {ref} is closed: no further actions") from None
        if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
            # Temporal keeps an update it has admitted: a worker that comes back may still
            # apply it, so this is not a plain failure and must not be repeated blindly.
            raise UnavailableError(
                f"no worker answered in time (is the worker running?); the action may still"
                f" be applied when one does: check whn-admin show {ref} before repeating it"
            ) from None
        raise UnavailableError(f"Temporal could not be reached: {err.message}") from None
    return result


async def prepare(
    client: Client, ref: str, action: StaffAction, *, database_url: str | None
) -> tuple[str, StaffAction]:
    """What ``act`` asks before it sends: the case's workflow id (its payloads proved
    readable by ``client``) and the action as sent (a supervisor's may override a claim).

    The roster's answer is asked for while the case is looked up: the two wait on
    different servers, and nothing is sent to the case before both are in.
    """
    supervisor = (
        asyncio.ensure_future(_is_supervisor(database_url, action.actor))
        if database_url is not None
        else None
    )
    try:
        workflow_id = await resolve_workflow_id(client, ref, database_url=database_url)
        if supervisor is not None and await supervisor:
            # A supervisor may act on a case someone holds; the roster check makes sure.
            action = action.model_copy(update={"override_claim": True})
    finally:
        if supervisor is not None:
            _settle(supervisor)
    return workflow_id, action


async def _is_supervisor(database_url: str, actor: str) -> bool:
    return bool(
        await lookup(
            database_url,
            "SELECT active AND 'supervisor' = ANY(roles) FROM staff WHERE staff_id = $1",
            actor,
        )
    )


def _settle(task: asyncio.Future[Any]) -> None:
    """A side lookup no longer wanted (the main one failed first): cancelled, or its
    failure taken, so nothing is reported of it later."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def _reason(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(err.cause or err)


async def show(client: Client, ref: str, *, database_url: str | None) -> CaseView:
    """The case as its workflow sees it: stage, references, deadlines, timeline.

    One round trip, the query: no describe first. The query sends no payload and
    changes nothing; its answer, sealed by the worker, proves this client's key (a
    wrong or missing one is a PayloadKeyError on decoding it).
    """
    workflow_id = await workflow_id_of(ref, database_url=database_url)
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    try:
        with decoding(f"case {ref}"):
            view: CaseView = await handle.query(CaseWorkflow.view, rpc_timeout=_RPC_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"unknown reference {ref}") from None
        if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
            raise UnavailableError("no worker answered in time; is the worker running?") from None
        raise UnavailableError(f"Temporal could not be reached: {err.message}") from None
    return view


def _quote(value: str) -> str:
    return "'" + value.replace("'", "") + "'"


async def list_cases(
    client: Client, *, stage: Stage | None = None, overdue: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    """Cases from Temporal visibility, open and closed, newest first."""
    query = f"WorkflowType = {_quote(WORKFLOW_TYPE)}"
    if stage is not None:
        query += f" AND CaseStage = {_quote(stage.value)}"
    if overdue:
        query += " AND Overdue = true"
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        # Newest run first; a case reopened (or continued as new) lists once, as it is now.
        async for execution in client.list_workflows(query, limit=limit, rpc_timeout=_RPC_TIMEOUT):
            if execution.id in seen:
                continue
            seen.add(execution.id)
            attrs = execution.typed_search_attributes
            reported = attrs.get(sa.REPORTED_AT)
            rows.append(
                {
                    "receipt_code": attrs.get(sa.RECEIPT_CODE),
                    "stage": attrs.get(sa.CASE_STAGE),
                    "crime_reference": attrs.get(sa.CRIME_REFERENCE),
                    "investigation_reference": attrs.get(sa.INVESTIGATION_REFERENCE),
                    "category": attrs.get(sa.CRIME_CATEGORY),
                    "priority": attrs.get(sa.PRIORITY),
                    "team": attrs.get(sa.TEAM),
                    "overdue": bool(attrs.get(sa.OVERDUE)),
                    "reported_at": reported.isoformat() if reported else None,
                    "workflow_id": execution.id,
                    "status": execution.status.name if execution.status else None,
                }
            )
    except RPCError as err:
        raise UnavailableError(f"Temporal could not be reached: {err.message}") from None
    rows.sort(key=lambda r: r["reported_at"] or "", reverse=True)
    return rows
