"""The contract of the case domain: stages, names and one model per workflow message.

Like an ``api.go``: the names here (stages, search attributes, workflow ids) are what
other systems rely on; the workflow, activities, starter and admin script all import them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.report import Report


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


# Which roles may take each staff action. Supervisors may act at every step.
ACTION_ROLES: dict[str, frozenset[str]] = {
    "ack-emergency": frozenset({"control_room", "supervisor"}),
    "redirect": frozenset({"call_handler", "supervisor"}),
    "request-details": frozenset({"call_handler", "supervisor"}),
    "record-crime": frozenset({"call_handler", "supervisor"}),
    "not-a-crime": frozenset({"call_handler", "supervisor"}),
    "imu-close": frozenset({"imu", "supervisor"}),
    "imu-investigate": frozenset({"imu", "supervisor"}),
    "allocate": frozenset({"supervisor"}),
    "acknowledge": frozenset({"officer", "supervisor"}),
    "record-step": frozenset({"officer", "imu", "supervisor"}),
    "close": frozenset({"officer", "supervisor"}),
}

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

InvestigationStep = Literal["witnesses", "scene", "cctv", "forensics", "intelligence"]
INVESTIGATION_STEPS: tuple[str, ...] = ("witnesses", "scene", "cctv", "forensics", "intelligence")
ImuCloseReason = Literal[
    "insufficient-evidence", "no-witnesses", "witnesses-unwilling", "victim-no-statement"
]

WORKFLOW_TYPE = "CaseWorkflow"
_RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def receipt_code_for(submission_id: str) -> str:
    """The receipt code of a submission: derived from it, so a resubmission gets the same one.

    50 bits of SHA-256 in Crockford base32, grouped for reading over the phone
    (``WHN-7K3M-Q9TD-X2``). It carries no personal data.
    """
    digest = int.from_bytes(hashlib.sha256(submission_id.encode()).digest()[:8], "big") >> 14
    chars = "".join(_RECEIPT_ALPHABET[(digest >> (5 * i)) & 31] for i in range(9, -1, -1))
    return f"WHN-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def case_workflow_id(receipt_code: str) -> str:
    """The one place workflow ids are built: ``case-`` and the receipt code."""
    return f"case-{receipt_code}"


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timings(Message):
    """Every wait and deadline of a case, fixed when the case starts (contract: Timings)."""

    review_deadline: timedelta = timedelta(hours=24)
    crn_deadline: timedelta = timedelta(hours=48)
    details_reminder: timedelta = timedelta(days=3)
    details_expiry: timedelta = timedelta(days=14)
    emergency_ack_deadline: timedelta = timedelta(minutes=5)
    ack_deadline: timedelta = timedelta(hours=24)
    update_interval: timedelta = timedelta(days=28)


class DetailsRequestState(BaseModel):
    number: int
    question: str
    asked_by: str
    asked_at: datetime
    reminded: bool = False
    answered_at: datetime | None = None
    lapsed: bool = False


class CaseState(BaseModel):
    """Everything a case knows, carried whole across continue-as-new."""

    stage: Stage = Stage.RECEIVED
    priority: Priority = Priority.SCHEDULED
    category: str
    enhanced_rights: bool = False
    enhanced_reasons: list[str] = Field(default_factory=list)
    district: str | None = None
    flags: list[str] = Field(default_factory=list)
    crime_reference: str | None = None
    investigation_reference: str | None = None
    outcome: int | None = None
    redirected_to: str | None = None
    team: str | None = None
    officer: str | None = None
    deadlines: list[Deadline] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    details: list[DetailsRequestState] = Field(default_factory=list)
    reply_digests: list[str] = Field(default_factory=list)
    emergency_indicators: list[str] = Field(default_factory=list)
    emergency_alerts: int = 0
    next_emergency_alert_at: datetime | None = None
    allocated_at: datetime | None = None
    next_update_at: datetime | None = None
    updates_sent: int = 0
    tasks: dict[str, str | None] = Field(default_factory=dict)
    assessment: dict[str, object] | None = None
    intelligence: dict[str, object] | None = None
    handoffs: int = 0
    handoff_pending: bool = False
    events: int = 0
    runs: int = 1


class CaseInput(Message):
    """Start input of a case workflow; ``state`` is set only when it continues as new."""

    report: Report
    receipt_code: str
    received_at: datetime | None = None  # None: when the workflow started
    timings: Timings = Field(default_factory=Timings)
    state: CaseState | None = None


# --- staff actions (updates) and the reporter's reply (signal) -------------------------


class StaffAction(Message):
    """Fields every staff action carries: who acts."""

    actor: str = Field(min_length=1, max_length=64)


class AckEmergency(StaffAction):
    pass


class Redirect(StaffAction):
    agency: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2_000)


class RequestDetails(StaffAction):
    question: str = Field(min_length=1, max_length=4_000)


class RecordCrime(StaffAction):
    category: str = Field(min_length=1, max_length=64)
    no_investigation: bool = False
    outcome: int | None = Field(default=None, ge=1, le=22)


class NotACrime(StaffAction):
    advice: str = Field(min_length=1, max_length=4_000)
    agencies: list[str] = Field(default_factory=list, max_length=20)


class ImuClose(StaffAction):
    reason: ImuCloseReason


class ImuInvestigate(StaffAction):
    pass


class Allocate(StaffAction):
    team: str = Field(min_length=1, max_length=64)


class Acknowledge(StaffAction):
    officer: str = Field(min_length=1, max_length=64)


class RecordStep(StaffAction):
    step: InvestigationStep
    note: str = Field(min_length=1, max_length=4_000)


class CloseCase(StaffAction):
    outcome: int = Field(ge=1, le=22)
    note: str = Field(min_length=1, max_length=4_000)


class DetailsReply(Message):
    """The reporter's answer to a details request, passed on by the intake system."""

    text: str = Field(min_length=1, max_length=10_000)


