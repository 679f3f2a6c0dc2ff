"""What the reporter's page says (``/track``): the case in plain words, from the case store.

Pure: given what the case store holds about a case (:class:`CaseFacts`), the sentence
for its stage, a reporter-safe timeline and what happens next and by when. The timeline
is an allow-list: an event the reporter may see has a sentence here, and nothing else
is shown (no staff ids, no internal notes, nothing about a suspect). Words at a reading
age of about nine, as the GOV.UK style guide asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain.case import Stage
from domain.victims import describe_interval, right6_days

LONDON = ZoneInfo("Europe/London")

CLOSED_STAGES = frozenset({Stage.REDIRECTED, Stage.NOT_A_CRIME, Stage.CLOSED_BY_IMU, Stage.CLOSED})
# Closed cases a member of staff can reopen on new information (whn-admin reopen).
REOPENABLE = frozenset({Stage.NOT_A_CRIME, Stage.CLOSED_BY_IMU, Stage.CLOSED})

TEAM_NAMES: dict[str, str] = {
    "rit": "the Rape Investigation Team",
    "domestic-abuse": "the Domestic Abuse Investigation Team",
    "child-abuse": "the Child Abuse Investigation Team",
    "cyber": "the Cyber Crime Team",
    "cid": "the Criminal Investigation Department (CID)",
    "economic-crime": "the Economic Crime Team",
    "lpt-cambridge": "the Cambridge local policing team",
    "lpt-south-cambs": "the South Cambridgeshire local policing team",
    "lpt-east-cambs": "the East Cambridgeshire local policing team",
    "lpt-fenland": "the Fenland local policing team",
    "lpt-huntingdonshire": "the Huntingdonshire local policing team",
    "lpt-peterborough": "the Peterborough local policing team",
}

# Stages as the progress steps the page lists: the reporter sees where the case is on
# the way, not a slug.
STEPS = ("Report received", "Review", "Investigation", "Finished")


@dataclass(frozen=True)
class Event:
    """One row of the case's event log (case_events)."""

    at: datetime
    event: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseFacts:
    """What the case store holds about a case that the page may use."""

    receipt_code: str
    stage: Stage
    received_at: datetime
    crime_reference: str | None = None
    investigation_reference: str | None = None
    team: str | None = None
    officer_name: str | None = None
    redirected_to: str | None = None
    enhanced_rights: bool = False
    closed_at: datetime | None = None
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class PageTimings:
    """The promises of the process the page states (the case's Timings, from settings)."""

    review_deadline: timedelta = timedelta(hours=24)
    crn_deadline: timedelta = timedelta(hours=48)
    details_expiry: timedelta = timedelta(days=14)
    update_interval: timedelta = timedelta(days=28)


@dataclass(frozen=True)
class OpenRequest:
    """A details request waiting for the reporter's answer."""

    number: int
    asked_at: datetime
    lapses_at: datetime


@dataclass(frozen=True)
class Line:
    at: datetime
    text: str


def when(at: datetime) -> str:
    """``Tuesday 1 December 2026 at 3:05pm`` in UK time."""
    local = at.astimezone(LONDON)
    hour = local.strftime("%I").lstrip("0") or "12"
    return f"{local:%A} {local.day} {local:%B %Y} at {hour}:{local:%M}{local:%p}".replace(
        "AM", "am"
    ).replace("PM", "pm")


def day(at: datetime) -> str:
    """``1 December 2026`` in UK time."""
    local = at.astimezone(LONDON)
    return f"{local.day} {local:%B %Y}"


def team_name(team: str | None) -> str | None:
    if team is None:
        return None
    return TEAM_NAMES.get(team, "a local policing team")


def is_closed(facts: CaseFacts) -> bool:
    return facts.stage in CLOSED_STAGES


def step_index(stage: Stage) -> int:
    """Which of STEPS the case has reached (0-based)."""
    if stage in (Stage.RECEIVED, Stage.SCREENING, Stage.EMERGENCY):
        return 0
    if stage in (Stage.AWAITING_REVIEW, Stage.AWAITING_DETAILS):
        return 1
    if stage in (Stage.WITH_IMU, Stage.ALLOCATED, Stage.INVESTIGATING):
        return 2
    return 3


