"""``python -m whn.migrate``, the compose stack's one-shot ``migrate`` service."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import asyncpg

from tests.deploy.composefile import ROOT
from whn import db
from whn.devstack.temporal_server import free_port


def run_migrate(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_")}
    env["WHN_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "whn.migrate", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


async def test_migrates_a_fresh_database_once_and_seeds_only_when_asked(postgres_server):
    dsn = await db.ensure_database(postgres_server.dsn(), f"migrate_{uuid.uuid4().hex[:12]}")
    migrations = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))

    first = run_migrate(dsn)
    assert first.returncode == 0, first.stderr
    assert f"{len(migrations)} migration(s) applied" in first.stdout
    conn = await asyncpg.connect(dsn)
    try:
        recorded = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        assert sorted(recorded) == migrations
        assert await conn.fetchval("SELECT count(*) FROM staff") == 0  # nothing seeded

        again = run_migrate(dsn, "--seed-demo-roster")
        assert again.returncode == 0, again.stderr
        assert "0 migration(s) applied" in again.stdout
        staff = {r["staff_id"] for r in await conn.fetch("SELECT staff_id FROM staff")}
        assert staff == {staff_id for staff_id, _, _ in db.DEMO_ROSTER}
    finally:
        await conn.close()


def test_an_unreachable_database_exits_1_with_one_line_and_no_traceback():
    result = run_migrate(f"postgresql://nobody@127.0.0.1:{free_port()}/none", "--wait", "0")
    assert result.returncode == 1
    assert result.stderr.startswith("whn.migrate: ")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
