"""The case store's lookups from the starter: one small pool per event loop, not a
connection per lookup; a store that cannot be reached is UnavailableError, and the next
lookup tries again."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from starter import admin, refs
from starter.errors import NotFoundError, UnavailableError
from whn import db


async def _backend_pids(dsn: str) -> set[int]:
    pids = set()
    for _ in range(3):
        pids.add(int(await refs.lookup(dsn, "SELECT pg_backend_pid()")))  # type: ignore[arg-type]
    return pids


async def test_lookups_share_one_pool_per_loop_until_closed(pg_dsn):
    await refs.close_lookups()
    pool = await refs.lookups(pg_dsn)
    # Asked at once (as act() asks for the case and the roster), they share the pool.
    both = await asyncio.gather(refs.lookups(pg_dsn), refs.lookups(pg_dsn))
    assert both[0] is pool and both[1] is pool
    pids = await _backend_pids(pg_dsn)
    assert len(pids) == 1, pids  # one connection, reused: not one per lookup
    assert await refs.lookup(pg_dsn, "SELECT active FROM staff WHERE staff_id = $1", "handler-1")
    await refs.close_lookups()
    assert pool._closed  # asyncpg has no public "is closed"
    fresh = await refs.lookups(pg_dsn)
    assert fresh is not pool
    assert (await _backend_pids(pg_dsn)).isdisjoint(pids)
    await refs.close_lookups()


async def test_a_store_not_reached_is_unavailable_and_tried_again(postgres_server):
    name = f"whn_refs_{uuid.uuid4().hex[:12]}"
    missing = postgres_server.dsn(name)
    with pytest.raises(UnavailableError, match="case store could not be reached"):
        await refs.lookup(missing, "SELECT 1")
    # Once it is there, the next lookup reaches it: a failed pool is not kept.
    assert await db.ensure_database(postgres_server.dsn(), name) == missing
    assert await refs.lookup(missing, "SELECT 1") == 1
    await refs.close_lookups()


async def test_show_of_a_case_that_is_not_there_is_not_found(dev_client, pg_dsn):
    # show asks the case's query alone (no describe first): Temporal's NOT_FOUND, or a
    # reference the store does not know, is an unknown reference (exit 2), not "down".
    for ref in ("WHN-0000-0000-00", "35/99999/99"):
        with pytest.raises(NotFoundError, match="unknown reference"):
            await admin.show(dev_client, ref, database_url=pg_dsn)
    await refs.close_lookups()
