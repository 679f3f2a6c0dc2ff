"""The intelligence search: the activity a case runs, and the same search for ``whn-intel``.

``IntelligenceSearch.search_intelligence`` is the activity (Step 3's first step, at
once); ``search_and_record`` the same search writing its outcome as the case's event
(patch search-records: no commit of its own after it); ``search`` is the query itself, which ``whn-intel search`` and the benchmark run
too. Filling the table is not an activity: the police.uk importer is
``whn.police_uk``, the synthetic generator ``whn.synthetic_intel``. The table and its
indexes are in ``migrations/002_intelligence.sql``.
"""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from temporalio import activity

from activities.projection import count_results
from activities.store import write_commit
from domain.effects import Commit, SearchRecord
from domain.intel import (
    IntelMatch,
    IntelQuery,
    IntelSummary,
    bounding_box,
    categories_related,
    distance_m,
    rank_matches,
    related_crime_types,
    summarise,
    window_months,
)


class IntelligenceSearch:
    """The search activity; one instance per worker, sharing the worker's pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def search_intelligence(self, query: IntelQuery) -> IntelSummary:
        """Crimes around the incident and our own cases sharing its details; read-only."""
        return await search(self._pool, query)

    @activity.defn
    async def search_and_record(self, request: SearchRecord) -> IntelSummary:
        """The search, then its outcome recorded: what the case kept before it and its
        ``step:intelligence`` event (the summary in its detail, the answer in the
        ``intelligence`` column) in one transaction, as ``CaseStore.commit`` writes them.

        Once per event key: the case row is locked first, so an attempt that finds the
        event written (by an earlier attempt that committed, or one still running when
        this one started) answers with the outcome recorded then, never a second search
        the store does not hold.
        """
        carried = request.commit
        if carried is not None and any(c.notes for c in carried.changes):
            # Notes are sealed with the case store's key, which the search does not hold;
            # the workflow never hands it such a commit.
            raise ValueError("the search cannot carry a commit with notes")
        change = request.change
        async with self._pool.acquire() as conn, conn.transaction():
            recorded = await conn.fetchrow(
                """SELECT c.intelligence,
                          EXISTS (SELECT 1 FROM case_events e
                                  WHERE e.workflow_id = c.workflow_id AND e.event_key = $2)
                              AS written
                   FROM cases c WHERE c.workflow_id = $1 FOR UPDATE""",
                change.workflow_id,
                change.event_key,
            )
            if recorded is not None and recorded["written"] and recorded["intelligence"]:
                return IntelSummary.model_validate(recorded["intelligence"])
            summary = await search_on(conn, request.query)
            done = change.model_copy(
                update={
                    "detail": {**change.detail, "summary": summary.summary},
                    "fields": change.fields.model_copy(
                        update={"intelligence": summary.model_dump(mode="json")}
                    ),
                }
            )
            commit = Commit(workflow_id=change.workflow_id, changes=[done])
            if carried is not None:
                commit = carried.model_copy(update={"changes": [*carried.changes, done]})
            results = await write_commit(conn, commit, None)
        count_results(results)
        return summary


# The area query (the benchmark EXPLAINs it). The index intel_crimes_area_idx holds every
# column this reads but the last join, so the box is an index-only scan per month; the
# circle is cut from the box here.
AREA_SQL = """
WITH inside AS MATERIALIZED (
    SELECT id, crime_type, crime_type = ANY($7::text[]) AS related, distance_m
    FROM (
        SELECT id, crime_type, intel_distance_m($1, $2, latitude, longitude) AS distance_m
        FROM intel_crimes
        WHERE latitude IS NOT NULL
          AND month = ANY($3::date[])
          AND latitude BETWEEN $1 - $4 AND $1 + $4
          AND longitude BETWEEN $2 - $5 AND $2 + $5
    ) box
    WHERE distance_m <= $6
)
SELECT
    (SELECT coalesce(jsonb_object_agg(crime_type, n), '{}'::jsonb)
       FROM (SELECT crime_type, count(*) AS n FROM inside GROUP BY crime_type) t) AS by_type,
    (SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]'::jsonb)
       FROM (SELECT c.crime_id, c.month, c.crime_type, c.location, c.last_outcome_category,
                    i.distance_m, i.related
               FROM (SELECT * FROM inside ORDER BY related DESC, distance_m, id LIMIT $8) i
               JOIN intel_crimes c ON c.id = i.id) t) AS top
