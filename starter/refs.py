"""Turning a reference (receipt code, crime reference, investigation reference) into a case."""

from __future__ import annotations

import asyncpg
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from domain.case import case_workflow_id
from domain.references import normalise_reference, reference_kind
from starter.errors import NotFoundError, UnavailableError
from starter.guard import decoding


async def resolve_workflow_id(client: Client, ref: str, *, database_url: str | None) -> str:
    """The workflow id of the case ``ref`` names; NotFoundError if there is none.

    See ``describe_case``.
    """
    return (await describe_case(client, ref, database_url=database_url)).id


async def describe_case(
    client: Client, ref: str, *, database_url: str | None
) -> WorkflowExecutionDescription:
    """The description of the case ``ref`` names; NotFoundError if there is none.

    Also proves this client can open the case's payloads (its summary, sealed when the
    case started): a wrong or missing key is a PayloadKeyError here, before any action
    is sent, never after the worker has applied it.
    """
    ref = normalise_reference(ref)
    kind = reference_kind(ref)
    if kind is None:
        raise NotFoundError(
            f"{ref!r} is not a receipt code (WHN-XXXX-XXXX-XX), crime reference or"
            " investigation reference"
        )
    if kind == "receipt":
        workflow_id = case_workflow_id(ref)
    else:
        if database_url is None:
            raise UnavailableError(
                "no case store configured to look up references (WHN_DATABASE_URL)"
            )
        try:
            conn = await asyncpg.connect(database_url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as err:
            raise UnavailableError(f"the case store could not be reached: {err}") from None
        try:
            found = await conn.fetchval(
                "SELECT workflow_id FROM case_references WHERE reference = $1", ref
            )
        finally:
            await conn.close()
        if found is None:
            raise NotFoundError(f"unknown reference {ref}")
        workflow_id = str(found)
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"unknown reference {ref}") from None
        raise UnavailableError(f"Temporal could not be reached: {err.message}") from None
    with decoding(f"case {ref}"):
        await description.static_summary()
    return description
