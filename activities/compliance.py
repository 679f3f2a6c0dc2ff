"""The promises report and the live gauges, computed in PostgreSQL from ``case_deadlines``.

The period is of receipt: cases received from the start of ``from`` to the end of ``to``,
days in the force's time (Europe/London). A deadline not met is ``missed`` once the
workflow recorded it so or its due time is past ``as_of`` (a closed case records no
more), else ``open``. The figures and every split requested come from one scan
(``GROUPING SETS``), the weekly trend from a second; the morning summary's figures
(``Summaries``) and the worker's gauges (``publish_live_counts``) read the same table.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.common import MetricMeter

from domain.compliance import (
    ComplianceReport,
    DailySummary,
    PromiseFigures,
    SplitBy,
    SplitFigures,
    SummaryRequest,
    WeekFigures,
    on_time_rate,
    split_label,
)

log = logging.getLogger(__name__)

FORCE_TIMEZONE = "Europe/London"

# The rows of the period, each deadline's result decided at as_of ($3).
_PERIOD = """
    SELECT promise, seq, team, category, enhanced_rights, received_at,
           CASE WHEN met_at IS NOT NULL THEN state
                WHEN missed OR due_at <= $3 THEN 'missed'
                ELSE 'open' END AS result,
           extract(epoch FROM met_at - coalesce(opened_at, received_at)) AS secs
    FROM case_deadlines
    WHERE received_at >= ($1::date)::timestamp AT TIME ZONE $5
      AND received_at < ($2::date + 1)::timestamp AT TIME ZONE $5
      AND ($4::text IS NULL OR team = $4)
      AND state <> 'superseded'
"""

_COUNTS = """
       count(*) AS due,
       count(*) FILTER (WHERE result = 'met_on_time') AS met_on_time,
       count(*) FILTER (WHERE result = 'met_late') AS met_late,
       count(*) FILTER (WHERE result = 'missed') AS missed,
       count(*) FILTER (WHERE result = 'open') AS open"""

_REPORT = (
    "WITH d AS (" + _PERIOD + """)
SELECT promise,
       {by_team} AS by_team, {by_category} AS by_category,
       {by_enhanced_rights} AS by_enhanced_rights, false AS by_week,
       {team} AS team, {category} AS category, {enhanced_rights} AS enhanced_rights,
       min(seq) AS first_seq,"""
    + _COUNTS
    + """,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY secs))::bigint AS median,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY secs))::bigint AS p90
FROM d
GROUP BY GROUPING SETS ((promise) {splits})
"""
)

# The weekly trend needs counts only: a hash aggregate, no sort.
_WEEKLY = (
    "WITH d AS (" + _PERIOD + """)
SELECT promise, date_trunc('week', received_at AT TIME ZONE $5)::date AS week,"""
    + _COUNTS
    + """
FROM d GROUP BY 1, 2
"""
)

_CASES = """
SELECT count(*) FROM cases
WHERE received_at >= ($1::date)::timestamp AT TIME ZONE $3
  AND received_at < ($2::date + 1)::timestamp AT TIME ZONE $3
  AND ($4::text IS NULL OR team = $4)
"""

_SPLIT_SETS = {
    "team": "(promise, team)",
    "category": "(promise, category)",
    "enhanced_rights": "(promise, enhanced_rights)",
}


def _figures(row: asyncpg.Record) -> PromiseFigures:
    return PromiseFigures(
        name=row["promise"],
        due=row["due"],
        met_on_time=row["met_on_time"],
        met_late=row["met_late"],
        missed=row["missed"],
        open=row["open"],
        on_time_rate=on_time_rate(row["met_on_time"], row["met_late"], row["missed"]),
        median_seconds_to_meet=row["median"],
        p90_seconds_to_meet=row["p90"],
    )


async def compliance_report(
    pool: asyncpg.Pool,
    *,
    date_from: date,
    date_to: date,
    team: str | None = None,
    splits: tuple[SplitBy, ...] = (),
    as_of: datetime | None = None,
) -> ComplianceReport:
    """How the promises of the cases received in the period were kept."""
    as_of = as_of or datetime.now(UTC)
    wanted = dict.fromkeys(splits)
    sets = "".join(f", {_SPLIT_SETS[s]}" for s in wanted)
    # GROUPING() may name only columns of some grouping set: the others are constants.
    columns = {f"by_{s}": f"GROUPING({s}) = 0" if s in wanted else "false" for s in _SPLIT_SETS}
    columns |= {s: s if s in wanted else "NULL" for s in _SPLIT_SETS}
    args = (date_from, date_to, as_of, team, FORCE_TIMEZONE)
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        # The medians sort each promise's times: in memory, not on disk, at 100,000 cases.
        await conn.execute("SET LOCAL work_mem = '64MB'")
        rows = await conn.fetch(_REPORT.format(splits=sets, **columns), *args)
        weeks = await conn.fetch(_WEEKLY, *args)
        cases = await conn.fetchval(_CASES, date_from, date_to, FORCE_TIMEZONE, team)
    # Promises in the order cases first meet them (receipt first), then by name.
    order = {
        r["promise"]: (r["first_seq"], r["promise"])
        for r in rows
        if not (r["by_team"] or r["by_category"] or r["by_enhanced_rights"] or r["by_week"])
    }
    promises = sorted(
        (
            _figures(r)
            for r in rows
            if not (r["by_team"] or r["by_category"] or r["by_enhanced_rights"] or r["by_week"])
        ),
        key=lambda p: order[p.name],
    )
    grouped: dict[tuple[SplitBy, str], list[PromiseFigures]] = defaultdict(list)
    weekly: list[WeekFigures] = []
    for r in rows:
        by: SplitBy | None = (
            "team"
            if r["by_team"]
            else "category"
            if r["by_category"]
            else "enhanced_rights"
            if r["by_enhanced_rights"]
            else None
        )
        if by is not None:
            grouped[(by, split_label(by, r[by]))].append(_figures(r))
    for r in weeks:
        weekly.append(
            WeekFigures(
                week=r["week"],
                name=r["promise"],
                due=r["due"],
                decided=r["met_on_time"] + r["met_late"] + r["missed"],
                met_on_time=r["met_on_time"],
                on_time_rate=on_time_rate(r["met_on_time"], r["met_late"], r["missed"]),
            )
        )
    split_order = {s: i for i, s in enumerate(dict.fromkeys(splits))}
    split_figures = [
        SplitFigures(by=by, value=value, promises=sorted(figs, key=lambda p: order[p.name]))
        for (by, value), figs in sorted(
            grouped.items(), key=lambda kv: (split_order[kv[0][0]], kv[0][1])
        )
    ]
    weekly.sort(key=lambda w: (w.week, order[w.name]))
    return ComplianceReport(
        from_=date_from,
        to=date_to,
        as_of=as_of,
        team=team,
        cases=cases,
        promises=promises,
        splits=split_figures,
        weekly=weekly,
    )


_GAUGES = """
SELECT 'stage' AS kind, stage AS label, count(*) AS n FROM cases GROUP BY stage
UNION ALL
SELECT 'overdue', d.promise, count(*) FROM case_deadlines d JOIN cases c USING (workflow_id)
WHERE d.met_at IS NULL AND (d.missed OR d.due_at <= now())
  AND c.stage NOT IN ('redirected', 'not_a_crime', 'closed_by_imu', 'closed')
  AND d.promise <> 'details_reply'  -- the reporter's to meet, not the force's
