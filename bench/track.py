"""Benchmark of the reporter's page: signed-in page views per second at 10,000 cases.

    python -m bench.track                       # throw-away embedded PostgreSQL
    python -m bench.track --cases 10000 --seconds 15 --concurrency 16
    python -m bench.run --only track            # as part of make bench

Bulk-loads ``--cases`` cases into the case store, each with the events a case at its
stage has (received, stage changes, a details request on some), then runs ``whn-web``
as a child process (``python -m web.main``, one uvicorn worker, as shipped) and, from
this process, ``--concurrency`` reporters each holding a session cookie for a case of
their own (made with the page's own signer) GET ``/track/case`` as fast as it answers
for ``--seconds``. Every view reads the case and its events from PostgreSQL, renders the
page and writes its audit_log row, as in production. Temporal is not needed (the page
never queries a workflow). Writes ``bench/results/track.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from asyncio import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from whn import db
from whn.codec import Keyring, generate_key
from whn.tracklink import TrackSigner

RESULTS = Path(__file__).resolve().parent / "results"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

_STAGES = "ARRAY['awaiting_review','awaiting_details','with_imu','investigating','closed']"
_LOAD_CASES = f"""
INSERT INTO cases (workflow_id, receipt_code, submission_id, stage, priority, category, team,
                   report, received_at, crime_reference)
SELECT 'case-TRK-' || g, 'TRK-' || g, 'trk-' || g, ({_STAGES})[1 + g % 5], 'grade-3',
       'burglary', CASE WHEN g % 5 >= 3 THEN 'lpt-cambridge' END, $1::jsonb,
       now() - make_interval(hours => g % 500),
       CASE WHEN g % 5 >= 2 THEN '35/' || g || '/26' END
FROM generate_series(1, $2::int) AS g
"""
_LOAD_EVENTS = """
INSERT INTO case_events (workflow_id, event_key, at, actor, event, detail)
SELECT 'case-TRK-' || g, lpad(n::text, 5, '0') || '.' || e, now() - make_interval(hours => g % 500)
       + make_interval(mins => (n * 30)::int), 'system', e,
       CASE WHEN e = 'stage:awaiting_details' THEN '{"summary": "details requested (1)"}'::jsonb
            ELSE '{}'::jsonb END
FROM generate_series(1, $1::int) AS g,
     LATERAL (SELECT n, e FROM unnest(ARRAY['received', 'assessed', 'stage:awaiting_review',
              'stage:awaiting_details', 'details_received', 'stage:with_imu',
              'stage:investigating', 'stage:closed']) WITH ORDINALITY AS t(e, n)
              WHERE n <= 3 + 1 + g % 5 + (g % 5) / 2) AS steps
"""


async def load(dsn: str, cases: int) -> None:
    await db.migrate(dsn)
    report = json.loads((EXAMPLES / "ordinary.json").read_text())
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    try:
        await pool.execute("DELETE FROM case_events WHERE workflow_id LIKE 'case-TRK-%'")
        await pool.execute("DELETE FROM cases WHERE workflow_id LIKE 'case-TRK-%'")
        await pool.execute(_LOAD_CASES, report, cases)
        await pool.execute(_LOAD_EVENTS, cases)
        await pool.execute("VACUUM ANALYZE cases")
        await pool.execute("VACUUM ANALYZE case_events")
    finally:
        await pool.close()


async def drive(url: str, cookies: list[str], seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def reporter(cookie: str) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, cookies={"whn_track": cookie}) as http:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                r = await http.get("/track/case")
                if r.status_code != 200 or "Your references" not in r.text:
                    errors += 1
                latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(reporter(c) for c in cookies))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "views": len(latencies),
        "errors": errors,
        "views_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
    }


async def bench_track(dsn: str, *, cases: int, seconds: float, concurrency: int) -> dict[str, Any]:
    from whn.devstack.temporal_server import free_port

    await load(dsn, cases)
    keys = f"bench:{generate_key()}"
    signer = TrackSigner.from_keys(secret=None, ring=Keyring.parse(keys))
    assert signer is not None
    step = max(1, cases // concurrency)
    cookies = [
        signer.seal(f"case-TRK-{1 + i * step}", purpose="session", ttl=timedelta(hours=1))
        for i in range(concurrency)
    ]
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WHN_")},
        "WHN_DATABASE_URL": dsn,
        "WHN_CODEC_KEYS": keys,
        "WHN_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # never called by the page
        "WHN_WEB_PORT": str(port),
    }
    web = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "web.main",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        await drive(url, cookies[:2], 2.0)  # warm up
        result = await drive(url, cookies, seconds)
    finally:
        web.terminate()
        await asyncio.wait_for(web.wait(), timeout=30)
    return {"cases": cases, "concurrency": concurrency, "seconds": seconds, **result}


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    run = {"cases": args.cases, "seconds": args.seconds, "concurrency": args.concurrency}
    if args.dsn:
        return await bench_track(args.dsn, **run)
    from whn.devstack.postgres import EmbeddedPostgres
    from whn.devstack.temporal_server import free_port

    with tempfile.TemporaryDirectory(prefix="whn-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", free_port(), fast=True)
        await server.start()
        try:
            dsn = await db.ensure_database(server.dsn(), "whn_bench")
            return await bench_track(dsn, **run)
        finally:
            await server.stop()


def write(result: dict[str, Any], out: Path = RESULTS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "track.json").write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.track", description=__doc__)
    parser.add_argument("--dsn", help="a scratch database (default: a throw-away embedded one)")
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    result = asyncio.run(_main(parser.parse_args()))
    write(result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
