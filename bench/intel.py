"""Benchmark of the intelligence search: latency at 100,000 and 1,000,000 crimes.

    python -m bench.intel                       # on a throw-away embedded PostgreSQL
    python -m bench.intel --dsn postgresql://...  # on a scratch database (rows are added)

Fills ``intel_crimes`` with synthetic Cambridgeshire crimes (``whn.synthetic_intel``) up
to each size, then times ``activities.intel.search`` (the area query and the own-cases
match, as the activity runs them) at random points drawn like the data, on random dates
and categories, and prints one JSON object: generation time, search p50/p95/p99/max in
ms, and the plan of the area query at the busiest point (Cambridge centre) at the
largest size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from activities.intel import AREA_SQL, search
from domain.intel import IntelQuery, bounding_box, related_crime_types, window_months
from domain.report import POLICE_UK_CATEGORIES
from whn import db
from whn.synthetic_intel import SYNTHETIC_TOWNS, generate_synthetic

TARGET_P99_MS = 20.0


def _queries(n: int, rng: random.Random) -> list[IntelQuery]:
    """Searches at points drawn like the synthetic data, over its three years."""
    weights = [t[5] for t in SYNTHETIC_TOWNS]
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        _, _, lat, lon, spread_km, _ = rng.choices(SYNTHETIC_TOWNS, weights)[0]
        out.append(
            IntelQuery(
                workflow_id=f"bench-{i}",
                latitude=lat + rng.gauss(0, spread_km / 111.2),
                longitude=lon + rng.gauss(0, spread_km / 68.0),
                occurred_at=now - timedelta(days=rng.uniform(30, 3 * 365)),
                category=rng.choice(POLICE_UK_CATEGORIES),
                vehicle_registration=f"BE{i % 100:02d} NCH",
            )
        )
    return out


def _percentile(sorted_ms: list[float], p: float) -> float:
    return round(sorted_ms[min(len(sorted_ms) - 1, int(p / 100 * len(sorted_ms)))], 2)


async def bench_intel(
    dsn: str,
    rows: Sequence[int] = (100_000, 1_000_000),
    queries: int = 200,
    *,
    seed: int = 1,
) -> dict[str, Any]:
    """Generate synthetic crimes up to each size in ``rows`` and time ``queries`` searches."""
    await db.migrate(dsn)
    pool = await db.create_pool(dsn, max_size=2)
    rng = random.Random(seed)
    results: list[dict[str, Any]] = []
    try:
        for step, size in enumerate(sorted(rows)):
            held = await pool.fetchval("SELECT count(*) FROM intel_crimes")
            started = time.perf_counter()
            added = await generate_synthetic(pool, size - held, seed=seed + step)
            generate_s = round(time.perf_counter() - started, 2)
            batch = _queries(queries, rng)
            for q in batch[: min(20, queries)]:  # warm the cache and the prepared statements
                await search(pool, q)
            ms, found = [], []
            for q in batch:
                t0 = time.perf_counter()
                summary = await search(pool, q)
                ms.append((time.perf_counter() - t0) * 1000)
                found.append(summary.area_count)
            ms.sort()
            results.append(
                {
                    "rows": held + added,
                    "added": added,
                    "generate_s": generate_s,
                    "queries": queries,
                    "p50_ms": _percentile(ms, 50),
                    "p95_ms": _percentile(ms, 95),
                    "p99_ms": _percentile(ms, 99),
                    "max_ms": round(ms[-1], 2),
                    "mean_ms": round(statistics.fmean(ms), 2),
                    "mean_area_count": round(statistics.fmean(found), 1),
                    "max_area_count": max(found),
                }
            )
        sizes = await pool.fetchrow(
            "SELECT pg_size_pretty(pg_relation_size('intel_crimes')) AS heap,"
            " pg_size_pretty(pg_relation_size('intel_crimes_area_idx')) AS area_index"
        )
        plan = await _plan_at_busiest(pool)
    finally:
        await pool.close()
    top = results[-1]
    return {
        "sizes": results,
        "table": dict(sizes) if sizes else {},
        "target_p99_ms": TARGET_P99_MS,
        "target_met": top["p99_ms"] <= TARGET_P99_MS,
        "plan_at_cambridge_centre": plan,
    }


async def _plan_at_busiest(pool: Any) -> list[str]:
    _, _, lat, lon, _, _ = SYNTHETIC_TOWNS[0]
    when = datetime.now(UTC) - timedelta(days=365)
    dlat, dlon = bounding_box(lat, lon, 1000)
    plan = await pool.fetch(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + AREA_SQL,
        lat,
        lon,
        window_months(when, 90),
        dlat,
        dlon,
        1000.0,
        sorted(related_crime_types("burglary")),
        10,
    )
    return [r[0] for r in plan]


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    rows = [int(r) for r in args.rows.split(",")]
    if args.dsn:
        return await bench_intel(args.dsn, rows, args.queries)
    from whn.devstack.postgres import EmbeddedPostgres
    from whn.devstack.temporal_server import free_port

    with tempfile.TemporaryDirectory(prefix="whn-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", free_port(), fast=True)
        await server.start()
        try:
            dsn = await db.ensure_database(server.dsn(), "whn_bench")
            return await bench_intel(dsn, rows, args.queries)
        finally:
            await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.intel", description=__doc__)
    parser.add_argument("--dsn", help="a scratch database (default: a throw-away embedded one)")
    parser.add_argument("--rows", default="100000,1000000", help="sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="searches timed per size")
    result = asyncio.run(_main(parser.parse_args()))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