GROUP BY d.promise
"""


async def live_counts(pool: asyncpg.Pool) -> dict[str, dict[str, int]]:
    """Cases by stage and overdue deadlines by name now, for the worker's gauges."""
    out: dict[str, dict[str, Any]] = {"stage": {}, "overdue": {}}
    async with pool.acquire() as conn:
        for row in await conn.fetch(_GAUGES):
            out[row["kind"]][row["label"]] = row["n"]
    return out


async def publish_live_counts(
    pool: asyncpg.Pool, meter: MetricMeter, *, every: float = 30.0
) -> None:
    """Keep the gauges ``whn_cases{stage}`` and ``whn_deadlines_overdue{deadline}`` current
    (the worker runs this while it has a Prometheus endpoint); a failed read is skipped."""
    cases = meter.create_gauge("whn_cases", "Cases in the case store, by stage")
    overdue = meter.create_gauge(
        "whn_deadlines_overdue", "Deadlines of open cases past due and not met, by name"
    )
    seen: dict[str, set[str]] = {"stage": set(), "overdue": set()}
    while True:
        try:
            counts = await live_counts(pool)
        except (OSError, asyncpg.PostgresError) as err:
            log.warning("live counts not read: %s", type(err).__name__)
        else:
            for kind, gauge, label in (("stage", cases, "stage"), ("overdue", overdue, "deadline")):
                seen[kind] |= counts[kind].keys()
                for value in seen[kind]:
                    gauge.set(counts[kind].get(value, 0), {label: value})
        await asyncio.sleep(every)


_CLOSED = "('redirected', 'not_a_crime', 'closed_by_imu', 'closed')"
_OVERDUE_NOW = f"""
SELECT d.promise, count(*) AS n FROM case_deadlines d JOIN cases c USING (workflow_id)
WHERE d.met_at IS NULL AND (d.missed OR d.due_at <= $1) AND c.stage NOT IN {_CLOSED}
  AND d.promise <> 'details_reply'
GROUP BY d.promise ORDER BY n DESC, d.promise
"""
_OVERDUE_CASES = f"""
SELECT c.receipt_code FROM case_deadlines d JOIN cases c USING (workflow_id)
WHERE d.met_at IS NULL AND (d.missed OR d.due_at <= $1) AND c.stage NOT IN {_CLOSED}
  AND d.promise <> 'details_reply'
GROUP BY c.receipt_code ORDER BY min(d.due_at), c.receipt_code LIMIT 20
"""
_DUE_ON_DAY = """
SELECT promise, count(*) AS due,
       count(*) FILTER (WHERE met_at IS NULL OR met_at > due_at) AS missed
FROM case_deadlines
WHERE due_at >= ($1::date)::timestamp AT TIME ZONE $2
  AND due_at < ($1::date + 1)::timestamp AT TIME ZONE $2
  AND promise <> 'details_reply'
GROUP BY promise ORDER BY min(seq), promise
"""


class Summaries:
    """The supervisor's morning summary (``workflows.summary``), from the projection."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def daily_summary(self, request: SummaryRequest) -> DailySummary:
        """Overdue now (open cases), and the promises due on the day: how many were missed."""
        async with self._pool.acquire() as conn:
            overdue = await conn.fetch(_OVERDUE_NOW, request.as_of)
            codes = await conn.fetch(_OVERDUE_CASES, request.as_of)
            day = await conn.fetch(_DUE_ON_DAY, request.day, FORCE_TIMEZONE)
        return DailySummary(
            day=request.day,
            overdue_now={r["promise"]: r["n"] for r in overdue},
            overdue_cases=[r["receipt_code"] for r in codes],
            due_yesterday={r["promise"]: r["due"] for r in day},
            missed_yesterday={r["promise"]: r["missed"] for r in day if r["missed"]},
        )
