"""Turning a reference (receipt code, crime reference, investigation reference) into a case.

The case store's lookups (a crime or investigation reference, whether an actor is a
supervisor) share one small pool per event loop (``lookups``) instead of opening a
connection each; ``close_lookups`` closes the running loop's (the CLIs do, on exit).
"""

from __future__ import annotations

import asyncio

import asyncpg
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from domain.case import case_workflow_id
from domain.references import normalise_reference, reference_kind
from starter.errors import NotFoundError, UnavailableError
from starter.guard import decoding

# (the loop's id, the dsn) -> (the loop, its pool being made or made); a pool is bound
# to the loop it runs on, and tasks asking at once share the one being made.
_POOLS: dict[tuple[int, str], tuple[asyncio.AbstractEventLoop, asyncio.Task[asyncpg.Pool]]] = {}
_TIMEOUT_S = 5


async def lookups(database_url: str) -> asyncpg.Pool:
    """The running loop's pool for the case store's lookups (UnavailableError if down)."""
    loop = asyncio.get_running_loop()
    for key, (other, _) in list(_POOLS.items()):
        if other.is_closed():  # its loop has gone, and its connections with it
            del _POOLS[key]
    key = (id(loop), database_url)
    found = _POOLS.get(key)
    if found is None or found[0] is not loop:
        found = (loop, loop.create_task(_create_pool(database_url)))
        _POOLS[key] = found
    try:
        return await asyncio.shield(found[1])
    except UnavailableError:
        if _POOLS.get(key) == found:
            del _POOLS[key]  # the next lookup tries again
        raise


async def _create_pool(database_url: str) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, timeout=_TIMEOUT_S)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        raise UnavailableError(f"the case store could not be reached: {err}") from None
    assert pool is not None
    return pool


async def close_lookups() -> None:
    """Close the running loop's lookup pools (a short-lived process, before it exits)."""
    loop = asyncio.get_running_loop()
    for key, (other, making) in list(_POOLS.items()):
        if other is loop:
            del _POOLS[key]
            try:
                pool = await making
            except UnavailableError:
                continue
            await pool.close()


async def lookup(database_url: str, query: str, *args: object) -> object:
    """One value from the case store, on the lookup pool (UnavailableError if down)."""
    pool = await lookups(database_url)
    try:
        return await pool.fetchval(query, *args, timeout=_TIMEOUT_S)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as err:
        raise UnavailableError(f"the case store could not be reached: {err}") from None


async def workflow_id_of(ref: str, *, database_url: str | None) -> str:
    """The workflow id ``ref`` names, as far as the reference itself and the case store
    say (NotFoundError if they know none); Temporal is not asked, nor the key proved.

    For a caller whose next call proves both itself: a query that returns a payload
    sealed under a key this client lacks fails to decode, and changes nothing.
    """
    ref = normalise_reference(ref)
    kind = reference_kind(ref)
    if kind is None:
        raise NotFoundError(
            f"{ref!r} is not a receipt code (WHN-XXXX-XXXX-XX), crime reference or"
            " investigation reference"
        )
    if kind == "receipt":
        return case_workflow_id(ref)
    if database_url is None:
        raise UnavailableError("no case store configured to look up references (WHN_DATABASE_URL)")
    found = await lookup(
        database_url, "SELECT workflow_id FROM case_references WHERE reference = $1", ref
    )
    if found is None:
        raise NotFoundError(f"unknown reference {ref}")
    return str(found)


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
    is sent, never after the worker has applied it. (It cannot be left to the update
    itself: a worker that cannot open an update sealed under a key it lacks fails the
    case's workflow task, again and again, instead of refusing the update.)
    """
    ref = normalise_reference(ref)
    workflow_id = await workflow_id_of(ref, database_url=database_url)
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"unknown reference {ref}") from None
        raise UnavailableError(f"Temporal could not be reached: {err.message}") from None
    with decoding(f"case {ref}"):
        await description.static_summary()
    return description
