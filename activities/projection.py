"""The compliance projection: one row per case per deadline, for the report and metrics.

The workflow is the source of truth. Every change it records (``CaseStore.record_change``)
carries the case's deadlines as they stand; in the same transaction they are written to
``cases.deadlines`` (the case store's copy) and from there to ``case_deadlines`` (the
projection), with the case's team, category, enhanced rights and receipt time beside
each. Nothing here knows a deadline's name: a new one appears in the report the first
time a case records it. ``rebuild_deadlines`` reconstructs the projection from
``cases.deadlines`` if it is lost (``whn-admin rebuild-deadlines``).

Each deadline's change of state is counted once on the worker's Prometheus endpoint,
``whn_deadlines_total{deadline, result}``: ``met`` (on time), ``missed`` (passed its due time
unmet; counted even if it is met later) and ``met_late`` (a missed one met after all).
So the on-time rate is ``met / (met + missed)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from temporalio import activity

from domain.case import Deadline

# The projection of the cases matching the WHERE clause, from the case store's copy.
_PROJECT = """
INSERT INTO case_deadlines AS d (workflow_id, seq, name, promise, opened_at, due_at, met_at,
    missed, state, received_at, team, category, enhanced_rights)
SELECT c.workflow_id, x.seq::int - 1, x.item->>'name',
       regexp_replace(x.item->>'name', '_[0-9]+$', ''),
       (x.item->>'opened_at')::timestamptz, (x.item->>'due_at')::timestamptz,
       (x.item->>'met_at')::timestamptz, coalesce((x.item->>'missed')::boolean, false),
       CASE
           -- Open when its case closed, then reopened: no longer owed (docs/reopening.md).
           WHEN x.item->>'met_at' IS NULL
                AND coalesce((x.item->>'superseded')::boolean, false) THEN 'superseded'
           WHEN x.item->>'met_at' IS NOT NULL THEN
               CASE WHEN (x.item->>'met_at')::timestamptz <= (x.item->>'due_at')::timestamptz
                    THEN 'met_on_time' ELSE 'met_late' END
           WHEN coalesce((x.item->>'missed')::boolean, false) THEN 'missed'
           ELSE 'open'
       END,
       c.received_at, c.team, c.category, c.enhanced_rights
FROM cases c
CROSS JOIN LATERAL jsonb_array_elements(c.deadlines) WITH ORDINALITY AS x(item, seq)
WHERE {where}
ON CONFLICT (workflow_id, seq) DO UPDATE SET
    name = EXCLUDED.name, promise = EXCLUDED.promise, opened_at = EXCLUDED.opened_at,
    due_at = EXCLUDED.due_at, met_at = EXCLUDED.met_at, missed = EXCLUDED.missed,
    state = EXCLUDED.state, team = EXCLUDED.team, category = EXCLUDED.category,
    enhanced_rights = EXCLUDED.enhanced_rights
"""

_PROJECT_ONE = _PROJECT.format(where="c.workflow_id = $1") + " RETURNING seq, promise, state"


def _results(before: str | None, after: str) -> list[str]:
    """What a deadline's move from ``before`` to ``after`` adds to the counters."""
    was_missed = before in ("missed", "met_late")
    if after == "met_on_time" and before != "met_on_time":
        return ["met"]
    if after == "missed" and not was_missed:
        return ["missed"]
    if after == "met_late" and before != "met_late":
        return ["met_late"] if was_missed else ["missed", "met_late"]
    return []


def event_number(event_key: str) -> int:
    """The case's event count in an event key (``00012.stage:with_imu`` -> 12), else 0."""
    prefix = event_key.split(".", 1)[0]
    return int(prefix) if prefix.isdigit() else 0


async def project_deadlines(
    conn: asyncpg.Connection | PoolConnectionProxy,
    workflow_id: str,
    deadlines: Sequence[Deadline] | None,
    *,
    event: int,
) -> list[tuple[str, str]]:
    """Write a case's deadlines, as they stood at its event number ``event``, to the store
    and the projection (inside the caller's transaction, which should hold the case row's
    lock); return the ``(promise, result)`` pairs to count once it commits. Deadlines
    older than those already written are left alone."""
    if deadlines is None:
        return []
    before: dict[int, str] = {
        row["seq"]: row["state"]
        for row in await conn.fetch(
            "SELECT seq, state FROM case_deadlines WHERE workflow_id = $1", workflow_id
        )
    }
    newer = await conn.fetchval(
        """UPDATE cases SET deadlines = $2, deadlines_event = $3
           WHERE workflow_id = $1 AND (deadlines_event IS NULL OR deadlines_event < $3)
           RETURNING true""",
        workflow_id,
        [d.model_dump(mode="json") for d in deadlines],
        event,
    )
    if not newer:
        return []
    rows = await conn.fetch(_PROJECT_ONE, workflow_id)
    return [
        (row["promise"], result)
        for row in rows
        for result in _results(before.get(row["seq"]), row["state"])
    ]


def count_results(results: Sequence[tuple[str, str]]) -> None:
    """Add committed deadline results to ``whn_deadlines_total`` (in an activity; else nothing)."""
    if not results or not activity.in_activity():
        return
    counter = activity.metric_meter().create_counter(
        "whn_deadlines_total", "Deadlines met on time, missed, and met late, by deadline name"
    )
    for promise, result in results:
        counter.add(1, {"deadline": promise, "result": result})


async def rebuild_deadlines(pool: asyncpg.Pool) -> int:
    """Reconstruct the whole projection from the case store; return the rows written."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE case_deadlines IN EXCLUSIVE MODE")
        await conn.execute("DELETE FROM case_deadlines")
        status = await conn.execute(_PROJECT.format(where="c.deadlines IS NOT NULL"))
    return int(status.split()[-1])