def headline(facts: CaseFacts) -> str:
    """One short heading for where the case is."""
    return {
        Stage.RECEIVED: "We have your report",
        Stage.SCREENING: "We have your report",
        Stage.EMERGENCY: "Your report is being dealt with urgently",
        Stage.AWAITING_REVIEW: "We are looking at your report",
        Stage.AWAITING_DETAILS: "We need more information from you",
        Stage.WITH_IMU: "Your report has been recorded as a crime",
        Stage.ALLOCATED: "Your case has been passed to a team",
        Stage.INVESTIGATING: "An officer is looking into your case",
        Stage.REDIRECTED: "Your report has been passed on",
        Stage.NOT_A_CRIME: "We have finished looking at your report",
        Stage.CLOSED_BY_IMU: "Your case is closed",
        Stage.CLOSED: "Your case is closed",
    }[facts.stage]


def stage_sentence(facts: CaseFacts) -> str:
    """Where the report is, in one or two sentences."""
    team = team_name(facts.team)
    match facts.stage:
        case Stage.RECEIVED | Stage.SCREENING:
            return "We have received your report and are checking it."
        case Stage.EMERGENCY:
            return (
                "Your report has been passed to our control room because it may need"
                " officers straight away."
            )
        case Stage.AWAITING_REVIEW:
            return (
                "Someone in our crime recording team will read your report and decide"
                " whether to record it as a crime."
            )
        case Stage.AWAITING_DETAILS:
            return (
                "We need more information from you before we can decide what to do."
                " Please answer our question below."
            )
        case Stage.WITH_IMU:
            return (
                "Your report has been recorded as a crime. Our team that decides which"
                " crimes to investigate is now looking at it."
            )
        case Stage.ALLOCATED:
            return f"Your case has been given to {team} to investigate."
        case Stage.INVESTIGATING:
            who = (
                f"{facts.officer_name} from {team}"
                if facts.officer_name
                else f"An officer from {team}"
            )
            return f"{who} is investigating your case."
        case Stage.REDIRECTED:
            where = facts.redirected_to or "another organisation"
            return (
                f"Your report has been passed to {where}, who deal with this kind of"
                " matter. They will contact you."
            )
        case Stage.NOT_A_CRIME:
            return (
                "We have read your report and decided that it is not a crime we can"
                " record. We have emailed you advice about what you can do next."
            )
        case Stage.CLOSED_BY_IMU:
            return (
                "Your report is recorded as a crime, but we cannot investigate it further"
                " at the moment. We have emailed you to explain why."
            )
        case Stage.CLOSED:
            return (
                "The investigation has finished and your case is closed. We have emailed"
                " you the result."
            )
    raise AssertionError(facts.stage)  # pragma: no cover - every stage is listed


_REQUESTED = re.compile(r"details requested \((\d+)\)")

# Events the reporter may see, in words. A stage change by its stage; anything missing
# here is not shown (staff steps, assessments, intelligence, hand-off failures, claims).
_STAGE_LINES: dict[str, str] = {
    Stage.EMERGENCY.value: "Your report was passed to our control room as urgent.",
    Stage.AWAITING_DETAILS.value: "We asked you for more information.",
    Stage.WITH_IMU.value: "Your report was recorded as a crime.",
    Stage.ALLOCATED.value: "Your case was given to a team to investigate.",
    Stage.INVESTIGATING.value: "An officer started investigating your case.",
    Stage.REDIRECTED.value: "Your report was passed to another organisation.",
    Stage.NOT_A_CRIME.value: "We decided your report is not a crime we can record.",
    Stage.CLOSED_BY_IMU.value: "Your case was closed without a further investigation.",
    Stage.CLOSED.value: "The investigation finished and your case was closed.",
}
_EVENT_LINES: dict[str, str] = {
    "received": "We received your report.",
    "details_received": "We received your answer.",
    "details_reminder_sent": "We sent you a reminder about our question.",
    "victim_updated": "We sent you an update.",
    "reporter_information": "You sent us more information.",
    "reopen_requested": "You asked us to look at your case again.",
    "reopened": "Your case was opened again.",
}


