"""Keys for intake systems calling the HTTP API: ``whn-admin intake-key add|list|revoke``.

A key is shown once, when it is added; only its SHA-256 is stored (``intake_keys``,
migration 004). Keys are 256-bit random, so a plain hash is enough: there is nothing to
guess. Every request looks its key up (``authenticate``), so a revoked key is refused
from the next request on. A name is an intake system; it may hold several keys at once,
so a key is rotated by adding a new one, deploying it, then revoking the name's old ones
(``revoke NAME`` revokes every active key of that name).

Managing keys is a supervisor's action, audited like the roster (``audit_log``, actions
``intake-key-add``, ``intake-key-list``, ``intake-key-revoke``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Annotated

import asyncpg
import typer
from pydantic import BaseModel

from domain.case import case_workflow_id, receipt_code_for
from domain.report import Report
from starter.cli import AsOpt, JsonOpt, emit, emit_rows, run_as
from starter.staff import _audit, _change, _check_id, _Refused, _require_supervisor
from starter.store import Connection

KEY_PREFIX = "whn_ik_"


class IntakeKey(BaseModel):
    name: str
    prefix: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_key() -> str:
    """A new random intake key (what the intake system sends as its bearer token)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_COLUMNS = "name, prefix, created_at, created_by, revoked_at, last_used_at"


async def store_key(conn: Connection, name: str, key: str, *, created_by: str) -> IntakeKey:
    """Record ``key`` (its hash) for the intake system ``name``."""
    row = await conn.fetchrow(
        f"INSERT INTO intake_keys (name, key_hash, prefix, created_by) VALUES ($1, $2, $3, $4)"
        f" RETURNING {_COLUMNS}",
        name,
        key_hash(key),
        key[: len(KEY_PREFIX) + 6],
        created_by,
    )
    assert row is not None
    return IntakeKey(**dict(row))


async def add_key(dsn: str, *, actor: str, name: str) -> tuple[IntakeKey, str]:
    """A new key for the intake system ``name``: its record and the key, shown this once."""
    _check_id(name, "intake system name")
    key = new_key()
    async with _change(dsn, actor, "intake-key-add") as conn:
        await _require_supervisor(conn, actor, "intake-key add")
        record = await store_key(conn, name, key, created_by=actor)
        await _audit(conn, actor, "intake-key-add", True, f"{name}: {record.prefix}...")
    return record, key


async def list_keys(dsn: str, *, actor: str) -> list[IntakeKey]:
    """Every key, active and revoked, by name and age (never the keys themselves)."""
    async with _change(dsn, actor, "intake-key-list") as conn:
        await _require_supervisor(conn, actor, "intake-key list")
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM intake_keys ORDER BY name, created_at")
        await _audit(conn, actor, "intake-key-list", True, None)
    return [IntakeKey(**dict(r)) for r in rows]


async def revoke_keys(dsn: str, *, actor: str, name: str) -> list[IntakeKey]:
    """Revoke every active key of ``name``; refused if it has none."""
    _check_id(name, "intake system name")
    async with _change(dsn, actor, "intake-key-revoke") as conn:
        await _require_supervisor(conn, actor, "intake-key revoke")
        rows = await conn.fetch(
            f"UPDATE intake_keys SET revoked_at = now(), revoked_by = $2"
            f" WHERE name = $1 AND revoked_at IS NULL RETURNING {_COLUMNS}",
            name,
            actor,
        )
        if not rows:
            raise _Refused(f"intake system {name!r} has no active key")
        await _audit(conn, actor, "intake-key-revoke", True, f"{name}: {len(rows)} key(s)")
    return [IntakeKey(**dict(r)) for r in rows]


async def authenticate(pool: asyncpg.Pool, key: str) -> str | None:
    """The intake system an active ``key`` belongs to (its use noted), else None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    name: str | None = await pool.fetchval(
        "UPDATE intake_keys SET last_used_at = now()"
        " WHERE key_hash = $1 AND revoked_at IS NULL RETURNING name",
        key_hash(key),
    )
    return name


async def record_source(
    pool: asyncpg.Pool, report: Report, *, source: str, duplicate: bool = False
) -> None:
    """Record which intake system handed us ``report`` (the first wins) and audit the
    submission (actor ``intake:<name>``), in one round trip, once its case has started."""
    receipt_code = receipt_code_for(report.submission_id)
    workflow_id = case_workflow_id(receipt_code)
    await pool.execute(
        "WITH source AS ("
        " INSERT INTO case_sources (submission_id, workflow_id, receipt_code, channel, source)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (submission_id) DO NOTHING)"
        " INSERT INTO audit_log (actor, action, workflow_id, allowed, reason)"
        " VALUES ('intake:' || $5, 'intake-submit', $2, true, $6)",
        report.submission_id,
        workflow_id,
        receipt_code,
        report.channel.value,
        source,
        "duplicate" if duplicate else None,
    )


async def source_of(pool: asyncpg.Pool, workflow_id: str) -> str | None:
    """The intake system that handed us the case ``workflow_id``; None if none did."""
    source: str | None = await pool.fetchval(
        "SELECT source FROM case_sources WHERE workflow_id = $1 LIMIT 1", workflow_id
    )
    return source


async def record_request(
    pool: asyncpg.Pool,
    source: str,
    action: str,
    workflow_id: str,
    reason: str | None,
    *,
    allowed: bool = True,
) -> None:
    """An intake system's request, in the audit log (actor ``intake:<name>``)."""
    await pool.execute(
        "INSERT INTO audit_log (actor, action, workflow_id, allowed, reason)"
        " VALUES ($1, $2, $3, $4, $5)",
        f"intake:{source}",
        action,
        workflow_id,
        allowed,
        reason,
    )


# --- whn-admin intake-key ... -----------------------------------------------------------

intake_key_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Keys for intake systems calling the HTTP API (supervisors only).",
)
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="the intake system")]


def _line(k: IntakeKey) -> str:
    state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
    used = f"last used {k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never used"
    return f"{k.name:24} {k.prefix}...  added {k.created_at:%Y-%m-%d %H:%M} by {k.created_by}  {state}, {used}"


@intake_key_app.command("add")
def add_command(name: NameArg, actor: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Add a key for an intake system and print it, this once."""
    record, key = run_as(actor, add_key, name=name)
    payload = record.model_dump(mode="json") | {"key": key}
    emit(as_json, payload, f"{key}\n(shown once: give it to {name} as its bearer token)")


@intake_key_app.command("list")
def list_command(actor: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Every intake key, active and revoked (never the keys themselves)."""
    emit_rows(as_json, "keys", run_as(actor, list_keys), _line, "no intake keys")


@intake_key_app.command("revoke")
def revoke_command(name: NameArg, actor: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke every key of an intake system, from its next request on."""
    keys = run_as(actor, revoke_keys, name=name)
    emit(
        as_json,
        {"name": name, "revoked": [k.model_dump(mode="json") for k in keys]},
        f"revoked {len(keys)} key(s) of {name}",
    )
