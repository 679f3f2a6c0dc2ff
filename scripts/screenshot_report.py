"""The promises report's page in a real browser: ``docs/screenshots/promises-report.png``.

    python scripts/screenshot_report.py [--cases 3000]

On a throw-away embedded PostgreSQL: the demo roster, ``bench.compliance``'s synthetic
cases (13 weeks of receipts, each with the deadlines a case records), the projection
built from them, then ``whn-admin report ... --html`` as a supervisor runs it, opened
in headless Chromium (Debian's ``chromium``; see ``scripts/screenshots.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from activities.projection import rebuild_deadlines
from bench.compliance import _FILL, PERIOD_DAYS, START
from scripts.screenshots import OUT, shoot
from whn import db
from whn.devstack.postgres import EmbeddedPostgres
from whn.devstack.temporal_server import free_port

BIN = Path(sys.executable).parent


async def _fill(dsn: str, cases: int) -> None:
    pool = await db.create_pool(dsn, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SELECT setseed(0.18)")
            await conn.execute(_FILL, cases, START, PERIOD_DAYS)
        await rebuild_deadlines(pool)
    finally:
        await pool.close()


async def _main(cases: int, tmp: Path) -> Path:
    server = EmbeddedPostgres(tmp / "data", free_port(), fast=True)
    await server.start()
    try:
        dsn = await db.ensure_database(server.dsn(), "whn_report_demo")
        await db.migrate(dsn)
        await db.seed_demo_roster(dsn)
        await _fill(dsn, cases)
        page = tmp / "report.html"
        end = START + timedelta(days=PERIOD_DAYS - 1)
        await asyncio.to_thread(
            subprocess.run,
            [
                str(BIN / "whn-admin"),
                "report",
                "--from",
                str(START),
                "--to",
                str(end),
                "--as-of",
                f"{end + timedelta(days=7)}T09:00:00",
                "--html",
                str(page),
                "--as",
                "supervisor-1",
            ],
            check=True,
            env={**os.environ, "WHN_DATABASE_URL": dsn},
        )
        return page
    finally:
        await server.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python scripts/screenshot_report.py")
    p.add_argument("--cases", type=int, default=3000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="whn-report-shot-") as tmp:
        page = asyncio.run(_main(args.cases, Path(tmp)))
        shoot(page.as_uri(), OUT / "promises-report.png", width=1280, height=1500, settle=2.0)


if __name__ == "__main__":
    main()
