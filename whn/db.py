"""PostgreSQL: the connection pool and the numbered migrations."""

from __future__ import annotations

import importlib.resources
import json
import logging

import asyncpg

log = logging.getLogger(__name__)

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections encode and decode ``jsonb`` as Python objects."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=30
    )
    assert pool is not None
    return pool


def _migration_files() -> list[tuple[int, str, str]]:
    found = []
    for entry in importlib.resources.files("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


async def migrate(dsn: str) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction; return their names.

    An advisory lock lets several processes (two workers, a dev stack) start at once.
    """
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock(7201)")
        await conn.execute(_MIGRATIONS_TABLE)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in _migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            log.info("applied migration %s", name)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(7201)")
        await conn.close()
    return applied


async def ensure_database(dsn: str, name: str) -> str:
    """Create database ``name`` on the server of ``dsn`` if missing; return its DSN."""
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{name}"


DEMO_ROSTER: tuple[tuple[str, str, str], ...] = (
    ("control-1", "Demo control room operator", "control_room"),
    ("handler-1", "Demo call handler", "call_handler"),
    ("imu-1", "Demo IMU decision maker", "imu"),
    ("officer-1", "Demo investigating officer", "officer"),
    ("supervisor-1", "Demo supervisor", "supervisor"),
)


async def seed_demo_roster(dsn: str) -> None:
    """The contract's demo roster, one person per role; existing entries are kept."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO staff (staff_id, name, roles) VALUES ($1, $2, ARRAY[$3])"
            " ON CONFLICT (staff_id) DO NOTHING",
            DEMO_ROSTER,
        )
    finally:
        await conn.close()
