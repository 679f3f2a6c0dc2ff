"""The contract of the case domain: stages, names and one model per workflow message.

Like an ``api.go``: the names here (stages, workflow ids, the case's state and view) are
what other systems rely on; the workflow, activities, starter and admin script all
import them. The vocabulary (``domain.terms``) and the staff actions with their rules
(``domain.actions``) live in modules of their own and are re-exported here.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from domain.actions import (
    AckEmergency,
    Acknowledge,
    ActionResult,
    ActionRule,
    Allocate,
    CloseCase,
    ImuClose,
    ImuInvestigate,
    NotACrime,
    RecordCrime,
    RecordStep,
    Redirect,
    Reopen,
    RequestDetails,
    StaffAction,
)
from domain.assessment import Assessment
from domain.intel import IntelSummary
from domain.report import Report
from domain.terms import (
    CLOSED_STAGES,
    INVESTIGATION_STEPS,
    TEAMS,
    ImuCloseReason,
    InvestigationStep,
    Message,
    Priority,
    Role,
    Stage,
)

__all__ = [
    "CLOSED_STAGES",
    "INVESTIGATION_STEPS",
    "TEAMS",
    "WORKFLOW_TYPE",
    "AckEmergency",
    "Acknowledge",
    "ActionResult",
    "ActionRule",
    "Allocate",
    "CaseInput",
    "CaseState",
    "CaseView",
    "CloseCase",
    "Deadline",
    "DetailsReply",
    "DetailsRequestState",
    "ImuClose",
    "ImuCloseReason",
    "ImuInvestigate",
    "InvestigationStep",
    "Message",
    "NotACrime",
    "OwedLetter",
    "Priority",
    "RecordCrime",
    "RecordStep",
    "Redirect",
    "Reopen",
    "RequestDetails",
    "Role",
    "StaffAction",
    "Stage",
    "TimelineEntry",
    "TimingFields",
    "Timings",
    "case_workflow_id",
    "receipt_code_for",
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


class TimingFields(BaseModel):
    """The waits and deadlines, declared once: ``Timings`` and ``whn.settings.Settings``."""

    review_deadline: timedelta = timedelta(hours=24)
    crn_deadline: timedelta = timedelta(hours=48)
    details_reminder: timedelta = timedelta(days=3)
    details_expiry: timedelta = timedelta(days=14)
    emergency_ack_deadline: timedelta = timedelta(minutes=5)
    ack_deadline: timedelta = timedelta(hours=24)
    update_interval: timedelta = timedelta(days=28)
    claim_timeout: timedelta = timedelta(hours=2)


class Timings(TimingFields):
    """Every wait and deadline of a case, fixed when the case starts (contract: Timings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    next_update_at: datetime | None = None
    updates_sent: int = 0
    tasks: dict[str, str | None] = Field(default_factory=dict)
    assessment: Assessment | None = None
    intelligence: IntelSummary | None = None
    handoffs: int = 0
    handoff_pending: bool = False
    events: int = 0
    runs: int = 1
    # After the crime is recorded (docs/reopening.md).
    reopenings: int = 0
    update_interval: timedelta | None = None  # agreed with the victim; None: the default
    vps_offered_at: datetime | None = None
    holder: str | None = None  # who holds the case (whn-admin claim), until claimed_until
    claimed_until: datetime | None = None
    claims: int = 0  # claims and reassignments so far (the Assignee attribute is in use)
    # Letters to a reporter without email, and how each reached them (workflows.owed).
    owed_letters: list[OwedLetter] = Field(default_factory=list)


class CaseInput(Message):
    """Start input of a case workflow; ``state`` is set only when it continues as new."""

    report: Report
    receipt_code: str
    received_at: datetime | None = None  # None: when the workflow started
    timings: Timings = Field(default_factory=Timings)
    state: CaseState | None = None
    reopen: Reopen | None = None  # set only on the run ``whn-admin reopen`` starts


# --- the reporter's reply (signal) ---------------------------------------------------


class DetailsReply(Message):
    """The reporter's answer to a details request, passed on by the intake system."""

    text: str = Field(min_length=1, max_length=10_000)


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
    superseded: bool = False  # still open when its case closed; not owed after a reopening

    @property
    def met(self) -> bool | None:
        """True when met in time, False when missed, None while pending."""
        if self.missed:
            return False
        return True if self.met_at is not None else None


class OwedLetter(BaseModel):
    """A letter to a reporter who has no email: owed until a person records how it
    reached them (posted, read out on the phone, handed over), which meets its deadline."""

    purpose: str
    letter: str
    meets: str | None = None  # the deadline it meets, met when it reaches the reporter
    due_at: datetime | None = None  # that deadline's due time (names recur: victim updates)
    owed_at: datetime
    ways: list[str] = Field(default_factory=list)  # what the report gives: post, phone
    delivered_at: datetime | None = None
    how: str | None = None  # post, phone, in-person
    by: str | None = None  # who recorded it ("intake": given as the report was taken)


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
    assessment: Assessment | None = None
    intelligence: IntelSummary | None = None
    victim_updates: int = 0
    runs: int = 1
    reopenings: int = 0
    update_interval: timedelta | None = None
    vps_offered_at: datetime | None = None
    # The whole state, in the result of a run that finished (what a reopening starts from).
    final_state: CaseState | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    owed_letters: list[OwedLetter] = Field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.stage.is_closed


# CaseState and CaseInput name models defined after them. Resolve them now: left to
# pydantic, a model completed only through a TypeAdapter (how Temporal's converter reads
# a workflow's input) is rebuilt on every use, about 3 ms a time (bench/, this machine).
CaseState.model_rebuild()
CaseInput.model_rebuild()
CaseView.model_rebuild()