def timeline(facts: CaseFacts) -> list[Line]:
    """What has happened so far, oldest first, in words the reporter may see."""
    lines: list[Line] = []
    reopened = False
    for e in facts.events:
        if e.event.startswith("stage:"):
            stage = e.event.removeprefix("stage:")
            summary = str(e.detail.get("summary", ""))
            if stage == Stage.AWAITING_REVIEW.value and "lapsed" in summary:
                text = "We did not hear back from you in time, so we carried on with what we had."
            elif reopened and stage in (Stage.AWAITING_REVIEW.value, Stage.WITH_IMU.value):
                text = "We started looking at your case again."
            else:
                text = _STAGE_LINES.get(stage, "")
            reopened = False
        else:
            text = _EVENT_LINES.get(e.event, "")
            reopened = reopened or e.event == "reopened"
        if text and not (lines and lines[-1].text == text and lines[-1].at == e.at):
            lines.append(Line(e.at, text))
    return lines


def open_request(facts: CaseFacts, timings: PageTimings) -> OpenRequest | None:
    """The details request the reporter can answer now, or None."""
    if facts.stage != Stage.AWAITING_DETAILS:
        return None
    for e in reversed(facts.events):
        if e.event == f"stage:{Stage.AWAITING_DETAILS.value}":
            found = _REQUESTED.search(str(e.detail.get("summary", "")))
            number = int(found.group(1)) if found else 1
            return OpenRequest(number, e.at, e.at + timings.details_expiry)
    return None


def update_interval(facts: CaseFacts, timings: PageTimings) -> timedelta:
    """How often the reporter is updated: the interval agreed with them, if any
    (``whn-admin set-updates``, recorded as ``updates_agreed``), else the default."""
    for e in reversed(facts.events):
        if e.event == "updates_agreed" and isinstance(e.detail.get("every"), int | float):
            return timedelta(seconds=float(e.detail["every"]))
    return timings.update_interval


def next_steps(facts: CaseFacts, timings: PageTimings, *, now: datetime) -> list[str]:
    """What happens next and by when: the promises the process makes at this stage."""
    received = facts.received_at
    crn_by = received + timings.crn_deadline
    match facts.stage:
        case Stage.RECEIVED | Stage.SCREENING | Stage.EMERGENCY | Stage.AWAITING_REVIEW:
            steps = [
                f"We will decide whether to record your report as a crime by {when(received + timings.review_deadline)}.",
            ]
            if crn_by > now:
                steps.append(
                    f"By {when(crn_by)} we will email you a crime reference number,"
                    " or explain why we have not recorded a crime."
                )
            return steps
        case Stage.AWAITING_DETAILS:
            request = open_request(facts, timings)
            lapses = when(request.lapses_at) if request else "the date in our email"
            return [
                f"Please answer our question by {lapses}.",
                "When we have your answer, we will carry on looking at your report.",
                "If we do not hear from you by then, we will decide with the information we have.",
            ]
        case Stage.WITH_IMU:
            return [
                "We will decide whether to investigate and email you when we have.",
                "If we investigate, we will give you an investigation reference number.",
            ]
        case Stage.ALLOCATED | Stage.INVESTIGATING:
            every = describe_interval(update_interval(facts, timings))
            days = right6_days(enhanced_rights=facts.enhanced_rights)
            unit = "working day" if days == 1 else "working days"
            return [
                f"We will give you an update at least every {every}.",
                f"If someone is arrested, charged, released or bailed, we will tell you within {days} {unit}.",
            ]
        case Stage.REDIRECTED:
            return ["We will not take any more action on this report ourselves."]
        case _:
            return [
                "If you have new information about what happened, you can send it below."
                " We will read it and decide whether to look at your case again."
            ]
