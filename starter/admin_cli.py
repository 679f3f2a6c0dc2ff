"""``whn-admin``: call handlers, the IMU, officers and supervisors act on cases and read them."""

from __future__ import annotations

from typing import Annotated, Any, get_args

import typer
from pydantic import ValidationError

from domain.actions import (
    AckEmergency,
    Acknowledge,
    ActionResult,
    Allocate,
    Claim,
    CloseCase,
    ImuClose,
    ImuInvestigate,
    NotACrime,
    Reassign,
    RecordCrime,
    RecordStep,
    Redirect,
    Release,
    Reopen,
    RequestDetails,
    StaffAction,
)
from domain.case import CaseView, ImuCloseReason, InvestigationStep, Stage
from domain.victims import (
    RecordSuspectEvent,
    SetUpdates,
    SuspectEvent,
    describe_interval,
    parse_update_interval,
)
from starter import admin, casework
from starter import reopen as reopening
from starter.cli import client_for, emit, main_of, run, settings_for
from starter.errors import RejectedError
from starter.intake_keys import intake_key_app
from starter.report import rebuild as rebuild_deadlines
from starter.report import report, summary_schedule
from starter.staff import staff_app
from whn.settings import Settings
from whn.temporal import keyring

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(staff_app, name="staff")
app.command("report")(report)
app.command("rebuild-deadlines")(rebuild_deadlines)
app.add_typer(intake_key_app, name="intake-key")
app.command("summary-schedule")(summary_schedule)

JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]
RefArg = Annotated[
    str, typer.Argument(help="receipt code, crime reference or investigation reference")
]
AsOpt = Annotated[
    str | None, typer.Option("--as", help="your staff id (or WHN_STAFF_ID)", show_default=False)
]


def _actor(actor: str | None) -> str:
    who = actor or settings_for("whn-admin").staff_id
    if not who:
        typer.echo("whn-admin: --as STAFF_ID (or WHN_STAFF_ID) is required", err=True)
        raise typer.Exit(2)
    return who


