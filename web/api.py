"""The intake API, ``/api/v1``: what ``whn-intake`` does, over HTTP, for intake systems.

Every request carries ``Authorization: Bearer <intake key>`` (``whn-admin intake-key
add``). Route functions parse with the same functions as the CLI (so the same reasons)
and call the same starter functions; the intake system is recorded as the case's source
and in the audit log, and reads and writes only the cases it submitted (any other is a 404).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio.client import WorkflowExecutionDescription

from domain.case import case_workflow_id, receipt_code_for
from starter import intake
from starter.errors import ConflictError, NotFoundError, RejectedError, UnavailableError
from starter.intake_keys import record_request, record_source, source_of
from web.deps import ClientDep, IntakeSystem, PoolDep, SettingsDep
from web.errors import ErrorBody
from whn.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["intake"])

_NOT_OURS = "unknown reference, or not a case this intake system submitted"
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, unknown or revoked intake key"},
    503: {"model": ErrorBody, "description": "Temporal or PostgreSQL down; see Retry-After"},
}
# The request body is read raw and validated by intake.parse_report, as the CLI does:
# the schema documented is the Report model's own (web.app puts it in the components).
_REPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}},
    }
}


@contextlib.asynccontextmanager
async def bounded(settings: Settings) -> AsyncIterator[None]:
    """At most ``web_request_timeout`` waiting on Temporal, then UnavailableError (503)."""
    try:
        async with asyncio.timeout(settings.web_request_timeout):
            yield
    except TimeoutError:
        raise UnavailableError(
            f"Temporal did not answer within {settings.web_request_timeout:g} s; send the"
            " same request again (the same submission_id never starts a second case)"
        ) from None


def own_case(pool: asyncpg.Pool, source: str, ref: str) -> intake.CaseCheck:
    """The check that ``source`` submitted the case ``ref`` names, else NotFoundError, as
    for a reference we do not know: an intake system reads and writes its own cases,
    never another system's (nor those started by whn-intake or the Python function).
    Asked on the description the intake call looks up anyway (one describe a request)."""

    async def check(description: WorkflowExecutionDescription) -> None:
        if await source_of(pool, description.id) != source:
            raise NotFoundError(f"unknown reference {ref}")

    return check


class Created(BaseModel):
    receipt_code: str
    created: bool


class DetailsText(BaseModel):
    """The reporter's reply to a request for details."""

    model_config = ConfigDict(extra="forbid")
    text: str


class Delivered(BaseModel):
    ref: str
    delivered: bool


@router.post(
    "/reports",
    status_code=201,
    response_model=Created,
    summary="Start the case for a report",
    responses={
        200: {"model": Created, "description": "the same submission_id again: the same case"},
        409: {"model": ErrorBody, "description": "submission_id already used for another report"},
        413: {"model": ErrorBody, "description": "body over the limit"},
        422: {"model": ErrorBody, "description": "invalid report, naming the field"},
        **_ERRORS,
    },
    openapi_extra=_REPORT_BODY,
)
async def submit_report(
    request: Request,
    response: Response,
    source: IntakeSystem,
    settings: SettingsDep,
    client: ClientDep,
    pool: PoolDep,
) -> Created:
    report = intake.parse_report(await request.body())
    try:
        async with bounded(settings):
            result = await intake.submit(
                client, report, task_queue=settings.task_queue, timings=settings.timings()
            )
    except ConflictError as refused:  # a submission_id reused: audited as refused
        workflow_id = case_workflow_id(receipt_code_for(report.submission_id))
        await record_request(
            pool, source, "intake-submit", workflow_id, str(refused), allowed=False
        )
        raise
    # After the start: a 503 here is retried by the intake system, and the retry (same
    # case) records it; before, a refused start would leave a source for no case.
    await record_source(pool, report, source=source, duplicate=result.duplicate)
    if result.duplicate:
        response.status_code = 200
    return Created(receipt_code=result.receipt_code, created=not result.duplicate)


@router.post(
    "/cases/{ref}/details",
    status_code=202,
    response_model=Delivered,
    summary="Pass on the reporter's reply to a request for details",
    responses={
        404: {"model": ErrorBody, "description": _NOT_OURS},
        409: {"model": ErrorBody, "description": "no open request for details"},
        422: {"model": ErrorBody, "description": "invalid body"},
        **_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": DetailsText.model_json_schema()}},
        }
    },
)
async def send_details(
    ref: str,
    request: Request,
    source: IntakeSystem,
    settings: SettingsDep,
    client: ClientDep,
    pool: PoolDep,
) -> Delivered:
    try:
        body = DetailsText.model_validate_json(await request.body())
    except ValidationError as err:
        raise RejectedError(intake.describe_validation_error(err)) from None
    async with bounded(settings):
        workflow_id = await intake.details(
            client,
            ref,
            body.text,
            database_url=settings.database_url,
            require_open_request=True,
            check=own_case(pool, source, ref),
        )
    await record_request(pool, source, "intake-details", workflow_id, None)
    return Delivered(ref=ref, delivered=True)


@router.get(
    "/cases/{ref}",
    response_model=intake.CaseStatus,
    summary="Where a case is (no personal data)",
    responses={404: {"model": ErrorBody, "description": _NOT_OURS}, **_ERRORS},
)
async def case_status(
    ref: str, source: IntakeSystem, settings: SettingsDep, client: ClientDep, pool: PoolDep
) -> intake.CaseStatus:
    async with bounded(settings):
        return await intake.status(
            client, ref, database_url=settings.database_url, check=own_case(pool, source, ref)
        )
