"""Intake for Python systems: start a case per report, pass on replies, publish the schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.case import CaseInput, DetailsReply, Stage, Timings, case_workflow_id, receipt_code_for
from domain.report import Report
from starter.errors import RejectedError, UnavailableError
from starter.guard import require_encryption
from starter.refs import resolve_workflow_id
from workflows import attributes as sa
from workflows.case import CaseWorkflow


class Submitted(BaseModel):
    receipt_code: str
    workflow_id: str
    duplicate: bool


def parse_report(data: str | bytes) -> Report:
    """Validate a report's JSON; a refusal names the first offending field."""
    try:
        return Report.model_validate_json(data)
    except ValidationError as err:
        raise RejectedError(describe_validation_error(err)) from None


def _printable(part: object) -> str:
    """A location part as written, or quoted when it holds a line break or control."""
    text = str(part)
    return text if text.isprintable() else repr(text)


def describe_validation_error(err: ValidationError) -> str:
    """One line naming the first offending field (a key from the input is quoted if odd)."""
    first = err.errors()[0]
    where = ".".join(_printable(p) for p in first["loc"]) or "report"
    message = " ".join(str(first["msg"]).split())
    if first["type"] == "json_invalid":
        return f"invalid JSON: {first.get('ctx', {}).get('error', message)}"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {message}{more}"


async def submit(
    client: Client,
    report: Report,
    *,
    task_queue: str,
    timings: Timings | None = None,
    received_at: datetime | None = None,
) -> Submitted:
    """Start the case for ``report``; the same ``submission_id`` again returns the same code.

    Refused (PayloadKeyError) before anything is sent if ``client`` would not encrypt.
    """
    require_encryption(client)
    receipt_code = receipt_code_for(report.submission_id)
    workflow_id = case_workflow_id(receipt_code)
    received = received_at or datetime.now(UTC)
    try:
        await client.start_workflow(
            CaseWorkflow.run,
            CaseInput(
                report=report,
                receipt_code=receipt_code,
                received_at=received_at,
                timings=timings or Timings(),
            ),
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.CASE_STAGE, Stage.RECEIVED.value),
                    SearchAttributePair(sa.RECEIPT_CODE, receipt_code),
                    SearchAttributePair(sa.CRIME_CATEGORY, report.incident.category),
                    SearchAttributePair(sa.REPORTED_AT, received),
                    SearchAttributePair(sa.OVERDUE, False),
                ]
            ),
            static_summary=f"Report {receipt_code}: {report.incident.category}",
        )
    except WorkflowAlreadyStartedError:
        return Submitted(receipt_code=receipt_code, workflow_id=workflow_id, duplicate=True)
    except RPCError as err:
        raise unavailable(err) from None
    return Submitted(receipt_code=receipt_code, workflow_id=workflow_id, duplicate=False)


async def details(client: Client, ref: str, text: str, *, database_url: str | None = None) -> str:
    """Pass on the reporter's reply to a details request; returns the case's workflow id.

    A signal, so the reply is kept even while no worker runs. Refused (PayloadKeyError)
    before anything is sent if ``client`` would not encrypt.
    """
    require_encryption(client)
    try:
        reply = DetailsReply(text=text)
    except ValidationError as err:
        raise RejectedError(f"--text: {err.errors()[0]['msg']}") from None
    workflow_id = await resolve_workflow_id(client, ref, database_url=database_url)
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    try:
        await handle.signal(CaseWorkflow.details_reply, reply)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise RejectedError(f"case {ref} is closed: it no longer takes replies") from None
        raise unavailable(err) from None
    return workflow_id


def schema() -> str:
    """The report's JSON Schema."""
    return json.dumps(Report.model_json_schema(), indent=2)


def unavailable(err: RPCError) -> UnavailableError:
    return UnavailableError(f"Temporal could not be reached or refused the call: {err.message}")