class ActionResult(Message):
    """What a staff action answers: where the case is now and what was issued."""

    receipt_code: str
    stage: Stage
    detail: str
    reference: str | None = None


# --- what a case looks like from outside ----------------------------------------------


class Deadline(BaseModel):
    """A promise with a due time: met when its action happened, missed when time ran out."""

    name: str
    due_at: datetime
    met_at: datetime | None = None
    missed: bool = False
    # When the promise was made (the compliance report's time to meet); None on
    # deadlines set before it was kept.
    opened_at: datetime | None = None

    @property
    def met(self) -> bool | None:
        """True when met in time, False when missed, None while pending."""
        if self.missed:
            return False
        return True if self.met_at is not None else None


class TimelineEntry(Message):
    at: datetime
    event: str
    actor: str


class CaseView(Message):
    """The answer of the ``view`` query: everything ``whn-admin show`` prints."""

    workflow_id: str
    receipt_code: str
    stage: Stage
    priority: Priority
    category: str
    crime_reference: str | None = None
    investigation_reference: str | None = None
    outcome: int | None = None
    redirected_to: str | None = None
    team: str | None = None
    officer: str | None = None
    flags: list[str] = Field(default_factory=list)
    overdue: bool = False
    enhanced_rights: bool = False
    deadlines: list[Deadline] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    tasks: dict[str, str | None] = Field(default_factory=dict)
    assessment: dict[str, object] | None = None
    intelligence: dict[str, object] | None = None
    victim_updates: int = 0
    runs: int = 1

    @property
    def closed(self) -> bool:
        return self.stage.is_closed


# CaseState and CaseInput name models defined after them. Resolve them now: left to
# pydantic, a model completed only through a TypeAdapter (how Temporal's converter reads
# a workflow's input) is rebuilt on every use, about 3 ms a time (bench/, this machine).
CaseState.model_rebuild()
CaseInput.model_rebuild()
