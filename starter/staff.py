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

import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated

import typer

from domain.case import Role
from domain.effects import StaffMember
from starter.cli import AsOpt, JsonOpt, emit, emit_rows, run_as
from starter.errors import RejectedError
from starter.store import Connection, case_store, refusal

_STAFF_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


async def _audit(
    conn: Connection, actor: str, action: str, allowed: bool, reason: str | None
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
async def _change(dsn: str, actor: str, action: str) -> AsyncIterator[Connection]:
    """A transaction for one roster action; a refusal inside it is audited, then raised.

    The refusal is written after the rollback, so it is kept while the change is not.
    """
    async with case_store(dsn, max_size=1) as pool, pool.acquire() as conn:
        try:
            async with conn.transaction():
                # One roster change at a time: the bootstrap check and the last-supervisor
                # rule must not race a concurrent change.
                await conn.execute("LOCK TABLE staff IN SHARE ROW EXCLUSIVE MODE")
                yield conn
        except _Refused as refused:
            await _audit(conn, actor, action, False, str(refused))
            raise RejectedError(str(refused)) from None


async def _require_supervisor(conn: Connection, actor: str, action: str) -> None:
    """Refuse unless ``actor`` is an active supervisor."""
    row = await conn.fetchrow("SELECT roles, active FROM staff WHERE staff_id = $1", actor)
    if (reason := refusal(row, actor, action, {Role.SUPERVISOR})) is not None:
        raise _Refused(reason)


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
IdArg = Annotated[str, typer.Argument(metavar="ID")]


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
    member = run_as(actor, add_staff, staff_id=staff_id, name=name, roles=role)
    emit(as_json, member.model_dump(mode="json"), f"added {_line(member)}")


@staff_app.command("list")
def list_command(actor: AsOpt = None, as_json: JsonOpt = False) -> None:
    """The roster, active and disabled."""
    emit_rows(as_json, "staff", run_as(actor, list_staff), _line, "no staff")


def _set_active_command(active: bool, summary: str) -> Callable[..., None]:
    """``staff disable`` or ``staff enable``: the same command but for what it sets."""

    def command(staff_id: IdArg, actor: AsOpt = None, as_json: JsonOpt = False) -> None:
        member = run_as(actor, set_active, staff_id=staff_id, active=active)
        done = "enabled" if active else "disabled"
        emit(as_json, member.model_dump(mode="json"), f"{done} {_line(member)}")

    command.__doc__ = summary
    return command


staff_app.command("disable")(
    _set_active_command(False, "Disable a person: every later action of theirs is refused.")
)
staff_app.command("enable")(_set_active_command(True, "Enable a disabled person again."))
