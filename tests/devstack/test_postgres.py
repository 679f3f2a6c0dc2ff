"""EmbeddedPostgres: a real server that can be stopped and started on the same data."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
from pathlib import Path

import asyncpg
import psutil
import pytest

from whn.devstack.postgres import EmbeddedPostgres, EmbeddedPostgresError
from whn.devstack.temporal_server import free_port


async def _fetch_notes(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["text"] for r in await conn.fetch("SELECT text FROM notes ORDER BY text")]
    finally:
        await conn.close()


async def test_restart_keeps_data_and_port(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), fast=True)
    dsn = await server.start()
    try:
        assert dsn == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE notes (text text); INSERT INTO notes VALUES ('kept')")
        assert await conn.fetchval("SHOW max_connections") == "200"
        await conn.close()

        await server.stop()
        assert not server.running
        assert not (tmp_path / "pg" / "postmaster.pid").exists()

        assert await server.start() == dsn
        assert await _fetch_notes(dsn) == ["kept"]
    finally:
        await server.stop()


async def test_fsync_stays_on_unless_fast(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", free_port())
    dsn = await server.start()
    try:
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SHOW fsync") == "on"
        await conn.close()
    finally:
        await server.stop()


async def test_starts_over_a_stale_pid_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), fast=True)
    await server.start()
    await server.stop()
    # As left by a run killed with SIGKILL, its pid since reused by another process.
    pid_file = tmp_path / "pg" / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n{tmp_path / 'pg'}\n0\n{server.port}\n\n127.0.0.1\n")
    try:
        with caplog.at_level(logging.INFO, logger="whn.devstack.postgres"):
            await server.start()
        assert "removing stale" in caplog.text
    finally:
        await server.stop()


async def test_never_takes_a_server_away_from_a_live_run(tmp_path: Path) -> None:
    first = EmbeddedPostgres(tmp_path / "pg", free_port(), fast=True)
    await first.start()
    try:
        with pytest.raises(EmbeddedPostgresError, match="already running"):
            await EmbeddedPostgres(tmp_path / "pg", free_port(), fast=True).start()
        assert first.running
    finally:
        await first.stop()


async def test_replaces_a_postmaster_orphaned_by_a_killed_run(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), fast=True)
    dsn = await server.start()
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE notes (text text); INSERT INTO notes VALUES ('kept')")
    await conn.close()
    await server.stop()

    # Started in the background of a shell that exits: what a killed run leaves behind
    # where the kernel's parent-death signal is not available.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    background = ["sh", "-c", '"$@" >/dev/null 2>&1 &', "sh", *server.command()]
    await asyncio.to_thread(subprocess.run, background, check=True, user=user)
    orphan = await _postmaster_accepting(dsn, tmp_path / "pg")
    if orphan.ppid() != 1:
        orphan.kill()
        pytest.skip(f"the orphan was adopted by a subreaper (pid {orphan.ppid()}), not init")

    try:
        await server.start()
        assert _ended(orphan)
        assert await _fetch_notes(dsn) == ["kept"]
    finally:
        await server.stop()
        if not _ended(orphan):
            orphan.kill()


def _ended(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)  # ended, not yet reaped by init
    except psutil.NoSuchProcess:
        return True


async def _postmaster_accepting(dsn: str, data_dir: Path) -> psutil.Process:
    for _ in range(600):  # a minute: a loaded CI machine starts PostgreSQL slowly
        try:
            conn = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(0.1)
            continue
        await conn.close()
        pid_file = await asyncio.to_thread((data_dir / "postmaster.pid").read_text)
        return psutil.Process(int(pid_file.split()[0]))
    pytest.fail("the background PostgreSQL never accepted connections")


async def test_session_database_is_migrated_and_seeded(db_pool: asyncpg.Pool) -> None:
    roles = await db_pool.fetch("SELECT staff_id, roles FROM staff ORDER BY staff_id")
    assert {r["staff_id"] for r in roles} >= {
        "control-1",
        "handler-1",
        "imu-1",
        "officer-1",
        "supervisor-1",
    }
    assert await db_pool.fetchval("SELECT count(*) FROM schema_migrations") >= 1


async def test_refuses_to_initialise_over_other_files(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "notes.txt").write_text("not a database")
    server = EmbeddedPostgres(tmp_path / "pg", free_port())
    with pytest.raises(EmbeddedPostgresError, match="no PG_VERSION"):
        await server.start()
    assert (tmp_path / "pg" / "notes.txt").exists()


async def test_refuses_a_port_already_taken(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        server = EmbeddedPostgres(tmp_path / "pg", taken.getsockname()[1])
        with pytest.raises(EmbeddedPostgresError, match="already in use"):
            await server.start()
