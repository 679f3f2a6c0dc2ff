"""After the crime is recorded: reopening, suspect events (Right 6), agreed updates.

Pure rules, no I/O and no Temporal: which closed stages a case is reopened from and to,
the Victims' Code 2021 Right 6 events a victim must be told of and by when, and the
bounds of an update frequency agreed with the victim. The letters' wording is in
``domain.letters``; the mechanism of a reopening is described in ``docs/reopening.md``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from domain.actions import ActionRule, StaffAction
from domain.calendar import add_working_days
from domain.case import CaseState, CaseView
from domain.terms import Role, Stage

__all__ = [
    "MAX_UPDATE_INTERVAL",
    "MIN_UPDATE_INTERVAL",
    "REOPEN_TO",
    "RecordSuspectEvent",
    "SetUpdates",
    "SuspectEvent",
    "describe_interval",
    "parse_update_interval",
    "reopen_target",
    "right6_days",
    "right6_due",
    "state_from_view",
]


# --- reopening ------------------------------------------------------------------------

# Where a closed case goes when it is reopened on new information. A redirected case is
# not ours to reopen: the other agency has it.
REOPEN_TO: dict[Stage, Stage] = {
    Stage.NOT_A_CRIME: Stage.AWAITING_REVIEW,
    Stage.CLOSED_BY_IMU: Stage.WITH_IMU,
    Stage.CLOSED: Stage.WITH_IMU,
}


def reopen_target(stage: Stage) -> Stage:
    """The stage a case closed at ``stage`` reopens to.

    Raises:
        ValueError: The case is open (the message names its stage), or it was redirected.
    """
    if stage == Stage.REDIRECTED:
        raise ValueError(
            "reopen is not allowed while the case is redirected: another agency has it"
            " (reopen works from not_a_crime, closed_by_imu, closed)"
        )
    target = REOPEN_TO.get(stage)
    if target is None:
        raise ValueError(
            f"reopen is not allowed while the case is {stage.value}: it is open"
            " (reopen works from not_a_crime, closed_by_imu, closed)"
        )
    return target


def state_from_view(view: CaseView, carried: CaseState | None = None) -> CaseState:
    """The state of a case closed before its result carried one (``CaseView.final_state``).

    ``carried`` is the state its last run started with, if it continued as new; the
    view's fields win over it. The counters that keep later writes unique are derived
    from the timeline, which every run carries whole: one entry per recorded event (plus
    the receipt) and one ``stage:allocated`` per hand-off.
    """
    base = carried.model_dump() if carried is not None else {}
    timeline = list(view.timeline)
    return CaseState.model_validate(
        {
            **base,
            "stage": view.stage,
            "priority": view.priority,
            "category": view.category,
            "enhanced_rights": view.enhanced_rights,
            "crime_reference": view.crime_reference,
            "investigation_reference": view.investigation_reference,
            "outcome": view.outcome,
            "redirected_to": view.redirected_to,
            "team": view.team,
            "officer": view.officer,
            "flags": list(view.flags),
            "deadlines": [d.model_dump() for d in view.deadlines],
            "timeline": timeline,
            "tasks": dict(view.tasks),
            "assessment": view.assessment,
            "intelligence": view.intelligence,
            "updates_sent": view.victim_updates,
            "runs": view.runs,
            "events": sum(1 for e in timeline if e.event != "received"),
            "handoffs": sum(1 for e in timeline if e.event == "stage:allocated"),
            "reopenings": view.reopenings,
        }
    )


# --- Right 6: suspect events ----------------------------------------------------------


class SuspectEvent(StrEnum):
    """What happened to a suspect that the victim must be told of (Victims' Code Right 6)."""

    ARRESTED = "arrested"
    INTERVIEWED = "interviewed"
    CHARGED = "charged"
    RELEASED_NFA = "released-nfa"
    BAILED = "bailed"
    RELEASED_UNDER_INVESTIGATION = "released-under-investigation"
    BAIL_CHANGED = "bail-changed"

    @property
    def letter(self) -> str:
        """The letter (``domain.letters.LETTERS`` key) that tells the victim."""
        return "suspect_" + self.value.replace("-", "_")


def right6_days(*, enhanced_rights: bool) -> int:
    """Working days the force has to tell the victim: 1 for enhanced rights, else 5."""
    return 1 if enhanced_rights else 5


def right6_due(at: datetime, *, enhanced_rights: bool) -> datetime:
    """When the victim must have been told of a suspect event that happened ``at``.

    Working days over England-and-Wales bank holidays, by ``domain.calendar``'s rule.
    """
    return add_working_days(at, right6_days(enhanced_rights=enhanced_rights))


# --- agreed updates -------------------------------------------------------------------

MIN_UPDATE_INTERVAL = timedelta(days=1)
MAX_UPDATE_INTERVAL = timedelta(days=365)
_DURATION = TypeAdapter(timedelta)


def parse_update_interval(text: str) -> timedelta:
    """An update frequency agreed with the victim, as an ISO-8601 duration (``P14D``).

    Raises:
        ValueError: Not an ISO-8601 duration, under a day or over a year; the message
            names the ``--every`` option.
    """
    value = text.strip().upper()
    if not value.startswith("P"):
        raise ValueError(f"--every: {text!r} is not an ISO-8601 duration such as P14D or P1M")
    try:
        every = _DURATION.validate_python(value)
    except ValidationError:
        raise ValueError(
            f"--every: {text!r} is not an ISO-8601 duration such as P14D or P1M"
        ) from None
    if every < MIN_UPDATE_INTERVAL:
        raise ValueError(f"--every: {text} is under a day; agree at least P1D")
    if every > MAX_UPDATE_INTERVAL:
        raise ValueError(f"--every: {text} is over a year; agree at most P1Y")
    return every


def describe_interval(every: timedelta) -> str:
    """An update frequency in plain words: ``week``, ``2 weeks``, ``10 days``, ``36 hours``."""
    hours = int(every.total_seconds() // 3600)
    if hours % 24:
        return f"{hours} hours"
    days = hours // 24
    if days == 1:
        return "day"
    if days == 7:
        return "week"
    if days % 7 == 0:
        return f"{days // 7} weeks"
    return f"{days} days"


# --- the staff actions ----------------------------------------------------------------


class RecordSuspectEvent(StaffAction):
    """``whn-admin suspect-event``: something happened to a suspect; the victim is told."""

    rule = ActionRule("suspect-event", roles={Role.OFFICER}, stages={Stage.INVESTIGATING})

    event: SuspectEvent
    note: str | None = Field(default=None, min_length=1, max_length=4_000)


class SetUpdates(StaffAction):
    """``whn-admin set-updates``: the update frequency agreed with the victim."""

    rule = ActionRule(
        "set-updates", roles={Role.OFFICER}, stages={Stage.ALLOCATED, Stage.INVESTIGATING}
    )

    every: timedelta

    @field_validator("every")
    @classmethod
    def _agreed(cls, every: timedelta) -> timedelta:
        if every < MIN_UPDATE_INTERVAL:
            raise ValueError("under a day; agree at least P1D")
        if every > MAX_UPDATE_INTERVAL:
            raise ValueError("over a year; agree at most P1Y")
        return every
