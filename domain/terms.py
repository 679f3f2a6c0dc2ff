"""The contract's fixed vocabulary: stages, call grades, roles, teams, investigation steps.

The lowest layer of the domain: ``domain.actions`` and ``domain.case`` build on it, and
``domain.case`` re-exports it, so ``from domain.case import Stage`` keeps working.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Stage(StrEnum):
    RECEIVED = "received"
    SCREENING = "screening"
    EMERGENCY = "emergency"
    AWAITING_REVIEW = "awaiting_review"
    AWAITING_DETAILS = "awaiting_details"
    WITH_IMU = "with_imu"
    ALLOCATED = "allocated"
    INVESTIGATING = "investigating"
    REDIRECTED = "redirected"
    NOT_A_CRIME = "not_a_crime"
    CLOSED_BY_IMU = "closed_by_imu"
    CLOSED = "closed"

    @property
    def is_closed(self) -> bool:
        return self in CLOSED_STAGES


CLOSED_STAGES = frozenset({Stage.REDIRECTED, Stage.NOT_A_CRIME, Stage.CLOSED_BY_IMU, Stage.CLOSED})


class Priority(StrEnum):
    """National call grades (domain.md)."""

    EMERGENCY = "grade-1"
    PRIORITY = "grade-2"
    SCHEDULED = "grade-3"
    RESOLUTION = "grade-4"


class Role(StrEnum):
    CONTROL_ROOM = "control_room"
    CALL_HANDLER = "call_handler"
    IMU = "imu"
    OFFICER = "officer"
    SUPERVISOR = "supervisor"


TEAMS: tuple[str, ...] = (
    "rit",
    "domestic-abuse",
    "child-abuse",
    "cyber",
    "cid",
    "economic-crime",
    "lpt-cambridge",
    "lpt-south-cambs",
    "lpt-east-cambs",
    "lpt-fenland",
    "lpt-huntingdonshire",
    "lpt-peterborough",
)


def check_team(team: str) -> str:
    """``team`` if it is one of the contract's teams; ValueError naming them otherwise.

    The one team check: the ``allocate`` model, the routing table and the hand-off use it.
    """
    if team not in TEAMS:
        raise ValueError(f"unknown team {team!r}; teams: {', '.join(TEAMS)}")
    return team


# "vps": the Victim Personal Statement offered (Right 7); recorded, not an initial task.
InvestigationStep = Literal["witnesses", "scene", "cctv", "forensics", "intelligence", "vps"]
INVESTIGATION_STEPS: tuple[str, ...] = ("witnesses", "scene", "cctv", "forensics", "intelligence")
ImuCloseReason = Literal[
    "insufficient-evidence", "no-witnesses", "witnesses-unwilling", "victim-no-statement"
]


class Message(BaseModel):
    """A message between the case workflow and the world: strict and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
