"""Models of the side effects a case asks for: the inputs and results of its activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from domain.assessment import Assessment
from domain.case import Deadline
from domain.intel import IntelQuery
from domain.report import Report
from domain.screening import Screening
from domain.terms import Role

Audience = Literal["reporter", "control_room", "supervisor", "victim_support", "agency", "team"]
ReferenceKind = Literal["crime", "investigation"]


class Effect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unless_none(*names: str) -> Any:
    """A serializer leaving out the fields ``names`` while they are None: fields added
    since workers were last deployed, which a worker from before them (``extra="forbid"``)
    would refuse in a payload from a newer one during a rolling deploy."""

    def serialize(self: BaseModel, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in names:
            if getattr(self, name) is None:
                data.pop(name, None)
        return data

    return model_serializer(mode="wrap")(serialize)


class OpenCase(Effect):
    workflow_id: str
    receipt_code: str
    submission_id: str
    report: Report
    received_at: datetime
    stage: str
    priority: str
    category: str


class CaseColumns(Effect):
    """Columns of the ``cases`` row a change sets: only those given are written.

    A column given as ``None`` is written NULL (a new team's officer); one not given is
    left alone. Only the given ones cross the data converter (``model_fields_set``).
    """

    stage: str | None = None
    priority: str | None = None
    category: str | None = None
    crime_reference: str | None = None
    investigation_reference: str | None = None
    team: str | None = None
    officer: str | None = None
    outcome: int | None = None
    redirected_to: str | None = None
    overdue: bool | None = None
    enhanced_rights: bool | None = None
    flags: list[str] | None = None
    assessment: dict[str, Any] | None = None
    intelligence: dict[str, Any] | None = None
    closed_at: datetime | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {name: value for name, value in data.items() if name in self.model_fields_set}

    def given(self) -> dict[str, Any]:
        """The columns to write, by name."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class CaseChange(Effect):
    """One entry of the append-only event log, and the case columns it changes.

    ``event_key`` is unique per case, so a retried write records nothing twice.
    """

    workflow_id: str
    event_key: str
    at: datetime
    actor: str
    event: str
    detail: dict[str, Any] = Field(default_factory=dict)
    fields: CaseColumns = Field(default_factory=CaseColumns)
    # Personal text the event carries (a reply, a note): sealed into case_notes, never
    # written to the event log's detail.
    notes: list[CaseNote] = Field(default_factory=list)
    # The case's deadlines as they stand after the change, for the compliance projection
    # (activities.projection); None from a caller that does not know them.
    deadlines: list[Deadline] | None = None


NoteKind = Literal["details_question", "details_reply", "step_note", "closing_note"]


class CaseNote(Effect):
    """Something a person wrote on a case, kept sealed in the case store (whn/sealed.py)."""

    kind: NoteKind
    text: str
    request: int | None = None
    step: str | None = None


class IssueReference(Effect):
    workflow_id: str
    kind: ReferenceKind
    year: int


class Authorise(Effect):
    workflow_id: str
    actor: str
    action: str
    # The actor acts on a case this person holds: only a supervisor may.
    override_claim_of: str | None = None
    # The action's key (its run and update id, patch begin-in-commit): its audit row is
    # written once by it (``audit_log.action_key``), and a retry follows the answer
    # first written (a retried refusal writes no second row).
    key: str | None = None

    _serialize = _unless_none("key")


class StaffCheck(Effect):
    """Is ``staff_id`` an active member of staff with one of ``roles``? (reassign --to)"""

    workflow_id: str
    actor: str
    staff_id: str
    roles: list[str]


class StaffMember(Effect):
    """A member of staff on the roster: what ``authorise`` answers and ``whn-admin staff`` shows."""

    staff_id: str
    name: str
    roles: list[Role]
    active: bool = True


class Notify(Effect):
    """An email to write to the outbox and send, once per (case, purpose).

    ``letter`` names one of ``domain.letters.LETTERS``, which knows who it is for;
    ``context`` holds the facts it is written from (never its wording); ``to`` is the
    address when the letter's audience is a person or agency the case names (the
    reporter, a redirect's agency). ``audience`` is only read from letters ordered by
    older workflows, which named it themselves.
    """

    workflow_id: str
    purpose: str
    audience: Audience | None = None
    to: str | None = None
    letter: str
    context: dict[str, Any] = Field(default_factory=dict)
    # Step 1's receipt (patch receipt-opens-case): the case opened and its report
    # screened first, in the same local activity.
    open: OpenCase | None = None
    # A letter sent in place (patch letters-carry-commit): what the case kept before it,
    # written by the mail activity in one transaction once the letter is done, instead of
    # by a commit of its own after it.
    commit: Commit | None = None

    _serialize = _unless_none("open", "commit")


class Notified(Effect):
    message_id: str
    sent: bool
    sent_at: datetime | None = None
    recipient: str
    screening: Screening | None = None  # the report's screening, when ``Notify.open``

    _serialize = _unless_none("screening")


class OweLetter(Effect):
    """A letter to a reporter without email, kept (sealed) for a person to send."""

    workflow_id: str
    purpose: str
    letter: str
    meets: str | None = None
    due_at: datetime | None = None
    ways: list[str] = Field(default_factory=list)
    at: datetime


class LetterDelivered(Effect):
    """An owed letter reached the reporter (``how``), recorded by ``by``."""

    workflow_id: str
    purpose: str
    how: str
    by: str
    at: datetime


class Referral(Effect):
    workflow_id: str
    kind: str
    agency: str
    due_at: datetime | None = None


class ControlRoomAlert(Effect):
    workflow_id: str
    attempt: int
    indicators: list[str]


class WorkingDays(Effect):
    start: datetime
    days: int


class RouteRequest(Effect):
    category: str
    domestic_abuse: bool
    hate_crime: bool
    under_18: bool
    district: str | None


class ImuOutcomeRequest(Effect):
    reason: str
    suspect_identified: bool


class ImuOutcome(Effect):
    outcome: int
    name: str


class Handoff(Effect):
    """A case put on a team's work queue (and its webhook, if the team has one)."""

    workflow_id: str
    team: str
    attempt_key: str
    investigation_reference: str
    crime_reference: str | None
    category: str
    priority: str
    acknowledged_by: str | None = None  # an officer took it before the hand-off landed


class ScreenRequest(Effect):
    report: Report
    received_at: datetime


class TeamAcknowledged(Effect):
    """An officer took the case off the team's queue (its entry of hand-off
    ``attempt_key``): written with the commit of the action that says so."""

    attempt_key: str
    officer: str


class Commit(Effect):
    """What a case has changed since its last commit, written in one transaction
    (``CaseStore.commit``): its events in order, and the referrals and control-room
    alerts that went with them. Each part is idempotent (event key, kind, attempt), so
    a retried commit writes nothing twice."""

    workflow_id: str
    changes: list[CaseChange] = Field(default_factory=list)
    referrals: list[Referral] = Field(default_factory=list)
    alerts: list[ControlRoomAlert] = Field(default_factory=list)
    # Staff actions allowed by ``CaseStore.begin`` that left their audit row to this
    # commit (``Begun.audited`` false): written with what the action changed.
    audits: list[Authorise] = Field(default_factory=list)
    # The team queue's entries taken (patch acknowledged-in-commit).
    acknowledged: list[TeamAcknowledged] = Field(default_factory=list)


class Decide(Effect):
    """A staff action decided before it was authorised (patch begin-in-commit), in one
    local activity (``CaseStore.decide``): the actor authorised against the roster, and
    only if allowed, ``commit`` written with the allowed audit row, in one transaction;
    a refusal's audit row commits alone."""

    authorise: Authorise
    commit: Commit


class SearchRecord(Effect):
    """The intelligence search that records its own outcome (patch search-records): the
    search run, then in one transaction ``commit`` (what the case kept before it, never
    with notes) and ``change`` (the case's ``step:intelligence`` event, its number taken
    by the workflow), whose ``detail.summary`` and ``intelligence`` column the activity
    fills in from the answer. Idempotent by the event's key: an attempt that finds the
    event written answers with the outcome it recorded, not a search of its own."""

    query: IntelQuery
    change: CaseChange
    commit: Commit | None = None


class Begin(Effect):
    """A staff action's first local activity (PATCH_ONE_TRANSACTION): the actor
    authorised against the roster (audited either way) and, only if allowed, what the
    action needs before it decides: its reference issued, the rules it asks evaluated."""

    authorise: Authorise
    reference: IssueReference | None = None
    route: RouteRequest | None = None
    imu_outcome: ImuOutcomeRequest | None = None
    outcome: int | None = None  # a Home Office outcome type to name
    working_days: WorkingDays | None = None  # a Right 6 (or Right 4 referral) due date
    # The IMU's decision support for a crime recorded to go to the IMU (patch
    # begin-prepares): worked out with the authorisation, not by a local activity after.
    assess: Report | None = None
    # An allowed actor's audit row may be left to the action's commit (one transaction
    # per action); a refusal is always audited at once.
    audit_with_commit: bool = False


class Begun(Effect):
    """What ``CaseStore.begin`` answers: who acts, and what the action asked for."""

    staff: StaffMember
    # False: the actor was allowed and the audit row is the commit's to write
    # (``Begin.audit_with_commit``); results recorded before it existed audited here.
    audited: bool = True
    reference: str | None = None
    team: str | None = None
    imu_outcome: ImuOutcome | None = None
    outcome_name: str | None = None
    due: datetime | None = None
    assessment: Assessment | None = None  # patch begin-prepares

    _serialize = _unless_none("assessment")


CaseChange.model_rebuild()
Commit.model_rebuild()
Notify.model_rebuild()
Decide.model_rebuild()
Begin.model_rebuild()
Begun.model_rebuild()
