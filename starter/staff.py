"""The staff roster: who may act on cases, in which roles. ``whn-admin staff ...``.

Every roster change is itself a staff action: the person named by ``--as`` must be an
active supervisor, checked here against the ``staff`` table, and every attempt, allowed
or refused, is written to ``audit_log`` (``action`` is ``staff-add``, ``staff-list``,
``staff-disable`` or ``staff-enable``; for an allowed change ``reason`` names its target).

Bootstrapping: on a roster without any active supervisor, the first ``add`` may add a
supervisor acting as themselves (``--as`` equal to the new id); nothing else is allowed.
The last active supervisor cannot be disabled, so that state only arises on a new roster.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
import typer

from domain.case import Role
from domain.effects import StaffMember
from starter.cli import emit, run, settings_for
from starter.errors import RejectedError, UnavailableError
from whn.settings import Settings

_STAFF_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@asynccontextmanager
async def _connect(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        raise UnavailableError(
            f"PostgreSQL could not be reached: {str(err).splitlines()[0]}"
        ) from None
    try:
        yield conn
    finally:
        await conn.close()


async def _audit(
    conn: asyncpg.Connection, actor: str, action: str, allowed: bool, reason: str | None
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, workflow_id, allowed, reason)"
        " VALUES ($1, $2, NULL, $3, $4)",
        actor,
        action,
        allowed,
        reason,
    )


class _Refused(Exception):
    """Raised inside a roster transaction, so it rolls back; audited after it."""


@asynccontextmanager
async def _change(dsn: str, actor: str, action: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction for one roster action; a refusal inside it is audited, then raised.

    The refusal is written after the rollback, so it is kept while the change is not.
    """
    async with _connect(dsn) as conn:
        try:
            async with conn.transaction():
                # One roster change at a time: the bootstrap check and the last-supervisor
                # rule must not race a concurrent change.
                await conn.execute("LOCK TABLE staff IN SHARE ROW EXCLUSIVE MODE")
                yield conn
        except _Refused as refused:
            await _audit(conn, actor, action, False, str(refused))
            raise RejectedError(str(refused)) from None


async def _require_supervisor(conn: asyncpg.Connection, actor: str, action: str) -> None:
    """Refuse unless ``actor`` is an active supervisor."""
    row = await conn.fetchrow("SELECT roles, active FROM staff WHERE staff_id = $1", actor)
    if row is None:
        raise _Refused(f"unknown staff id {actor!r}")
    if not row["active"]:
        raise _Refused(f"staff {actor!r} is disabled")
    if Role.SUPERVISOR.value not in row["roles"]:
        raise _Refused(
            f"{action} needs the role supervisor; {actor} has "
            + (", ".join(row["roles"]) or "no role")
        )


def _check_id(staff_id: str, what: str = "staff id") -> None:
    if not _STAFF_ID.match(staff_id):
        raise RejectedError(f"{what} {staff_id!r}: use 1-64 of A-Z a-z 0-9 . _ -")


async def add_staff(
    dsn: str, *, actor: str, staff_id: str, name: str, roles: Sequence[Role | str]
) -> StaffMember:
    """Add a person to the roster with ``roles``; ``actor`` must be an active supervisor."""
    _check_id(staff_id)
    name = name.strip()
    if not 1 <= len(name) <= 200 or any(ord(c) < 32 for c in name):
        raise RejectedError("--name: 1-200 printable characters")
    try:
        wanted = sorted({Role(r).value for r in roles})
    except ValueError:
        raise RejectedError(
            f"--role: one of {', '.join(r.value for r in Role)} (got {', '.join(map(str, roles))})"
        ) from None
    if not wanted:
        raise RejectedError("--role: at least one role is needed")
    async with _change(dsn, actor, "staff-add") as conn:
        bootstrap = not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM staff WHERE active AND $1 = ANY(roles))",
            Role.SUPERVISOR.value,
        )
        if not bootstrap:
            await _require_supervisor(conn, actor, "staff-add")
        elif actor != staff_id or Role.SUPERVISOR.value not in wanted:
            raise _Refused(
                "the roster has no active supervisor: first add a supervisor"
                " acting as themselves (--as the new id)"
            )
        exists = await conn.fetchrow("SELECT active FROM staff WHERE staff_id = $1", staff_id)
        if exists is not None:
            state = "" if exists["active"] else " (disabled; use staff enable)"
            raise _Refused(f"staff id {staff_id!r} already exists{state}")
        await conn.execute(
            "INSERT INTO staff (staff_id, name, roles) VALUES ($1, $2, $3)",
            staff_id,
            name,
            wanted,
        )
        note = " (bootstrap)" if bootstrap else ""
        await _audit(conn, actor, "staff-add", True, f"{staff_id}: {', '.join(wanted)}{note}")
    return StaffMember(staff_id=staff_id, name=name, roles=[Role(r) for r in wanted], active=True)


