"""``whn-admin``: call handlers, the IMU, officers and supervisors act on cases and read them."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
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
    LetterSent,
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
from starter.cli import AsOpt, JsonOpt, client_for, emit, main_of, run, staff_actor
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

RefArg = Annotated[
    str, typer.Argument(help="receipt code, crime reference or investigation reference")
]


def _build(model: type[StaffAction], **fields: Any) -> StaffAction:
    try:
        return model(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise RejectedError(f"--{where.replace('_', '-')}: {message}") from None


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
    if view.owed_letters:
        out.append("Letters to the reporter (no email):")
        for o in view.owed_letters:
            if o.delivered_at is None:
                state = "OWED: send by " + (" or ".join(o.ways) or "in person")
            else:
                state = f"{o.how} {o.delivered_at:%Y-%m-%d %H:%M:%S} by {o.by}"
            meets = f" (meets {o.meets})" if o.meets else ""
            out.append(f"  {o.purpose:28} {state}{meets}")
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
        f"  postal address: {reporter.get('postal_address') or '-'}",
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
    for owed in file.get("letters", []):
        state = (
            f"{owed['delivered_how']} {owed['delivered_at']} by {owed['delivered_by']}"
            if owed["delivered_at"]
            else "OWED: send by " + (" or ".join(owed["ways"]) or "in person")
        )
        out.append(f"Letter {owed['purpose']} ({state}):")
        out.extend(f"  | {line}" for line in owed["text"].splitlines())
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
    who = staff_actor(actor) if report else None

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
    who = staff_actor(actor)

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
    letters = [
        f"{c['receipt_code']:18} {'letter':8} {c['band']:9}"
        f" {(c['due_at'] or '-')[:16]:16} {c['letter']:16} send by {' or '.join(c['ways']) or 'hand'}"
        f"  (letter-sent --letter {c['purpose']})"
        for c in result.get("letters", [])
    ]
    lines = [
        f"{c['receipt_code']:18} {c['priority']:8} {c['band']:9}"
        f" {(c['due_at'] or '-')[:16]:16} {c['stage']:16} {c['next_action']:30}"
        f" {c['age']:>7}  {c['claimed_by'] or '-'}"
        for c in result["cases"]
    ]
    head = f"{result['waiting']}{'+' if result['more'] else ''} waiting" + (
        f" (first {len(lines)})" if result["more"] or result["waiting"] > len(lines) else ""
    )
    text = "\n".join([head, *lines]) if lines else "nothing waiting"
    if letters:
        text += f"\n{len(letters)} letter(s) to send to reporters without email\n" + "\n".join(letters)
    emit(as_json, result, text)


# --- the staff actions: one command each, from its model --------------------------------

_REQUIRED = inspect.Parameter.empty


def _option(
    flag: str, kind: Any = str, default: Any = _REQUIRED, help: str | None = None
) -> inspect.Parameter:
    """A command's option: ``--no-investigation`` is its parameter ``no_investigation``."""
    return inspect.Parameter(
        flag.removeprefix("--").replace("-", "_"),
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[kind, typer.Option(flag, help=help)],
    )


def _parameter(name: str, annotation: Any, default: Any = _REQUIRED) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


_REF, _AS, _JSON = (
    _parameter("ref", RefArg),
    _parameter("actor", AsOpt, None),
    _parameter("as_json", JsonOpt, False),
)


def _action(
    model: type[StaffAction],
    summary: str,
    *options: inspect.Parameter,
    fields: Callable[..., dict[str, Any]] | None = None,
    perform: Callable[..., Awaitable[ActionResult]] = admin.act,
) -> None:
    """Add ``model``'s command: ``whn-admin NAME REF [OPTIONS] [--as ID] [--json]``.

    NAME is the model's rule name. The options are the model's fields (``fields`` maps
    them where they differ, raising RejectedError for a value it cannot take); the
    command builds the model, ``perform`` sends it (``admin.act``: the case's update)
    and the case's answer is printed.
    """

    def command(ref: str, actor: str | None, as_json: bool, **given: Any) -> None:
        async def program(settings: Settings) -> ActionResult:
            values = fields(**given) if fields is not None else given
            action = _build(model, actor=staff_actor(actor), **values)
            client = await client_for(settings)
            return await perform(client, ref, action, database_url=settings.database_url)

        _emit_result(run(program, prog="whn-admin"), as_json)

    command.__name__ = command.__qualname__ = model.rule.update_name
    command.__doc__ = summary
    command.__signature__ = inspect.Signature([_REF, *options, _AS, _JSON])  # type: ignore[attr-defined]
    app.command(model.rule.name)(command)