"""

# intel_*_key() are the expressions of the cases_intel_* indexes; a key that is NULL
# (no value given) matches nothing.
_OWN_CASES_SQL = """
WITH keys AS (
    SELECT intel_name_key($2) AS name, intel_vrm_key($3) AS vrm,
           intel_phone_key($4) AS phone, intel_email_key($5) AS email
), matched AS (
    SELECT c.*, array_remove(ARRAY[
        CASE WHEN intel_name_key(c.report -> 'incident' -> 'suspect' ->> 'name') = k.name
             THEN 'suspect_name' END,
        CASE WHEN intel_vrm_key(c.report -> 'incident' -> 'suspect' ->> 'vehicle_registration')
                  = k.vrm THEN 'vehicle_registration' END,
        CASE WHEN intel_phone_key(c.report -> 'reporter' ->> 'phone') = k.phone
             THEN 'phone' END,
        CASE WHEN intel_email_key(c.report -> 'reporter' ->> 'email') = k.email
             THEN 'email' END], NULL) AS matched_on
    FROM cases c, keys k
    WHERE c.workflow_id <> $1
      AND (intel_name_key(c.report -> 'incident' -> 'suspect' ->> 'name') = k.name
        OR intel_vrm_key(c.report -> 'incident' -> 'suspect' ->> 'vehicle_registration') = k.vrm
        OR intel_phone_key(c.report -> 'reporter' ->> 'phone') = k.phone
        OR intel_email_key(c.report -> 'reporter' ->> 'email') = k.email)
)
SELECT coalesce(crime_reference, receipt_code) AS reference, category, matched_on,
       coalesce((report -> 'incident' ->> 'occurred_from')::timestamptz, received_at)
           AS occurred_from,
       (report -> 'incident' -> 'location' ->> 'latitude')::float8 AS latitude,
       (report -> 'incident' -> 'location' ->> 'longitude')::float8 AS longitude,
       count(*) OVER () AS total
FROM matched
ORDER BY cardinality(matched_on) DESC, received_at DESC
LIMIT $6
"""


async def search(pool: asyncpg.Pool, query: IntelQuery) -> IntelSummary:
    """Crimes within ``radius_m`` and the time window of the incident, and our own cases
    (other than this one) that share a suspect name, vehicle registration, phone or email.
    """
    async with pool.acquire() as conn:
        return await search_on(conn, query)


async def search_on(
    conn: asyncpg.Connection | PoolConnectionProxy, query: IntelQuery
) -> IntelSummary:
    """``search`` on a connection the caller holds (and its transaction, if any)."""
    related = related_crime_types(query.category)
    months = window_months(query.occurred_at, query.window_days)
    by_type: dict[str, int] = {}
    area: list[IntelMatch] = []
    if query.latitude is not None and query.longitude is not None:
        dlat, dlon = bounding_box(query.latitude, query.longitude, query.radius_m)
        row = await conn.fetchrow(
            AREA_SQL,
            query.latitude,
            query.longitude,
            months,
            dlat,
            dlon,
            float(query.radius_m),
            sorted(related),
            query.limit,
        )
        assert row is not None
        by_type = dict(row["by_type"])
        area = [_area_match(item) for item in row["top"]]
    own_rows = await conn.fetch(
        _OWN_CASES_SQL,
        query.workflow_id,
        query.suspect_name,
        query.vehicle_registration,
        query.phone,
        query.email,
        query.limit,
    )
    own = [_own_match(query, r) for r in own_rows]
    own_total = own_rows[0]["total"] if own_rows else 0
    related_count = sum(n for t, n in by_type.items() if t in related)
    top = rank_matches(area, own, query.limit)
    return IntelSummary(
        area_count=sum(by_type.values()),
        related_count=related_count,
        own_case_matches=own_total,
        top_matches=top,
        summary=summarise(query, by_type, related_count, own_total, top),
        radius_m=query.radius_m,
        window_days=query.window_days,
        by_type=by_type,
        months=months if query.has_location else [],
    )


def _area_match(item: dict[str, Any]) -> IntelMatch:
    return IntelMatch(
        kind="area",
        reference=item["crime_id"] or "",
        crime_type=item["crime_type"],
        occurred=date.fromisoformat(item["month"]),
        distance_m=round(item["distance_m"], 1),
        related=item["related"],
        location=item["location"] or None,
        outcome=item["last_outcome_category"] or None,
    )


def _own_match(query: IntelQuery, row: asyncpg.Record) -> IntelMatch:
    far: float | None = None
    if query.has_location and row["latitude"] is not None and row["longitude"] is not None:
        assert query.latitude is not None and query.longitude is not None
        far = round(
            distance_m(query.latitude, query.longitude, row["latitude"], row["longitude"]), 1
        )
    return IntelMatch(
        kind="own_case",
        reference=row["reference"],
        crime_type=row["category"],
        occurred=row["occurred_from"].astimezone(UTC).date(),
        distance_m=far,
        matched_on=row["matched_on"],
        related=categories_related(query.category, row["category"]),
    )
