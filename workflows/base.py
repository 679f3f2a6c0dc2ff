"""What every part of the case workflow shares: its state, its records, its emails.

``CaseBase`` holds the case's state and the small operations every step uses: record
an event (idempotent by key), change stage (and the search attributes and the UI's
current details with it), send a letter through the outbox, keep deadlines. The steps
live in ``workflows.review`` (Steps 1-2) and ``workflows.investigation`` (Steps 3-4);
``workflows.case`` puts them together with ``run()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.mail import Mailer
    from activities.store import CaseStore
    from domain.case import (
        ActionResult,
        CaseInput,
        CaseState,
        Deadline,
        DetailsReply,
        DetailsRequestState,
        StaffAction,
        Stage,
        TimelineEntry,
    )
    from domain.effects import (
        Audience,
        Authorise,
        CaseChange,
        Notified,
        Notify,
    )
    from workflows import attributes as sa

# workflow.patched ids: one per change to workflow code made while cases are open.
PATCH_LETTERS_AFTER_DECISION = "letters-after-decision"
PATCH_DEADLINE_MET_RECORDED = "deadline-met-recorded"

# Short database writes run as local activities: one round trip fewer per step. They
# retry until PostgreSQL is back; a case never gives up on its own records.
DB_TIMEOUT = timedelta(seconds=10)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
# A team's system may be down for a while: back off, give up after about an hour, and
# never retry a refusal the team's system meant (unknown team, 4xx).
HANDOFF_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=10,
    non_retryable_error_types=["UnknownTeam", "TeamSystemRefused"],
)
HISTORY_LIMIT = 2_000
RECEIPT_GRACE = timedelta(
    minutes=5
)  # events; continue as new past this (or when Temporal suggests it)

# Deadlines the reporter, not the force, has to meet: missing them is not "overdue".
_REPORTER_OWES = ("details_reply",)

_CHANGE_WINDOW = {
    "ack-emergency": frozenset({Stage.EMERGENCY}),
    "redirect": frozenset({Stage.EMERGENCY, Stage.AWAITING_REVIEW, Stage.AWAITING_DETAILS}),
    "request-details": frozenset({Stage.AWAITING_REVIEW, Stage.AWAITING_DETAILS}),
    "record-crime": frozenset({Stage.AWAITING_REVIEW, Stage.AWAITING_DETAILS}),
    "not-a-crime": frozenset({Stage.AWAITING_REVIEW, Stage.AWAITING_DETAILS}),
    "imu-close": frozenset({Stage.WITH_IMU}),
    "imu-investigate": frozenset({Stage.WITH_IMU}),
    "allocate": frozenset({Stage.ALLOCATED, Stage.INVESTIGATING}),
    "acknowledge": frozenset({Stage.ALLOCATED}),
    "record-step": frozenset({Stage.ALLOCATED, Stage.INVESTIGATING}),
    "close": frozenset({Stage.INVESTIGATING}),
}


IMU_REASON_TEXT = {
    "insufficient-evidence": "there is not enough evidence to pursue the investigation",
    "no-witnesses": "there are no witnesses",
    "witnesses-unwilling": "witnesses and parties involved are not willing to come forward",
    "victim-no-statement": "you have told us you do not wish to give a statement",
}

_TEAM_NAMES = {
    "rit": "the Rape Investigation Team",
    "domestic-abuse": "the Domestic Abuse Investigation and Safeguarding Unit",
    "child-abuse": "the Child Abuse Investigation Unit",
    "cyber": "the Cyber Crime Unit",
    "cid": "CID",
    "economic-crime": "the Economic Crime Unit",
}


def team_name(team: str) -> str:
    if team.startswith("lpt-"):
        return "the " + team.removeprefix("lpt-").replace("-", " ").title() + " local policing team"
    return _TEAM_NAMES.get(team, team)


def _wrong_stage(action: str, stage: Stage) -> ApplicationError:
    allowed = ", ".join(sorted(_CHANGE_WINDOW[action]))
    return ApplicationError(
        f"{action} is not allowed while the case is {stage.value} (allowed in: {allowed})",
        type="WrongStage",
        non_retryable=True,
    )


class CaseBase:
    """State and shared operations of a case (see the module docstring)."""

    _inp: CaseInput
    _id: str
    _received_at: datetime
    s: CaseState
    _lock: asyncio.Lock
    _inbox: list[DetailsReply]
    _changes: int
    _letters: list[asyncio.Task[None]]

    async def _escalate(self, what: str, key: str) -> None:
        """Tell the supervisor once per key and escalation count."""
        n = sum(1 for e in self.s.timeline if e.event == "escalated")
        await self._notify(
            f"escalation-{key}-{n + 1}",
            "supervisor",
            "supervisor_escalation",
            extra={"what": what, "due_at": workflow.now().isoformat()},
        )
        await self._record("escalated", "system", {"what": what})

    def _open_request(self) -> DetailsRequestState | None:
        if self.s.stage != Stage.AWAITING_DETAILS or not self.s.details:
            return None
        last = self.s.details[-1]
        return None if last.answered_at or last.lapsed else last

    def _check(self, action: str) -> None:
        """Validator: refuse an action the stage does not allow, before it reaches history."""
        if self.s.stage not in _CHANGE_WINDOW[action]:
            raise _wrong_stage(action, self.s.stage)

    def _acting(self, action: str, who: StaffAction) -> _Acting:
        return _Acting(self, action, who)

    def _result(self, detail: str, *, reference: str | None = None) -> ActionResult:
        return ActionResult(
            receipt_code=self._inp.receipt_code,
            stage=self.s.stage,
            detail=detail,
            reference=reference,
        )

    def _personal_context(self) -> dict[str, Any]:
        report = self._inp.report
        return {
            "reporter_name": report.reporter.name,
            "reporter_email": report.reporter.email or "no email given",
            "reporter_phone": report.reporter.phone or "no phone given",
            "description": report.incident.description,
        }

    def _close_open_request(self) -> None:
        request = self._open_request()
        if request is not None:
            request.lapsed = True
            self._meet(f"details_reply_{request.number}")

    def _deadline(self, name: str, due_at: datetime) -> None:
        self.s.deadlines.append(Deadline(name=name, due_at=due_at, opened_at=workflow.now()))

    def _meet(self, name: str, *, missed: bool = False) -> None:
        for deadline in self.s.deadlines:
            if deadline.name == name and deadline.met_at is None:
                if missed:
                    deadline.missed = True
                else:
                    deadline.met_at = workflow.now()
                    if deadline.due_at < deadline.met_at:
                        deadline.missed = True

    def _flag(self, flag: str) -> None:
        if flag not in self.s.flags:
            self.s.flags.append(flag)

    def _overdue(self) -> bool:
        """Staff owe the case something whose time has passed (the reporter's replies aside)."""
        return any(
            d.missed and d.met_at is None and not d.name.startswith(_REPORTER_OWES)
            for d in self.s.deadlines
        )

    def _letter(
        self,
        purpose: str,
        audience: Audience,
        letter: str,
        *,
        to: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Notify:
        """A letter with the case's context as it is now."""
        context: dict[str, Any] = {
            "receipt_code": self._inp.receipt_code,
            "crime_reference": self.s.crime_reference,
            "investigation_reference": self.s.investigation_reference,
            "category_name": self.s.category.replace("-", " "),
            "occurred": self._inp.report.incident.occurred_from.strftime("%d %B %Y %H:%M"),
            "address": self._inp.report.incident.location.address,
            "stage": self.s.stage.value,
            **(extra or {}),
        }
        return Notify(
            workflow_id=self._id,
            purpose=purpose,
            audience=audience,
            to=to,
            letter=letter,
            context=context,
        )

    async def _notify(
        self,
        purpose: str,
        audience: Audience,
        letter: str,
        *,
        to: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Notified:
        return await self._send(self._letter(purpose, audience, letter, to=to, extra=extra))

    async def _send(self, notify: Notify) -> Notified:
        return await workflow.execute_activity_method(
            Mailer.notify,
            notify,
            # Long enough for the outbox write after a send to outlast a database blip
            # (see Mailer.notify): a retry after a successful send would send it again.
            # No heartbeat timeout: tried (20 s, then 60 s), a loaded worker's live sends
            # were taken for dead and retried, each retry a possible second email. A
            # letter held up three minutes by a dead worker is the lesser harm.
            start_to_close_timeout=timedelta(minutes=3),
            retry_policy=MAIL_RETRY,
            summary=f"Email: {notify.purpose.replace('-', ' ')}",
        )

    async def _notify_after(
        self, notify: Notify, *, then: Callable[[Notified], None] | None = None
    ) -> None:
        """Send ``notify`` (a ``_letter``, written with the case as it is now) without
        holding up the staff action that ordered it.

        The action answers once its decision is recorded (the mail server's round trip
        and two workflow tasks less for the caller); the case sends the letter itself and
        neither finishes nor continues as new before it is (``letters_sent``). ``then``
        gets the result once it is sent (a deadline met by the letter is met when it
        goes). Retries are the same as ``_notify``'s. Cases that took such an action
        before this change replay with the letter awaited in place.
        """
        if not workflow.patched(PATCH_LETTERS_AFTER_DECISION):
            sent = await self._send(notify)
            if then is not None:
                then(sent)
            return
        self._letters.append(asyncio.create_task(self._send_later(notify, then)))

    async def _send_later(self, notify: Notify, then: Callable[[Notified], None] | None) -> None:
        try:
            sent = await self._send(notify)
        except ActivityError as err:
            # Only a refusal the mail activity marks final gets here (MAIL_RETRY never
            # gives up): keep it on the case's record rather than fail the case.
            workflow.logger.error("letter %s not sent: %s", notify.purpose, err.cause or err)
            await self._record("letter_failed", "system", {"purpose": notify.purpose})
        else:
            if then is not None:
                then(sent)
                if sent.sent and workflow.patched(PATCH_DEADLINE_MET_RECORDED):
                    # The deadline this letter meets, met now: on the record (and in the
                    # compliance projection) even when nothing else happens to the case.
                    await self._record("letter_sent", "system", {"purpose": notify.purpose})

    def _meet_if_sent(self, deadline: str) -> Callable[[Notified], None]:
        def meet(sent: Notified) -> None:
            if sent.sent:
                self._meet(deadline)

        return meet

    def letters_sent(self) -> bool:
        """No letter ordered by a staff action is still on its way."""
        return all(letter.done() for letter in self._letters)

    async def _record(
        self,
        event: str,
        actor: str,
        detail: dict[str, Any] | None = None,
        *,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """Append to the case's event log (idempotent by event key) and to its timeline."""
        self.s.events += 1
        now = workflow.now()
        self.s.timeline.append(TimelineEntry(at=now, event=event, actor=actor))
        self._changes += 1
        await workflow.execute_local_activity_method(
            CaseStore.record_change,
            CaseChange(
                workflow_id=self._id,
                event_key=f"{self.s.events:05d}.{event}",
                at=now,
                actor=actor,
                event=event,
                detail=detail or {},
                fields={**(fields or {}), "overdue": self._overdue(), "flags": list(self.s.flags)},
                deadlines=[d.model_copy() for d in self.s.deadlines],
            ),
            retry_policy=DB_RETRY,
            summary=f"Recorded: {event.replace('_', ' ')}",
            start_to_close_timeout=DB_TIMEOUT,
        )

    async def _set_stage(
        self, stage: Stage, actor: str, summary: str, *, fields: dict[str, Any] | None = None
    ) -> None:
        self.s.stage = stage
        workflow.set_current_details(self._details(summary))
        self._upsert_attributes()
        await self._record(
            f"stage:{stage.value}",
            actor,
            {"summary": summary},
            fields={
                "stage": stage.value,
                "priority": self.s.priority.value,
                "enhanced_rights": self.s.enhanced_rights,
                **(fields or {}),
            },
        )

    def _details(self, last: str) -> str:
        """The case at a glance, for the Temporal UI's "current details" (no personal data)."""
        s = self.s
        lines = [
            f"**{s.stage.value.replace('_', ' ').capitalize()}**: {last}",
            f"Receipt {self._inp.receipt_code} · {s.category} · {s.priority.value}",
        ]
        refs = [r for r in (s.crime_reference, s.investigation_reference) if r]
        if refs:
            lines.append("References: " + ", ".join(refs))
        if s.team:
            lines.append(f"Team: {s.team}" + (f" · officer {s.officer}" if s.officer else ""))
        pending = [d for d in s.deadlines if d.met_at is None]
        for d in pending:
            state = "OVERDUE since" if d.missed else "due"
            lines.append(f"- {d.name.replace('_', ' ')}: {state} {d.due_at:%Y-%m-%d %H:%M} UTC")
        if s.flags:
            lines.append("Flags: " + ", ".join(s.flags))
        return "\n".join(lines)

    def _upsert_attributes(self) -> None:
        s = self.s
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CASE_STAGE.value_set(s.stage.value),
            sa.RECEIPT_CODE.value_set(self._inp.receipt_code),
            sa.CRIME_CATEGORY.value_set(s.category),
            sa.PRIORITY.value_set(s.priority.value),
            sa.OVERDUE.value_set(self._overdue()),
            sa.ENHANCED_RIGHTS.value_set(s.enhanced_rights),
            sa.REPORTED_AT.value_set(self._received_at),
        ]
        if s.crime_reference:
            updates.append(sa.CRIME_REFERENCE.value_set(s.crime_reference))
        if s.investigation_reference:
            updates.append(sa.INVESTIGATION_REFERENCE.value_set(s.investigation_reference))
        if s.team:
            updates.append(sa.TEAM.value_set(s.team))
        workflow.upsert_search_attributes(updates)


class _Acting:
    """Runs one staff action: serialised, re-checked, authorised, then performed."""

    def __init__(self, case: CaseBase, action: str, who: StaffAction) -> None:
        self._case = case
        self._action = action
        self._who = who

    async def __aenter__(self) -> None:
        case = self._case
        await case._lock.acquire()
        try:
            # The validator ran before an earlier action may have moved the case on.
            case._check(self._action)
            await workflow.execute_local_activity_method(
                CaseStore.authorise,
                Authorise(workflow_id=case._id, actor=self._who.actor, action=self._action),
                retry_policy=DB_RETRY,
                summary=f"Authorised {self._action} for {self._who.actor}",
                start_to_close_timeout=DB_TIMEOUT,
            )
        except ActivityError as err:
            case._lock.release()
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "NotAuthorised":
                # Surface the roster's answer to the caller as the update's own failure.
                raise ApplicationError(
                    cause.message, type="NotAuthorised", non_retryable=True
                ) from None
            raise
        except BaseException:
            case._lock.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._case._changes += 1
        self._case._lock.release()