def _not_a_crime(advice: str, agency: list[str] | None) -> dict[str, Any]:
    return {"advice": advice, "agencies": agency or []}


def _suspect_event(event: str, note: str | None) -> dict[str, Any]:
    if event not in {e.value for e in SuspectEvent}:
        raise RejectedError(
            f"--event: {event!r} is not one of {', '.join(e.value for e in SuspectEvent)}"
        )
    return {"event": event, "note": note}


def _set_updates(every: str) -> dict[str, Any]:
    try:
        return {"every": parse_update_interval(every)}
    except ValueError as err:
        raise RejectedError(str(err)) from None


_action(AckEmergency, "Control room: confirm an emergency escalation has been taken.")
_action(
    Redirect,
    "Send the report to another agency; the reporter is told.",
    _option("--agency"),
    _option("--reason"),
)
_action(
    RequestDetails,
    "Email the reporter a question; the case waits for `whn-intake details`.",
    _option("--question"),
)
_action(
    RecordCrime,
    "Record the crime: a crime reference number is issued and emailed.",
    _option("--category"),
    _option("--no-investigation", bool, False),
    _option("--outcome", int | None, None),
)
_action(
    NotACrime,
    "Close as not a crime; the reporter is emailed the advice and agencies.",
    _option("--advice"),
    _option("--agency", list[str] | None, None),
    fields=_not_a_crime,
)
_action(
    ImuClose,
    "IMU: close the case with one of the four reasons; the victim is told.",
    _option("--reason", help=" | ".join(get_args(ImuCloseReason))),
)
_action(ImuInvestigate, "IMU: open an investigation; a reference is issued and the case allocated.")
_action(Allocate, "Supervisor: move the case to another team.", _option("--team"))
_action(Acknowledge, "The officer takes the case.", _option("--officer"))
_action(
    RecordStep,
    "Record an investigation step as done.",
    _option("--step", help=" | ".join(get_args(InvestigationStep))),
    _option("--note"),
)
_action(
    CloseCase,
    "Close the investigation with a Home Office outcome type (1-22); the victim is told.",
    _option("--outcome", int),
    _option("--note"),
)
_action(
    Reopen,
    "Reopen a closed case on new information; the reporter is told.",
    _option("--reason", help="the new information, for the record"),
    perform=reopening.reopen,
)
_action(
    RecordSuspectEvent,
    "Right 6: record a suspect event; the victim is told within 5 working days (1 enhanced).",
    _option("--event", help=" | ".join(e.value for e in SuspectEvent)),
    _option("--note", str | None, None, help="for the victim's letter"),
    fields=_suspect_event,
)
_action(
    SetUpdates,
    "The update frequency agreed with the victim, replacing the default for this case.",
    _option("--every", help="ISO-8601 duration, P1D to P1Y"),
    fields=_set_updates,
)
_action(
    Claim,
    "Take the case: nobody else acts on it (a supervisor aside) until you release it or\n"
    "the claim lapses (WHN_CLAIM_TIMEOUT).",
)
_action(Release, "Give a case you hold back to its queue.")
_action(
    Reassign,
    "Supervisor: hand the case to someone else (active, with the role its stage needs).",
    _option("--to", help="the staff id who takes the case"),
)
_action(
    LetterSent,
    "A letter owed to a reporter without email reached them: meets its deadline now.",
    _option("--how", help="post | phone | in-person"),
    _option("--letter", str | None, None, help="the owed letter (queue names it; default: first)"),
)


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
