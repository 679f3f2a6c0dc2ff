"""After the crime is recorded: reopening, suspect events (Right 6), agreed updates.

Pure rules, no I/O and no Temporal: which closed stages a case is reopened from and to,
the Victims' Code 2021 Right 6 events a victim must be told of and by when, and the
bounds of an update frequency agreed with the victim. The letters' wording is in
``domain.letters``; the mechanism of a reopening is described in ``docs/reopening.md``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import TypeAdapter, ValidationError

from domain.calendar import add_working_days
from domain.case import Stage

__all__ = [
    "MAX_UPDATE_INTERVAL",
    "MIN_UPDATE_INTERVAL",
    "REOPEN_TO",
    "SuspectEvent",
    "describe_interval",
    "parse_update_interval",
    "reopen_target",
    "right6_days",
    "right6_due",
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