async def list_staff(dsn: str, *, actor: str) -> list[StaffMember]:
    """The whole roster, active and disabled, by id; ``actor`` must be an active supervisor."""
    async with _change(dsn, actor, "staff-list") as conn:
        await _require_supervisor(conn, actor, "staff-list")
        rows = await conn.fetch("SELECT staff_id, name, roles, active FROM staff ORDER BY staff_id")
        await _audit(conn, actor, "staff-list", True, None)
    return [
        StaffMember(
            staff_id=r["staff_id"],
            name=r["name"],
            roles=[Role(x) for x in r["roles"] if x in Role._value2member_map_],
            active=r["active"],
        )
        for r in rows
    ]


async def set_active(dsn: str, *, actor: str, staff_id: str, active: bool) -> StaffMember:
    """Disable (or enable again) a person; they keep their history in the audit log."""
    action = "staff-enable" if active else "staff-disable"
    _check_id(staff_id)
    async with _change(dsn, actor, action) as conn:
        await _require_supervisor(conn, actor, action)
        row = await conn.fetchrow(
            "SELECT staff_id, name, roles, active FROM staff WHERE staff_id = $1", staff_id
        )
        if row is None:
            raise _Refused(f"unknown staff id {staff_id!r}")
        if not active and Role.SUPERVISOR.value in row["roles"] and row["active"]:
            others = await conn.fetchval(
                "SELECT count(*) FROM staff WHERE active AND $1 = ANY(roles) AND staff_id <> $2",
                Role.SUPERVISOR.value,
                staff_id,
            )
            if not others:
                raise _Refused(f"{staff_id} is the last active supervisor and cannot be disabled")
        await conn.execute("UPDATE staff SET active = $2 WHERE staff_id = $1", staff_id, active)
        await _audit(conn, actor, action, True, staff_id)
    return StaffMember(
        staff_id=row["staff_id"],
        name=row["name"],
        roles=[Role(x) for x in row["roles"] if x in Role._value2member_map_],
        active=active,
    )


# --- whn-admin staff ... ---------------------------------------------------------------

staff_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="The staff roster (supervisors only)."
)
AsOpt = Annotated[
    str | None, typer.Option("--as", help="your staff id (or WHN_STAFF_ID)", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]


def _actor(actor: str | None) -> str:
    who = actor or settings_for("whn-admin").staff_id
    if not who:
        typer.echo("whn-admin: --as STAFF_ID (or WHN_STAFF_ID) is required", err=True)
        raise typer.Exit(2)
    return who


def _line(member: StaffMember) -> str:
    state = "" if member.active else "  DISABLED"
    roles = ",".join(r.value for r in member.roles)
    return f"{member.staff_id:20} {roles:32} {member.name}{state}"


@staff_app.command("add")
def add_command(
    staff_id: Annotated[str, typer.Argument(metavar="ID", help="the new person's staff id")],
    name: Annotated[str, typer.Option("--name", help="their name")],
    role: Annotated[list[Role], typer.Option("--role", help="a role (repeat for more)")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a person to the roster."""
    who = _actor(actor)

    async def program(settings: Settings) -> StaffMember:
        return await add_staff(
            settings.database_url, actor=who, staff_id=staff_id, name=name, roles=role
        )

    member = run(program, prog="whn-admin")
    emit(as_json, member.model_dump(mode="json"), f"added {_line(member)}")


@staff_app.command("list")
def list_command(actor: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The roster, active and disabled."""
    who = _actor(actor)

    async def program(settings: Settings) -> list[StaffMember]:
        return await list_staff(settings.database_url, actor=who)

    members = run(program, prog="whn-admin")
    if as_json:
        typer.echo(json.dumps({"staff": [m.model_dump(mode="json") for m in members]}))
    else:
        typer.echo("\n".join(_line(m) for m in members) or "no staff")


def _set_active(staff_id: str, actor: str | None, as_json: bool, active: bool) -> None:
    who = _actor(actor)

    async def program(settings: Settings) -> StaffMember:
        return await set_active(settings.database_url, actor=who, staff_id=staff_id, active=active)

    member = run(program, prog="whn-admin")
    done = "enabled" if active else "disabled"
    emit(as_json, member.model_dump(mode="json"), f"{done} {_line(member)}")


@staff_app.command("disable")
def disable_command(
    staff_id: Annotated[str, typer.Argument(metavar="ID")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Disable a person: every later action of theirs is refused."""
    _set_active(staff_id, actor, as_json, active=False)


@staff_app.command("enable")
def enable_command(
    staff_id: Annotated[str, typer.Argument(metavar="ID")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Enable a disabled person again."""
    _set_active(staff_id, actor, as_json, active=True)
