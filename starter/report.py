"""``whn-admin report`` and ``whn-admin rebuild-deadlines``: the promises report, for a supervisor.

Both read PostgreSQL only (the compliance projection, ``activities.projection``), so they
work while Temporal is down. Each run is a staff action: the person named by ``--as``
must be an active supervisor, and the attempt is audited either way.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import asyncpg
import typer
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.compliance import FORCE_TIMEZONE, compliance_report
from activities.projection import project_deadlines, rebuild_deadlines
from domain.case import Role
from domain.compliance import SPLITS, ComplianceReport, SplitBy, SummaryInput
from starter.cli import client_for, run
from starter.errors import RejectedError, UnavailableError
from starter.report_render import render_csv, render_html
from starter.store import authorise, case_store
from whn.settings import Settings, get_settings
from workflows.case import CaseWorkflow
from workflows.summary import SUMMARY_WORKFLOW_ID, SupervisorSummaryWorkflow

_SUPERVISOR = {Role.SUPERVISOR}


async def make_report(
    settings: Settings,
    *,
    actor: str,
    date_from: date,
    date_to: date,
    team: str | None = None,
    splits: tuple[SplitBy, ...] = (),
    as_of: datetime | None = None,
) -> ComplianceReport:
    """The report, for ``actor`` (a supervisor), from the database in ``settings``."""
    if date_to < date_from:
        raise RejectedError("--to: must not be before --from")
    async with case_store(settings.database_url) as pool:
        try:
            await authorise(pool, actor, "report", _SUPERVISOR)
            return await compliance_report(
                pool, date_from=date_from, date_to=date_to, team=team, splits=splits, as_of=as_of
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
            # A database gone mid-report, or one without the projection (migration 005).
            raise UnavailableError(
                f"PostgreSQL: {type(err).__name__}: {err}".splitlines()[0]
            ) from None


def _actor(actor: str | None) -> str:
    who = actor or get_settings().staff_id
    if not who:
        typer.echo("whn-admin: --as STAFF_ID (or WHN_STAFF_ID) is required", err=True)
        raise typer.Exit(2)
    return who


def _summary(report: ComplianceReport) -> str:
    lines = [
        f"Promises for the {report.cases} case(s) received {report.from_} to {report.to}"
        + (f", team {report.team}" if report.team else "")
        + f" (as of {report.as_of:%Y-%m-%d %H:%M} UTC)",
        f"{'promise':30} {'due':>6} {'on time':>8} {'late':>6} {'missed':>7} {'open':>6} {'rate':>7}",
    ]
    for p in report.promises:
        rate = f"{p.on_time_rate:.1%}" if p.on_time_rate is not None else "-"
        lines.append(
            f"{p.name:30} {p.due:6} {p.met_on_time:8} {p.met_late:6} {p.missed:7} {p.open:6} {rate:>7}"
        )
    return "\n".join(lines)


def report(
    date_from: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first day of receipt")
    ],
    date_to: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="last day of receipt")
    ],
    team: Annotated[str | None, typer.Option("--team", help="only this team's cases")] = None,
    by: Annotated[
        list[str] | None,
        typer.Option("--by", help="split by team, category or enhanced-rights (repeatable)"),
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            formats=[
                "%Y-%m-%dT%H:%M:%S.%f%z",
                "%Y-%m-%dT%H:%M:%S%z",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d",
            ],
            help="open deadlines past this time count as missed (default now)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="write one row per promise and split")
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="write a page with charts")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--as", help="your staff id (or WHN_STAFF_ID)")
    ] = None,
) -> None:
    """How the force kept its promises over the cases received in the period (supervisor)."""
    splits: list[SplitBy] = []
    for item in by or []:
        key = item.replace("-", "_")
        if key not in SPLITS:
            typer.echo(
                f"whn-admin: --by: one of team, category, enhanced-rights (got {item!r})", err=True
            )
            raise typer.Exit(2)
        splits.append(key)  # type: ignore[arg-type]
    who = _actor(actor)
    result = run(
        lambda settings: make_report(
            settings,
            actor=who,
            date_from=date_from.date(),
            date_to=date_to.date(),
            team=team,
            splits=tuple(splits),
            as_of=as_of.astimezone() if as_of else None,
        ),
        prog="whn-admin",
    )
    if csv_file is not None:
        csv_file.write_text(render_csv(result), encoding="utf-8")
    if html_file is not None:
        html_file.write_text(render_html(result), encoding="utf-8")
    if as_json:
        sys.stdout.write(json.dumps(result.model_dump(mode="json", by_alias=True)) + "\n")
    else:
        typer.echo(_summary(result))


async def backfill_from_temporal(
    client: Client, pool: asyncpg.Pool, *, concurrency: int = 8
) -> tuple[int, int]:
    """Ask each case the store holds no deadlines for (recorded before the projection
    existed) for them, by its ``view`` query, and project them; returns (found, gone):
    a case whose history Temporal no longer keeps cannot be asked."""
    ids = [
        r["workflow_id"]
        for r in await pool.fetch("SELECT workflow_id FROM cases WHERE deadlines IS NULL")
    ]
    limit = asyncio.Semaphore(concurrency)
    gone = 0

    async def one(workflow_id: str) -> None:
        nonlocal gone
        async with limit:
            handle = client.get_workflow_handle_for(CaseWorkflow.run, workflow_id)
            try:
                view = await handle.query(CaseWorkflow.view)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                gone += 1
                return
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT 1 FROM cases WHERE workflow_id = $1 FOR UPDATE", workflow_id
                )
                # Event 0: a change the workflow records meanwhile is newer, and wins.
                await project_deadlines(conn, workflow_id, view.deadlines, event=0)

    await asyncio.gather(*(one(i) for i in ids))
    return len(ids) - gone, gone


def rebuild(
    from_temporal: Annotated[
        bool,
        typer.Option(
            "--from-temporal",
            help="first ask Temporal for the deadlines of cases the store has none for",
        ),
    ] = False,
    actor: Annotated[
        str | None, typer.Option("--as", help="your staff id (or WHN_STAFF_ID)")
    ] = None,
) -> None:
    """Rebuild the compliance projection from the case store (supervisor)."""
    who = _actor(actor)

    async def program(settings: Settings) -> tuple[int, int, int]:
        async with case_store(settings.database_url) as pool:
            await authorise(pool, who, "rebuild-deadlines", _SUPERVISOR)
            found = gone = 0
            if from_temporal:
                found, gone = await backfill_from_temporal(await client_for(settings), pool)
            return await rebuild_deadlines(pool), found, gone

    rows, found, gone = run(program, prog="whn-admin")
    if from_temporal:
        typer.echo(f"from Temporal: {found} case(s); {gone} no longer in Temporal")
    typer.echo(f"rebuilt: {rows} deadline row(s)")


SUMMARY_SCHEDULE_ID = "whn-supervisor-summary"


async def schedule_summary(
    client: Client, *, task_queue: str, hour: int = 7, minute: int = 0
) -> str:
    """Create (or move) the Schedule that sends the supervisor's morning email daily."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            SupervisorSummaryWorkflow.run,
            SummaryInput(),
            id=SUMMARY_WORKFLOW_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)])
            ],
            time_zone_name=FORCE_TIMEZONE,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(SUMMARY_SCHEDULE_ID, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(SUMMARY_SCHEDULE_ID)
        await handle.update(lambda _: ScheduleUpdate(schedule=schedule))
        return "updated"


def summary_schedule(
    at: Annotated[
        str, typer.Option("--at", help="HH:MM in the force's time (Europe/London)")
    ] = "07:00",
    actor: Annotated[
        str | None, typer.Option("--as", help="your staff id (or WHN_STAFF_ID)")
    ] = None,
) -> None:
    """Send the supervisor a summary every morning (a Temporal Schedule; supervisor)."""
    try:
        hour, minute = (int(x) for x in at.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError:
        typer.echo(f"whn-admin: --at: HH:MM, 00:00 to 23:59 (got {at!r})", err=True)
        raise typer.Exit(2) from None
    who = _actor(actor)

    async def program(settings: Settings) -> str:
        async with case_store(settings.database_url) as pool:
            await authorise(pool, who, "summary-schedule", _SUPERVISOR)
        client = await client_for(settings)
        return await schedule_summary(
            client, task_queue=settings.task_queue, hour=hour, minute=minute
        )

    done = run(program, prog="whn-admin")
    typer.echo(f"{done}: schedule {SUMMARY_SCHEDULE_ID}, every day at {at} {FORCE_TIMEZONE}")
