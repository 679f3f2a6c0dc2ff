"""The roster: only active supervisors change or read it, and every attempt is audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from domain.case import Role
from starter.errors import RejectedError, UnavailableError
from starter.staff import add_staff, list_staff, set_active
from whn import db
from whn.devstack.temporal_server import free_port

WHN_ADMIN = Path(sys.executable).parent / "whn-admin"


def _new_id(prefix: str = "sec") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _audit(db_pool, actor: str, action: str) -> list[tuple[bool, str | None]]:
    rows = await db_pool.fetch(
        "SELECT allowed, reason FROM audit_log WHERE actor = $1 AND action = $2 ORDER BY id",
        actor,
        action,
    )
    return [(r["allowed"], r["reason"]) for r in rows]


async def test_a_supervisor_adds_lists_disables_and_enables(pg_dsn, db_pool):
    boss, officer = _new_id("boss"), _new_id("officer")
    await add_staff(
        pg_dsn, actor="supervisor-1", staff_id=boss, name="A Boss", roles=["supervisor"]
    )
    added = await add_staff(
        pg_dsn, actor=boss, staff_id=officer, name="Pat Officer", roles=["officer", "imu"]
    )
    assert added.roles == [Role.IMU, Role.OFFICER] and added.active

    listed = {m.staff_id: m for m in await list_staff(pg_dsn, actor=boss)}
    assert listed[officer].name == "Pat Officer" and listed["handler-1"].roles == [
        Role.CALL_HANDLER
    ]

    assert (await set_active(pg_dsn, actor=boss, staff_id=officer, active=False)).active is False
    assert not {m.staff_id: m for m in await list_staff(pg_dsn, actor=boss)}[officer].active
    await set_active(pg_dsn, actor=boss, staff_id=officer, active=True)

    assert await _audit(db_pool, boss, "staff-add") == [(True, f"{officer}: imu, officer")]
    assert await _audit(db_pool, boss, "staff-list") == [(True, None), (True, None)]
    assert await _audit(db_pool, boss, "staff-disable") == [(True, officer)]
    assert await _audit(db_pool, boss, "staff-enable") == [(True, officer)]


@pytest.mark.parametrize(
    ("actor", "complaint"),
    [
        ("handler-1", "needs the role supervisor; handler-1 has call_handler"),
        ("nobody-7781", "unknown staff id 'nobody-7781'"),
    ],
)
async def test_anyone_but_an_active_supervisor_is_refused_and_audited(
    pg_dsn, db_pool, actor, complaint
):
    target = _new_id()
    with pytest.raises(RejectedError, match=complaint):
        await add_staff(pg_dsn, actor=actor, staff_id=target, name="X", roles=["officer"])
    with pytest.raises(RejectedError, match=complaint):
        await list_staff(pg_dsn, actor=actor)
    with pytest.raises(RejectedError, match=complaint):
        await set_active(pg_dsn, actor=actor, staff_id="officer-1", active=False)
    assert await db_pool.fetchval("SELECT count(*) FROM staff WHERE staff_id = $1", target) == 0
    assert await db_pool.fetchval("SELECT active FROM staff WHERE staff_id = 'officer-1'")
    for action in ("staff-add", "staff-list", "staff-disable"):
        refusals = await _audit(db_pool, actor, action)
        assert refusals and refusals[-1][0] is False and complaint in (refusals[-1][1] or "")


async def test_a_disabled_supervisor_is_refused(pg_dsn, db_pool):
    gone = _new_id("boss")
    await add_staff(pg_dsn, actor="supervisor-1", staff_id=gone, name="Gone", roles=["supervisor"])
    await set_active(pg_dsn, actor="supervisor-1", staff_id=gone, active=False)
    with pytest.raises(RejectedError, match="is disabled"):
        await list_staff(pg_dsn, actor=gone)
    assert await _audit(db_pool, gone, "staff-list") == [(False, f"staff {gone!r} is disabled")]


async def test_bad_input_is_refused_naming_the_option(pg_dsn):
    with pytest.raises(RejectedError, match="--role: one of control_room, call_handler"):
        await add_staff(pg_dsn, actor="supervisor-1", staff_id=_new_id(), name="X", roles=["chief"])
    with pytest.raises(RejectedError, match="--name"):
        await add_staff(
            pg_dsn, actor="supervisor-1", staff_id=_new_id(), name="a\x00b", roles=["officer"]
        )
    with pytest.raises(RejectedError, match="staff id"):
        await add_staff(
            pg_dsn,
            actor="supervisor-1",
            staff_id="x'; DROP TABLE staff;--",
            name="X",
            roles=["imu"],
        )
    with pytest.raises(RejectedError, match="already exists"):
        await add_staff(
            pg_dsn, actor="supervisor-1", staff_id="officer-1", name="Again", roles=["officer"]
        )


async def test_an_empty_roster_is_bootstrapped_by_a_supervisor_adding_themselves(postgres_server):
    dsn = await db.ensure_database(postgres_server.dsn(), f"whn_roster_{uuid.uuid4().hex[:8]}")
    await db.migrate(dsn)
    with pytest.raises(RejectedError, match="no active supervisor"):
        await add_staff(dsn, actor="intruder", staff_id="intruder", name="I", roles=["officer"])
    with pytest.raises(RejectedError, match="no active supervisor"):
        await add_staff(dsn, actor="someone", staff_id="boss", name="B", roles=["supervisor"])
    await add_staff(dsn, actor="boss", staff_id="boss", name="The Boss", roles=["supervisor"])
    # Now the normal rule applies: nobody adds themselves.
    with pytest.raises(RejectedError, match="unknown staff id"):
        await add_staff(dsn, actor="other", staff_id="other", name="O", roles=["supervisor"])
    # And the last active supervisor cannot lock everyone out.
    with pytest.raises(RejectedError, match="last active supervisor"):
        await set_active(dsn, actor="boss", staff_id="boss", active=False)


async def test_postgres_unreachable_is_unavailable():
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/whn"
    with pytest.raises(UnavailableError, match="PostgreSQL could not be reached"):
        await list_staff(dsn, actor="supervisor-1")


def _admin(pg_dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WHN_STAFF_ID"}
    env["WHN_DATABASE_URL"] = pg_dsn
    return subprocess.run(
        [str(WHN_ADMIN), "staff", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_staff_commands(pg_dsn):
    new = _new_id("cli")
    added = _admin(
        pg_dsn, "add", new, "--name", "Sam Handler", "--role", "call_handler", "--role",
        "control_room", "--as", "supervisor-1", "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["roles"] == ["call_handler", "control_room"]

    listed = _admin(pg_dsn, "list", "--json", "--as", "supervisor-1")
    assert listed.returncode == 0, listed.stderr
    assert new in {m["staff_id"] for m in json.loads(listed.stdout)["staff"]}

    disabled = _admin(pg_dsn, "disable", new, "--as", "supervisor-1")
    assert disabled.returncode == 0 and "disabled" in disabled.stdout

    for args, words in [
        (("list", "--as", "handler-1"), "needs the role supervisor"),
        (("list",), "--as"),
        (("add", _new_id(), "--name", "X", "--role", "chief", "--as", "supervisor-1"), "chief"),
        (("disable", "nobody-7781", "--as", "supervisor-1"), "unknown staff id"),
    ]:
        refused = _admin(pg_dsn, *args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert words in refused.stderr and "Traceback" not in refused.stderr
    down = _admin(f"postgresql://postgres@127.0.0.1:{free_port()}/whn", "list", "--as", "x")
    assert down.returncode == 1 and "PostgreSQL could not be reached" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1
