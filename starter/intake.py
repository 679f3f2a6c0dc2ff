"""Intake for Python systems: start a case per report, pass on replies, publish the schema."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.case import CaseInput, DetailsReply, Stage, Timings, case_workflow_id, receipt_code_for
from domain.report import Report
from starter.errors import ConflictError, RejectedError, UnavailableError
from starter.guard import decoding, require_encryption
from starter.refs import describe_case
from whn import attributes as sa
from workflows.case import CaseWorkflow

MAX_REPORT_BYTES = 256 * 1024
"""The largest report accepted (bytes of JSON): the largest valid report is under half."""

# The memo key of the report's digest: a resubmission is the same report, or a conflict.
DIGEST_MEMO = "report_digest"


class Submitted(BaseModel):
    receipt_code: str
    workflow_id: str
    duplicate: bool


class CaseStatus(BaseModel):
    """Where a case is, without personal data: what an intake system may read back."""

    receipt_code: str
    stage: Stage
    crime_reference: str | None = None
    investigation_reference: str | None = None
    closed: bool


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

    The same ``submission_id`` with a different report is a ConflictError, the first case
    untouched. Refused (PayloadKeyError) before anything is sent if ``client`` would not
    encrypt.
    """
    require_encryption(client)
    digest = report_digest(report)
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
            memo={DIGEST_MEMO: digest},  # sealed by the codec like every payload
        )
    except WorkflowAlreadyStartedError:
        await _same_report(client, workflow_id, digest, report.submission_id, receipt_code)
        return Submitted(receipt_code=receipt_code, workflow_id=workflow_id, duplicate=True)
    except RPCError as err:
        raise unavailable(err) from None
    return Submitted(receipt_code=receipt_code, workflow_id=workflow_id, duplicate=False)


def report_digest(report: Report) -> str:
    """SHA-256 of the report as validated: equal for the same report sent again."""
    return hashlib.sha256(report.model_dump_json().encode()).hexdigest()


async def _same_report(
    client: Client, workflow_id: str, digest: str, submission_id: str, receipt_code: str
) -> None:
    """ConflictError unless the case already started for this submission holds this report."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        raise unavailable(err) from None
    with decoding(f"case {receipt_code}"):
        first = await description.memo_value(DIGEST_MEMO, default=None)
    if first is not None and first != digest:  # cases started before the digest: same
        raise ConflictError(
            f"submission_id {submission_id} was already used for a different report"
            f" (case {receipt_code}); a new report needs a new submission_id"
        )


# A caller's own refusal of the case it found (the HTTP API's "not one of yours"),
# asked before anything else is done with it.
CaseCheck = Callable[[WorkflowExecutionDescription], Awaitable[None]]


async def details(
    client: Client,
    ref: str,
    text: str,
    *,
    database_url: str | None = None,
    require_open_request: bool = False,
    check: CaseCheck | None = None,
) -> str:
    """Pass on the reporter's reply to a details request; returns the case's workflow id.

    A signal, so the reply is kept even while no worker runs. With
    ``require_open_request``, a case not waiting for details is a ConflictError (the HTTP
    API's 409); without, the case keeps the reply as it keeps any late one. Refused
    (PayloadKeyError) before anything is sent if ``client`` would not encrypt.
    """
    require_encryption(client)
    try:
        reply = DetailsReply(text=text)
    except ValidationError as err:
        raise RejectedError(f"--text: {err.errors()[0]['msg']}") from None
    description = await describe_case(client, ref, database_url=database_url)
    if check is not None:
        await check(description)
    stage = description.typed_search_attributes.get(sa.CASE_STAGE)
    if require_open_request and stage != Stage.AWAITING_DETAILS.value:
        raise ConflictError(f"case {ref} has no open request for details (stage {stage})")
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(description.id)
    try:
        await handle.signal(CaseWorkflow.details_reply, reply)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ConflictError(f"case {ref} is closed: it no longer takes replies") from None
        raise unavailable(err) from None
    return description.id


async def status(
    client: Client, ref: str, *, database_url: str | None = None, check: CaseCheck | None = None
) -> CaseStatus:
    """Where the case ``ref`` names is: stage and references, from Temporal (no worker needed)."""
    require_encryption(client)
    description = await describe_case(client, ref, database_url=database_url)
    if check is not None:
        await check(description)
    attrs = description.typed_search_attributes
    stage = Stage(attrs.get(sa.CASE_STAGE) or Stage.RECEIVED.value)
    return CaseStatus(
        receipt_code=attrs.get(sa.RECEIPT_CODE) or ref,
        stage=stage,
        crime_reference=attrs.get(sa.CRIME_REFERENCE),
        investigation_reference=attrs.get(sa.INVESTIGATION_REFERENCE),
        closed=stage.is_closed,
    )


def schema() -> str:
    """The report's JSON Schema."""
    return json.dumps(Report.model_json_schema(), indent=2)


def unavailable(err: RPCError) -> UnavailableError:
    return UnavailableError(f"Temporal could not be reached or refused the call: {err.message}")
