"""Benchmark of the promises report: ``whn-admin report`` over 100,000 cases in the period.

    python -m bench.compliance                  # on a throw-away embedded PostgreSQL
    python -m bench.compliance --cases 10000    # smaller
    python -m bench.run --only report           # the same, inside the benchmark run

Fills ``cases`` with synthetic cases received over 13 weeks, each with the deadlines a
case records (receipt, recording decision, CRN; a referral, a Right 6 letter, a team's
acknowledgement for some; met on time, late, missed or open in realistic shares), builds
the projection from them (``rebuild_deadlines``, timed: the repair path), then times the
report as ``whn-admin report`` computes it: the SQL alone, with every split, and the
whole of it including the CSV and the HTML page with its charts. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from activities.compliance import compliance_report
from activities.projection import rebuild_deadlines
from starter.report_render import render_csv, render_html
from whn import db

PERIOD_DAYS = 91
START = date(2026, 6, 1)

# One row per case; the deadlines are built in SQL from per-case random draws, so 100,000
# cases load in seconds. Shares: about 85% of decisions on time, 8% late, the rest missed
# or (for the last days) still open.
_FILL = """
INSERT INTO cases (workflow_id, receipt_code, submission_id, stage, priority, category,
                   report, received_at, team, enhanced_rights, deadlines)
SELECT 'bench-' || i, 'BENCH-' || i, 'bench-sub-' || i, stage, 'grade-3', category, '{}'::jsonb,
       received_at, team, enhanced, deadlines
FROM (
    SELECT i, r, received_at, enhanced,
           (ARRAY['burglary', 'vehicle-crime', 'shoplifting', 'criminal-damage-arson',
                  'violent-crime', 'other-theft'])[1 + (i % 6)] AS category,
           CASE WHEN r < 0.4 THEN NULL
                ELSE (ARRAY['cid', 'lpt-cambridge', 'lpt-fenland', 'lpt-peterborough',
                            'domestic-abuse', 'cyber'])[1 + (i % 6)] END AS team,
           CASE WHEN r < 0.4 THEN 'closed_by_imu' WHEN r < 0.7 THEN 'investigating'
                ELSE 'closed' END AS stage,
           jsonb_build_array(
               jsonb_build_object('name', 'receipt', 'opened_at', received_at,
                   'due_at', received_at + interval '5 minutes',
                   'met_at', received_at + interval '4 seconds', 'missed', false),
               jsonb_build_object('name', 'crime_recording_decision', 'opened_at', received_at,
                   'due_at', received_at + interval '24 hours',
                   'met_at', CASE WHEN r2 < 0.97 THEN received_at + (r2 * interval '28 hours') END,
                   'missed', r2 > 24.0 / 28),
               jsonb_build_object('name', 'crn_or_explanation', 'opened_at', received_at,
                   'due_at', received_at + interval '48 hours',
                   'met_at', CASE WHEN r2 < 0.97 THEN received_at + (r2 * interval '28 hours')
                                                      + interval '1 minute' END,
                   'missed', r2 >= 0.97),
               jsonb_build_object('name', 'victim_support_referral', 'opened_at', received_at,
                   'due_at', received_at + interval '3 days',
                   'met_at', received_at + (r3 * interval '4 days'), 'missed', r3 > 0.75),
               jsonb_build_object('name', CASE WHEN r < 0.4 THEN 'right6_decision_explained'
                                               ELSE 'team_acknowledgement' END,
                   'opened_at', received_at + interval '1 day',
                   'due_at', received_at + interval '2 days',
                   'met_at', CASE WHEN r3 < 0.95 THEN received_at + interval '1 day'
                                                      + (r3 * interval '30 hours') END,
                   'missed', r3 > 0.8)
           ) AS deadlines
    FROM (
        SELECT i, random() AS r, random() AS r2, random() AS r3, random() < 0.1 AS enhanced,
               ($2::date)::timestamptz + (i::float / $1) * ($3 * interval '1 day') AS received_at
        FROM generate_series(1, $1) AS i
    ) AS draws
) AS c
"""


async def bench_report(dsn: str, cases: int, runs: int) -> dict[str, Any]:
    pool = await db.create_pool(dsn, max_size=2)
    try:
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.execute("SELECT setseed(0.18)")  # the same cases every run
            await conn.execute(_FILL, cases, START, PERIOD_DAYS)
        fill_s = time.perf_counter() - started
        started = time.perf_counter()
        rows = await rebuild_deadlines(pool)
        rebuild_s = time.perf_counter() - started
        await pool.execute("VACUUM ANALYZE case_deadlines")
        end = START + timedelta(days=PERIOD_DAYS - 1)
        sql_ms: list[float] = []
        split_ms: list[float] = []
        full_ms: list[float] = []
        report = None
        for _ in range(runs):
            t = time.perf_counter()
            await compliance_report(pool, date_from=START, date_to=end)
            sql_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            report = await compliance_report(
                pool,
                date_from=START,
                date_to=end,
                splits=("team", "category", "enhanced_rights"),
            )
            split_ms.append((time.perf_counter() - t) * 1000)
            render_csv(report)
            render_html(report)
            full_ms.append((time.perf_counter() - t) * 1000)
        assert report is not None
    finally:
        await pool.close()
    return {
        "cases": report.cases,
        "deadline_rows": rows,
        "promises": len(report.promises),
        "fill_s": round(fill_s, 2),
        "rebuild_s": round(rebuild_s, 2),
        "report_sql_ms": round(statistics.median(sql_ms), 1),
        "report_sql_splits_ms": round(statistics.median(split_ms), 1),
        "report_full_ms": round(statistics.median(full_ms), 1),
        "runs": runs,
    }


async def _on_embedded(cases: int, runs: int) -> dict[str, Any]:
    from whn.devstack.postgres import EmbeddedPostgres
    from whn.devstack.temporal_server import free_port

    with tempfile.TemporaryDirectory(prefix="whn-bench-report-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", free_port(), fast=False)
        await server.start()
        try:
            dsn = await db.ensure_database(server.dsn(), "whn_bench_report")
            await db.migrate(dsn)
            return await bench_report(dsn, cases, runs)
        finally:
            await server.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.compliance", description=__doc__)
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dsn", help="a scratch database, migrated (rows are added)")
    args = p.parse_args()
    if args.dsn:
        result = asyncio.run(bench_report(args.dsn, args.cases, args.runs))
    else:
        result = asyncio.run(_on_embedded(args.cases, args.runs))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