def _build(model: type[StaffAction], **fields: Any) -> StaffAction:
    try:
        return model(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise RejectedError(f"--{where.replace('_', '-')}: {message}") from None


def _act(ref: str, model: type[StaffAction], as_json: bool, **fields: Any) -> None:
    async def program(settings: Settings) -> ActionResult:
        action = _build(model, **fields)
        client = await client_for(settings)
        return await admin.act(client, ref, action, database_url=settings.database_url)

    _emit_result(run(program, prog="whn-admin"), as_json)


def _emit_result(result: ActionResult, as_json: bool) -> None:
    text = result.detail + (f" Reference: {result.reference}" if result.reference else "")
    emit(
        as_json,
        result.model_dump(mode="json"),
        f"{result.receipt_code} [{result.stage.value}] {text}",
    )


@app.command("list")
def list_(
    stage: Annotated[Stage | None, typer.Option("--stage", help="only cases in this stage")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only overdue cases")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Cases, open and closed, newest first."""

    async def program(settings: Settings) -> list[dict[str, Any]]:
        client = await client_for(settings)
        return await admin.list_cases(client, stage=stage, overdue=overdue, limit=limit)

    rows = run(program, prog="whn-admin")
    lines = [_LIST_HEADER] + [
        _list_line(
            r["receipt_code"] or "?",
            r["stage"] or "?",
            r["priority"] or "",
            r["category"] or "",
            r["crime_reference"] or "",
            "OVERDUE" if r["overdue"] else "",
        )
        for r in rows
    ]
    emit(as_json, {"cases": rows}, "\n".join(lines) if rows else "no cases")


def _list_line(*cells: str) -> str:
    widths = (18, 17, 8, 22, 13, 0)
    return " ".join(f"{cell:{width}}" for cell, width in zip(cells, widths, strict=True)).rstrip()


_LIST_HEADER = _list_line("RECEIPT CODE", "STAGE", "PRIORITY", "CATEGORY", "CRIME REF", "OVERDUE")


def _show_text(view: CaseView, ui: str) -> str:
    out = [
        f"Case {view.receipt_code}  [{view.stage.value}]  {view.priority.value}"
        + ("  OVERDUE" if view.overdue else ""),
        f"  category: {view.category}   enhanced rights: {'yes' if view.enhanced_rights else 'no'}",
    ]
    for label, value in (
        ("crime reference", view.crime_reference),
        ("investigation reference", view.investigation_reference),
        ("redirected to", view.redirected_to),
        ("team", view.team),
        ("officer", view.officer),
        ("outcome", view.outcome),
    ):
        if value is not None:
            out.append(f"  {label}: {value}")
    if view.flags:
        out.append("  flags: " + ", ".join(view.flags))
    if view.reopenings:
        out.append(f"  reopened: {view.reopenings} time(s)")
    if view.update_interval:
        out.append(f"  updates agreed: every {describe_interval(view.update_interval)}")
    if view.vps_offered_at:
        out.append(f"  Victim Personal Statement offered: {view.vps_offered_at:%Y-%m-%d %H:%M}")
    if view.claimed_by:
        until = f" until {view.claimed_until:%Y-%m-%d %H:%M} UTC" if view.claimed_until else ""
        out.append(f"  held by: {view.claimed_by}{until}")
    out.append("Deadlines:")
    for d in view.deadlines:
        state = {True: "met", False: "MISSED", None: "pending"}[d.met]
        if d.superseded:
            state = "superseded (closed, then reopened)"
        met = f" (done {d.met_at:%Y-%m-%d %H:%M:%S})" if d.met_at else ""
        out.append(f"  {d.name:28} due {d.due_at:%Y-%m-%d %H:%M:%S %Z}  {state}{met}")
    if view.tasks:
        out.append(
            "Tasks: " + ", ".join(f"{k}={'done' if v else 'open'}" for k, v in view.tasks.items())
        )
    if view.assessment:
        out.append(f"Assessment: {view.assessment.summary}")
    if view.intelligence:
        out.append(f"Intelligence: {view.intelligence.summary}")
    out.append("Timeline:")
    for e in view.timeline:
        out.append(f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.event:34} {e.actor}")
    out.append(f"UI: {ui}")
    return "\n".join(out)


def _report_text(file: dict[str, Any]) -> str:
    """The case file, as a call handler reads it (personal data: --report only)."""
    r = file["as_given"]
    reporter, incident = r["reporter"], r["incident"]
    place = incident["location"]
    out = [
        "Report (as given):",
        f"  channel: {r['channel']}   submission: {r['submission_id']}",
        f"  reporter: {reporter['name']} ({reporter['relationship']})"
        + ("  under 18" if reporter.get("under_18") else "")
        + ("  vulnerable" if reporter.get("vulnerable") else ""),
        f"  contact: email {reporter.get('email') or '-'}   phone {reporter.get('phone') or '-'}",
        "  victim support: "
        + ("consents" if reporter.get("consents_to_victim_support") else "does not consent"),
        f"  category: {incident['category']}",
        f"  when: {incident['occurred_from']} to {incident.get('occurred_to') or '?'}"
        + ("  (in progress)" if incident.get("in_progress") else ""),
        f"  where: {place['address']}, {place['postcode']}",
        f"  account: {incident['description']}",
    ]
    suspect = incident.get("suspect") or {}
    if any(suspect.get(k) for k in ("named", "name", "description", "vehicle_registration")):
        out.append(
            "  suspect: "
            + ", ".join(
                f"{k.replace('_', ' ')} {suspect[k]}"
                for k in ("name", "description", "vehicle_registration")
                if suspect.get(k)
            )
        )
    evidence = incident.get("evidence") or {}
    if evidence:
        out.append(
            "  evidence: "
            + (", ".join(k.replace("_", " ") for k, v in evidence.items() if v) or "none")
        )
    out.append(f"  witnesses: {incident.get('witnesses', 0)}")
    out.append("Details requests:" if file["details"] else "Details requests: none")
    for d in file["details"]:
        out.append(f"  {d['number']}. {d['question']}  (asked by {d['asked_by']} {d['asked_at']})")
        for reply in d["replies"] or [{"at": "", "text": "(no reply yet)"}]:
            out.append(f"     reply {reply['at']}: {reply['text']}")
    out.append("Notes:" if file["notes"] else "Notes: none")
    for n in file["notes"]:
        what = {
            "step_note": f"step {n['step']}",
            "closing_note": "closing note",
            "reporter_information": "added by the reporter",
        }.get(n["kind"], n["kind"].replace("_", " "))
        out.append(f"  {n['at']}  {n['actor']} ({what}): {n['text']}")
    if file["intelligence"]:
        out.append(f"Intelligence: {file['intelligence'].get('summary', file['intelligence'])}")
    if file["assessment"]:
        out.append(f"Assessment: {file['assessment'].get('summary', file['assessment'])}")
    return "\n".join(out)


@app.command()
def show(
    ref: RefArg,
    report: Annotated[
        bool,
        typer.Option(
            "--report", help="also the report, replies and notes (personal data; audited)"
        ),
    ] = False,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stage, references, deadlines and timeline of a case (--report: the case file too)."""
    who = _actor(actor) if report else None

    async def program(settings: Settings) -> tuple[CaseView, str, dict[str, Any] | None]:
        client = await client_for(settings)
        view = await admin.show(client, ref, database_url=settings.database_url)
        ui = f"{settings.ui_url}/namespaces/{settings.temporal_namespace}/workflows/{view.workflow_id}"
        file = None
        if who is not None:
            file = await casework.case_file(
                settings.database_url,
                actor=who,
                workflow_id=view.workflow_id,
                keyring=keyring(settings),
            )
        return view, ui, file

    view, ui, file = run(program, prog="whn-admin")
    payload = view.model_dump(mode="json", exclude={"final_state"})
    payload["closed"] = view.closed
    payload["ui_url"] = ui
    payload["deadlines"] = [
        {
            "name": d.name,
            "due_at": d.due_at.isoformat(),
            "met": d.met,
            "met_at": d.met_at.isoformat() if d.met_at else None,
            "superseded": d.superseded,
        }
        for d in view.deadlines
    ]
    text = _show_text(view, ui)
    if file is not None:
        payload["report"] = file
        text += "\n" + _report_text(file)
    emit(as_json, payload, text)


@app.command("queue")
def queue_(
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="whose work: control_room, call_handler, imu, officer; supervisor: untouched"
            " cases (default: your roles)",
        ),
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="only this team's cases")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="only the cases you hold")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What waits for you now, most urgent first: priority, then the earliest deadline."""
    who = _actor(actor)

    async def program(settings: Settings) -> dict[str, Any]:
        return await casework.queue(
            settings.database_url,
            actor=who,
            role=role,
            team=team,
            mine=mine,
            review_deadline=settings.review_deadline,
            limit=limit,
        )

    result = run(program, prog="whn-admin")
    lines = [
        f"{c['receipt_code']:18} {c['priority']:8} {c['band']:9}"
        f" {(c['due_at'] or '-')[:16]:16} {c['stage']:16} {c['next_action']:30}"
        f" {c['age']:>7}  {c['claimed_by'] or '-'}"
        for c in result["cases"]
    ]
    head = f"{result['waiting']}{'+' if result['more'] else ''} waiting" + (
        f" (first {len(lines)})" if result["more"] or result["waiting"] > len(lines) else ""
    )
    emit(as_json, result, "\n".join([head, *lines]) if lines else "nothing waiting")


@app.command(AckEmergency.rule.name)
def ack_emergency(ref: RefArg, actor: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Control room: confirm an emergency escalation has been taken."""
    _act(ref, AckEmergency, as_json, actor=_actor(actor))


@app.command(Redirect.rule.name)
def redirect(
    ref: RefArg,
    agency: Annotated[str, typer.Option("--agency")],
    reason: Annotated[str, typer.Option("--reason")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send the report to another agency; the reporter is told."""
    _act(ref, Redirect, as_json, actor=_actor(actor), agency=agency, reason=reason)


@app.command(RequestDetails.rule.name)
def request_details(
    ref: RefArg,
    question: Annotated[str, typer.Option("--question")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Email the reporter a question; the case waits for `whn-intake details`."""
    _act(ref, RequestDetails, as_json, actor=_actor(actor), question=question)


@app.command(RecordCrime.rule.name)
def record_crime(
    ref: RefArg,
    category: Annotated[str, typer.Option("--category")],
    no_investigation: Annotated[bool, typer.Option("--no-investigation")] = False,
    outcome: Annotated[int | None, typer.Option("--outcome")] = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the crime: a crime reference number is issued and emailed."""
    _act(
        ref,
        RecordCrime,
        as_json,
        actor=_actor(actor),
        category=category,
        no_investigation=no_investigation,
        outcome=outcome,
    )


@app.command(NotACrime.rule.name)
def not_a_crime(
    ref: RefArg,
    advice: Annotated[str, typer.Option("--advice")],
    agency: Annotated[list[str] | None, typer.Option("--agency")] = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close as not a crime; the reporter is emailed the advice and agencies."""
    _act(ref, NotACrime, as_json, actor=_actor(actor), advice=advice, agencies=agency or [])


@app.command(ImuClose.rule.name)
def imu_close(
    ref: RefArg,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help=" | ".join(get_args(ImuCloseReason)),
        ),
    ],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """IMU: close the case with one of the four reasons; the victim is told."""
    _act(ref, ImuClose, as_json, actor=_actor(actor), reason=reason)


@app.command(ImuInvestigate.rule.name)
def imu_investigate(ref: RefArg, actor: AsOpt = None, as_json: JsonOpt = False) -> None:
    """IMU: open an investigation; a reference is issued and the case allocated."""
    _act(ref, ImuInvestigate, as_json, actor=_actor(actor))


@app.command(Allocate.rule.name)
def allocate(
    ref: RefArg,
    team: Annotated[str, typer.Option("--team")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Supervisor: move the case to another team."""
    _act(ref, Allocate, as_json, actor=_actor(actor), team=team)


@app.command(Acknowledge.rule.name)
def acknowledge(
    ref: RefArg,
    officer: Annotated[str, typer.Option("--officer")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The officer takes the case."""
    _act(ref, Acknowledge, as_json, actor=_actor(actor), officer=officer)


@app.command(RecordStep.rule.name)
def record_step(
    ref: RefArg,
    step: Annotated[str, typer.Option("--step", help=" | ".join(get_args(InvestigationStep)))],
    note: Annotated[str, typer.Option("--note")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record an investigation step as done."""
    _act(ref, RecordStep, as_json, actor=_actor(actor), step=step, note=note)


@app.command(CloseCase.rule.name)
def close(
    ref: RefArg,
    outcome: Annotated[int, typer.Option("--outcome")],
    note: Annotated[str, typer.Option("--note")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close the investigation with a Home Office outcome type (1-22); the victim is told."""
    _act(ref, CloseCase, as_json, actor=_actor(actor), outcome=outcome, note=note)


@app.command(Reopen.rule.name)
def reopen(
    ref: RefArg,
    reason: Annotated[str, typer.Option("--reason", help="the new information, for the record")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reopen a closed case on new information; the reporter is told."""

    async def program(settings: Settings) -> ActionResult:
        action = _build(Reopen, actor=_actor(actor), reason=reason)
        assert isinstance(action, Reopen)
        client = await client_for(settings)
        return await reopening.reopen(client, ref, action, database_url=settings.database_url)

    _emit_result(run(program, prog="whn-admin"), as_json)


@app.command(RecordSuspectEvent.rule.name)
def suspect_event(
    ref: RefArg,
    event: Annotated[str, typer.Option("--event", help=" | ".join(e.value for e in SuspectEvent))],
    note: Annotated[str | None, typer.Option("--note", help="for the victim's letter")] = None,
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Right 6: record a suspect event; the victim is told within 5 working days (1 enhanced)."""
    if event not in {e.value for e in SuspectEvent}:
        typer.echo(
            f"whn-admin: --event: {event!r} is not one of"
            f" {', '.join(e.value for e in SuspectEvent)}",
            err=True,
        )
        raise typer.Exit(2)
    _act(ref, RecordSuspectEvent, as_json, actor=_actor(actor), event=event, note=note)


@app.command(SetUpdates.rule.name)
def set_updates(
    ref: RefArg,
    every: Annotated[str, typer.Option("--every", help="ISO-8601 duration, P1D to P1Y")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The update frequency agreed with the victim, replacing the default for this case."""
    try:
        agreed = parse_update_interval(every)
    except ValueError as err:
        typer.echo(f"whn-admin: {err}", err=True)
        raise typer.Exit(2) from None
    _act(ref, SetUpdates, as_json, actor=_actor(actor), every=agreed)
@app.command()
def claim(ref: RefArg, actor: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Take the case: nobody else acts on it (a supervisor aside) until you release it or
    the claim lapses (WHN_CLAIM_TIMEOUT)."""
    _act(ref, Claim, as_json, actor=_actor(actor))


@app.command()
def release(ref: RefArg, actor: AsOpt = None, as_json: JsonOpt = False) -> None:
    """Give a case you hold back to its queue."""
    _act(ref, Release, as_json, actor=_actor(actor))


@app.command()
def reassign(
    ref: RefArg,
    to: Annotated[str, typer.Option("--to", help="the staff id who takes the case")],
    actor: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Supervisor: hand the case to someone else (active, with the role its stage needs)."""
    _act(ref, Reassign, as_json, actor=_actor(actor), to=to)


@app.command("setup-search-attributes")
def setup_search_attributes() -> None:
    """Register the case search attributes on the namespace (once per Temporal cluster)."""
    from whn.temporal import register_search_attributes

    async def program(settings: Settings) -> list[str]:
        client = await client_for(settings)
        return await register_search_attributes(client, settings.temporal_namespace)

    added = run(program, prog="whn-admin")
    typer.echo(f"registered: {', '.join(added)}" if added else "all search attributes present")


def main() -> None:
    main_of(app)


if __name__ == "__main__":
    main()
