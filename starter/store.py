"""The case store from the starter's side: reaching it, and the roster check of a command
that no workflow authorises (the workflow's actions go through ``CaseStore.authorise``).

PostgreSQL down is ``UnavailableError`` (exit 1, one line); a refusal is
``RejectedError`` (exit 2), and every answer of ``authorise`` is written to
``audit_log`` with its actor.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from starter.errors import RejectedError, UnavailableError
from whn.db import create_pool

# A connection of its own or one taken from a pool: the queries are the same.
Connection = asyncpg.Connection | PoolConnectionProxy


@asynccontextmanager
async def case_store(
    dsn: str, *, max_size: int = 2, down: str = "PostgreSQL"
) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the case store, closed on leaving.

    UnavailableError, ``"<down> could not be reached: ..."``, if it cannot be reached.
    """
    try:
        pool = await asyncio.wait_for(create_pool(dsn, max_size=max_size), timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        raise UnavailableError(f"{down} could not be reached: {str(err).splitlines()[0]}") from None
    try:
        yield pool
    finally:
        await pool.close()


def refusal(
    row: asyncpg.Record | None, actor: str, action: str, roles: Collection[str]
) -> str | None:
    """Why ``actor``, whose roster ``row`` (roles, active) this is, may not take
    ``action``, which needs one of ``roles``; None if they may."""
    if row is None:
        return f"unknown staff id {actor!r}"
    if not row["active"]:
        return f"staff {actor!r} is disabled"
    if not set(roles).intersection(row["roles"]):
        needed = " or ".join(sorted(roles))
        return f"{action} needs the role {needed}; {actor} has " + (
            ", ".join(row["roles"]) or "no role"
        )
    return None


async def authorise(
    conn: asyncpg.Pool | Connection,
    actor: str,
    action: str,
    roles: Collection[str],
    *,
    workflow_id: str | None = None,
) -> None:
    """Refuse (RejectedError) unless ``actor`` is active staff with one of ``roles``;
    audit the answer either way."""
    row = await conn.fetchrow("SELECT roles, active FROM staff WHERE staff_id = $1", actor)
    reason = refusal(row, actor, action, roles)
    await conn.execute(
        "INSERT INTO audit_log (actor, action, workflow_id, allowed, reason)"
        " VALUES ($1, $2, $3, $4, $5)",
        actor,
        action,
        workflow_id,
        reason is None,
        reason,
    )
    if reason is not None:
        raise RejectedError(reason)
