"""The case workflow: one per report, from receipt to an explicit, recorded end.

``run()`` reads like the four steps of the force's #WhatHappensNext email. Staff act
through updates (validated against the stage before anything reaches history, then
authorised against the roster by an activity); the reporter replies through a signal.
Every human wait has a timer and a stated default: see ``_on_time``.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.handoff import TeamHandoff
    from activities.intel import IntelligenceSearch
    from activities.mail import Mailer
    from activities.rules import (
        assess_report,
        imu_outcome,
        name_outcome,
        route_case,
        screen_report,
        working_days_after,
    )
    from activities.store import CaseStore
    from domain.assessment import Assessment
    from domain.case import (
        INVESTIGATION_STEPS,
        TEAMS,
        AckEmergency,
        Acknowledge,
        ActionResult,
        Allocate,
        CaseInput,
        CaseState,
        CaseView,
        CloseCase,
        Deadline,
        DetailsReply,
        DetailsRequestState,
        ImuClose,
        ImuInvestigate,
        NotACrime,
        Priority,
        RecordCrime,
        RecordStep,
        Redirect,
        RequestDetails,
        StaffAction,
        Stage,
        TimelineEntry,
    )
    from domain.effects import (
        Audience,
        Authorise,
        CaseChange,
        ControlRoomAlert,
        Handoff,
        ImuOutcomeRequest,
        IssueReference,
        Notified,
        Notify,
        OpenCase,
        Referral,
        RouteRequest,
        ScreenRequest,
        WorkingDays,
    )
    from domain.intel import IntelQuery, IntelSummary
    from domain.screening import Screening
    from workflows import attributes as sa

# Short database writes run as local activities: one round trip fewer per step. They
# retry until PostgreSQL is back; a case never gives up on its own records.
_DB_TIMEOUT = timedelta(seconds=10)
_DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
_MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
# A team's system may be down for a while: back off, give up after about an hour, and
# never retry a refusal the team's system meant (unknown team, 4xx).
_HANDOFF_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=10,
    non_retryable_error_types=["UnknownTeam", "TeamSystemRefused"],
)
_HISTORY_LIMIT = 2_000
_RECEIPT_GRACE = timedelta(
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


_IMU_REASON_TEXT = {
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


def _team_name(team: str) -> str:
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


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow:
    """A crime report's case, walked through the force's process."""

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        self._inp = inp
        self._id = workflow.info().workflow_id
        self._received_at = inp.received_at or workflow.info().start_time
        self.s = inp.state or CaseState(category=inp.report.incident.category)
        self._lock = asyncio.Lock()
        self._inbox: list[DetailsReply] = []
        self._changes = 0

    # --- the four steps ---------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseView:
        if inp.state is None:
            await self._step1_receipt_and_screening()
        while not self.s.stage.is_closed:
            await self._wait_for_change_or_time()
            await self._process_inbox()
            await self._stage_work()
            await self._on_time()
            if self._history_too_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self.s.runs += 1
                workflow.continue_as_new(
                    CaseInput(
                        report=inp.report,
                        receipt_code=inp.receipt_code,
                        received_at=self._received_at,
                        timings=inp.timings,
                        state=self.s,
                    )
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.set_current_details(f"Closed: {self.s.stage.value}")
        return self.view()

    async def _step1_receipt_and_screening(self) -> None:
        inp = self._inp
        report = inp.report
        # "Immediately": a few minutes' grace for the mail server, then it is a missed promise.
        self._deadline("receipt", self._received_at + _RECEIPT_GRACE)
        self._deadline("crime_recording_decision", self._received_at + inp.timings.review_deadline)
        self._deadline("crn_or_explanation", self._received_at + inp.timings.crn_deadline)
        await workflow.execute_local_activity_method(
            CaseStore.open_case,
            OpenCase(
                workflow_id=self._id,
                receipt_code=inp.receipt_code,
                submission_id=report.submission_id,
                report=report,
                received_at=self._received_at,
                stage=Stage.RECEIVED.value,
                priority=self.s.priority.value,
                category=self.s.category,
            ),
            retry_policy=_DB_RETRY,
            summary="Case opened in the case store",
            start_to_close_timeout=_DB_TIMEOUT,
        )
        self.s.timeline.append(
            TimelineEntry(at=self._received_at, event="received", actor="intake")
        )
        self._upsert_attributes()
        sent = await self._notify("receipt", "reporter", "receipt", to=report.reporter.email)
        if sent.sent:
            self._meet("receipt")
        await self._set_stage(Stage.SCREENING, "system", "screening started")

        screening: Screening = await workflow.execute_local_activity(
            screen_report,
            ScreenRequest(report=report, received_at=self._received_at),
            retry_policy=_DB_RETRY,
            summary="Screened: triage and right agency",
            start_to_close_timeout=_DB_TIMEOUT,
        )
        t = screening.triage
        self.s.priority = t.priority
        self.s.enhanced_rights = t.enhanced_rights
        self.s.enhanced_reasons = list(t.enhanced_reasons)
        self.s.district = screening.agency.district
        if t.emergency:
            await self._escalate_emergency(list(t.indicators))
            return
        decision = screening.agency
        if decision.kind == "redirect" and decision.agency is not None:
            agency = decision.agency
            contact = "; ".join(
                x for x in (agency.contact_url, agency.contact_phone, agency.contact_email) if x
            )
            await self._redirect(
                actor="system",
                agency_name=agency.name,
                reason=decision.reason,
                contact=f"{contact}. {agency.how_to_report}".strip(),
                agency_email=agency.contact_email,
            )
            return
        if decision.kind == "manual_area_check":
            self._flag("manual_area_check")
        await self._set_stage(
            Stage.AWAITING_REVIEW,
            "system",
            "awaiting call-handler review"
            + (" (manual area check)" if decision.kind == "manual_area_check" else ""),
        )

    async def _escalate_emergency(self, indicators: list[str]) -> None:
        """Step 1, Grade 1: alert the control room and wait for it to confirm."""
        self.s.emergency_indicators = indicators
        self.s.priority = Priority.EMERGENCY
        await self._set_stage(Stage.EMERGENCY, "system", "emergency: " + ", ".join(indicators))
        self._deadline(
            "emergency_acknowledgement", workflow.now() + self._inp.timings.emergency_ack_deadline
        )
        await self._alert_control_room()

    async def _alert_control_room(self) -> None:
        self.s.emergency_alerts += 1
        attempt = self.s.emergency_alerts
        self.s.next_emergency_alert_at = workflow.now() + self._inp.timings.emergency_ack_deadline
        await workflow.execute_local_activity_method(
            CaseStore.raise_control_room_alert,
            ControlRoomAlert(
                workflow_id=self._id, attempt=attempt, indicators=self.s.emergency_indicators
            ),
            retry_policy=_DB_RETRY,
            summary=f"Control room alert {attempt} recorded",
            start_to_close_timeout=_DB_TIMEOUT,
        )
        await self._notify(
            f"control-room-alert-{attempt}",
            "control_room",
            "control_room_alert",
            extra={
                "attempt": attempt,
                "attempt_label": "" if attempt == 1 else f"(REPEAT {attempt})",
                "indicators": ", ".join(self.s.emergency_indicators),
            },
        )

    # --- the main wait -------------------------------------------------------------------

    def _next_time(self) -> tuple[datetime, str] | None:
        """The next moment something falls due, and what it is (for the UI's timer summary)."""
        times: list[tuple[datetime, str]] = [
            (d.due_at, f"Deadline: {d.name.replace('_', ' ')}")
            for d in self.s.deadlines
            if d.met_at is None and not d.missed
        ]
        if self.s.stage == Stage.EMERGENCY and self.s.next_emergency_alert_at:
            times.append((self.s.next_emergency_alert_at, "Re-alert the control room"))
        request = self._open_request()
        if request is not None:
            if not request.reminded:
                times.append(
                    (request.asked_at + self._inp.timings.details_reminder, "Remind the reporter")
                )
            times.append(
                (request.asked_at + self._inp.timings.details_expiry, "Details request lapses")
            )
        if self.s.stage == Stage.INVESTIGATING and self.s.next_update_at:
            times.append((self.s.next_update_at, "Victim update due"))
        return min(times) if times else None

    def _has_stage_work(self) -> bool:
        s = self.s
        return (
            (s.stage == Stage.WITH_IMU and s.assessment is None)
            or (s.handoff_pending and s.team is not None and not s.stage.is_closed)
            or (bool(s.tasks) and s.intelligence is None)
        )

    async def _wait_for_change_or_time(self) -> None:
        if self._has_stage_work() or self._inbox:
            return
        seen = self._changes

        def woken() -> bool:
            return self._changes != seen or bool(self._inbox) or self._has_stage_work()

        upcoming = self._next_time()
        if upcoming is None:
            await workflow.wait_condition(woken)
            return
        when, what = upcoming
        delay = when - workflow.now()
        if delay <= timedelta(0):
            return
        try:
            await workflow.wait_condition(
                woken,
                timeout=delay,
                timeout_summary=f"{what} at {when:%Y-%m-%d %H:%M} UTC",
            )
        except TimeoutError:
            pass

    async def _on_time(self) -> None:
        """Act on every timer that has come due; each has a stated default."""
        now = workflow.now()
        timings = self._inp.timings
        request = self._open_request()
        if request is not None:
            if not request.reminded and now >= request.asked_at + timings.details_reminder:
                request.reminded = True
                await self._notify(
                    f"details-reminder-{request.number}",
                    "reporter",
                    "details_reminder",
                    to=self._inp.report.reporter.email,
                    extra={
                        "question": request.question,
                        "expires_at": (request.asked_at + timings.details_expiry).isoformat(),
                    },
                )
                await self._record("details_reminder_sent", "system", {"request": request.number})
            if now >= request.asked_at + timings.details_expiry:
                # Default on silence: the request lapses and the case goes back to review.
                request.lapsed = True
                self._meet(f"details_reply_{request.number}", missed=True)
                self._flag("details_not_received")
                await self._set_stage(
                    Stage.AWAITING_REVIEW, "system", f"details request {request.number} lapsed"
                )
        if self.s.stage == Stage.EMERGENCY and self.s.next_emergency_alert_at:
            if now >= self.s.next_emergency_alert_at:
                # Default on silence: re-alert, escalate to a supervisor, keep waiting.
                await self._alert_control_room()
                await self._escalate(
                    "emergency escalation not acknowledged", "emergency_acknowledgement"
                )
        if self.s.stage == Stage.INVESTIGATING and self.s.next_update_at:
            if now >= self.s.next_update_at:
                await self._send_victim_update()
        for deadline in self.s.deadlines:
            if deadline.met_at is None and not deadline.missed and now >= deadline.due_at:
                deadline.missed = True
                if deadline.name != "emergency_acknowledgement":  # re-alerted above instead
                    await self._escalate(f"deadline missed: {deadline.name}", deadline.name)
                self._upsert_attributes()

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

    # --- the reporter's reply -------------------------------------------------------------

    @workflow.signal
    def details_reply(self, reply: DetailsReply) -> None:
        """The reporter's answer: kept, and handled by the main loop."""
        self._inbox.append(reply)

    async def _process_inbox(self) -> None:
        while self._inbox:
            reply = self._inbox.pop(0)
            digest = hashlib.sha256(" ".join(reply.text.split()).encode()).hexdigest()[:32]
            if digest in self.s.reply_digests:
                continue  # the same reply again: recorded once
            self.s.reply_digests.append(digest)
            request = self._open_request()
            await self._record(
                "details_received",
                "reporter",
                {"request": request.number if request else None, "length": len(reply.text)},
            )
            if request is not None:
                request.answered_at = workflow.now()
                self._meet(f"details_reply_{request.number}")
                if self.s.stage == Stage.AWAITING_DETAILS:
                    await self._set_stage(Stage.AWAITING_REVIEW, "reporter", "details received")

    def _open_request(self) -> DetailsRequestState | None:
        if self.s.stage != Stage.AWAITING_DETAILS or not self.s.details:
            return None
        last = self.s.details[-1]
        return None if last.answered_at or last.lapsed else last

    # --- Step 1 and 2 staff actions ------------------------------------------------------

    @workflow.update
    async def ack_emergency(self, action: AckEmergency) -> ActionResult:
        async with self._acting("ack-emergency", action):
            self._meet("emergency_acknowledgement")
            self.s.next_emergency_alert_at = None
            await self._set_stage(
                Stage.AWAITING_REVIEW, action.actor, "emergency acknowledged by control room"
            )
            return self._result("Emergency acknowledged; the case goes to review at high priority.")

    @ack_emergency.validator
    def _check_ack_emergency(self, action: AckEmergency) -> None:
        self._check("ack-emergency")

    @workflow.update
    async def redirect(self, action: Redirect) -> ActionResult:
        async with self._acting("redirect", action):
            await self._redirect(
                actor=action.actor,
                agency_name=action.agency,
                reason=action.reason,
                contact=f"Contact {action.agency} directly if you need to.",
                agency_email=None,
            )
            return self._result(f"Redirected to {action.agency}.")

    @redirect.validator
    def _check_redirect(self, action: Redirect) -> None:
        self._check("redirect")

    @workflow.update
    async def request_details(self, action: RequestDetails) -> ActionResult:
        async with self._acting("request-details", action):
            number = len(self.s.details) + 1
            now = workflow.now()
            previous = self._open_request()
            if previous is not None:
                previous.lapsed = True  # superseded by the new question
                self._meet(f"details_reply_{previous.number}")
            self.s.details.append(
                DetailsRequestState(
                    number=number, question=action.question, asked_by=action.actor, asked_at=now
                )
            )
            self._deadline(f"details_reply_{number}", now + self._inp.timings.details_expiry)
            await self._notify(
                f"details-request-{number}",
                "reporter",
                "details_request",
                to=self._inp.report.reporter.email,
                extra={"question": action.question},
            )
            await self._set_stage(
                Stage.AWAITING_DETAILS, action.actor, f"details requested ({number})"
            )
            return self._result("Reporter emailed; waiting for details.")

    @request_details.validator
    def _check_request_details(self, action: RequestDetails) -> None:
        self._check("request-details")

    @workflow.update
    async def record_crime(self, action: RecordCrime) -> ActionResult:
        async with self._acting("record-crime", action):
            now = workflow.now()
            crn = await workflow.execute_local_activity_method(
                CaseStore.issue_reference,
                IssueReference(workflow_id=self._id, kind="crime", year=now.year),
                retry_policy=_DB_RETRY,
                summary="Crime reference issued",
                start_to_close_timeout=_DB_TIMEOUT,
            )
            self.s.crime_reference = crn
            self.s.category = action.category
            self._meet("crime_recording_decision")
            self._close_open_request()
            closing = action.no_investigation
            next_steps = (
                f"No further investigation: outcome {action.outcome}."
                if closing
                else "Your report now goes to our Investigations Management Unit, who decide"
                " whether to investigate further."
            )
            support = self._victim_support_wanted()
            sent = await self._notify(
                "crime-recorded",
                "reporter",
                "crime_recorded",
                to=self._inp.report.reporter.email,
                extra={
                    "offence": action.category,
                    "next_steps": next_steps,
                    "support_line": (
                        "We have referred you to Victim Support, who will contact you.\n"
                        if support
                        else ""
                    ),
                },
            )
            if sent.sent:
                self._meet("crn_or_explanation")
            await self._record(
                "crime_recorded",
                action.actor,
                {"crime_reference": crn, "category": action.category},
                fields={"crime_reference": crn, "category": action.category},
            )
            if support:
                await self._refer_to_victim_support()
            self._upsert_attributes()
            if closing:
                self.s.outcome = action.outcome
                await self._set_stage(
                    Stage.CLOSED,
                    action.actor,
                    f"recorded and closed with outcome {action.outcome}",
                    fields={"outcome": action.outcome, "closed_at": now},
                )
                return self._result(f"Crime {crn} recorded and closed.", reference=crn)
            await self._set_stage(
                Stage.WITH_IMU, action.actor, f"crime {crn} recorded; with the IMU"
            )
            return self._result(f"Crime {crn} recorded; passed to the IMU.", reference=crn)

    @record_crime.validator
    def _check_record_crime(self, action: RecordCrime) -> None:
        self._check("record-crime")
        if action.no_investigation and action.outcome is None:
            raise ValueError(
                "--no-investigation needs --outcome N (a Home Office outcome type 1-22)"
            )
        if action.outcome is not None and not action.no_investigation:
            raise ValueError("--outcome is only given with --no-investigation")

    @workflow.update
    async def not_a_crime(self, action: NotACrime) -> ActionResult:
        async with self._acting("not-a-crime", action):
            self._meet("crime_recording_decision")
            self._close_open_request()
            sent = await self._notify(
                "not-a-crime",
                "reporter",
                "not_a_crime",
                to=self._inp.report.reporter.email,
                extra={
                    "advice": action.advice,
                    "agencies": "\n".join(f"- {a}" for a in action.agencies) or "- none named",
                },
            )
            if sent.sent:
                self._meet("crn_or_explanation")
            await self._set_stage(
                Stage.NOT_A_CRIME,
                action.actor,
                "not a crime; reporter advised",
                fields={"closed_at": workflow.now()},
            )
            return self._result("Reporter advised; case closed as not a crime.")

    @not_a_crime.validator
    def _check_not_a_crime(self, action: NotACrime) -> None:
        self._check("not-a-crime")

    # --- Step 3 and 4 staff actions ------------------------------------------------------

    @workflow.update
    async def imu_close(self, action: ImuClose) -> ActionResult:
        async with self._acting("imu-close", action):
            now = workflow.now()
            suspect = self._inp.report.incident.suspect
            identified = bool(
                suspect and (suspect.named or suspect.name or suspect.vehicle_registration)
            )
            decided = await workflow.execute_local_activity(
                imu_outcome,
                ImuOutcomeRequest(reason=action.reason, suspect_identified=identified),
                retry_policy=_DB_RETRY,
                summary=f"Outcome for IMU closure: {action.reason}",
                start_to_close_timeout=_DB_TIMEOUT,
            )
            outcome, name = decided.outcome, decided.name
            days = 1 if self.s.enhanced_rights else 5
            due: datetime = await workflow.execute_local_activity(
                working_days_after,
                WorkingDays(start=now, days=days),
                retry_policy=_DB_RETRY,
                summary=f"Right 6 due in {days} working day(s)",
                start_to_close_timeout=_DB_TIMEOUT,
            )
            self._deadline("right6_decision_explained", due)
            self.s.outcome = outcome
            sent = await self._notify(
                "imu-closed",
                "reporter",
                "imu_closed",
                to=self._inp.report.reporter.email,
                extra={
                    "reason_text": _IMU_REASON_TEXT[action.reason],
                    "outcome": outcome,
                    "outcome_name": name,
                },
            )
            if sent.sent:
                self._meet("right6_decision_explained")
            await self._set_stage(
                Stage.CLOSED_BY_IMU,
                action.actor,
                f"closed by the IMU: {action.reason} (outcome {outcome})",
                fields={"outcome": outcome, "closed_at": now},
            )
            return self._result(f"Closed by the IMU with outcome {outcome} ({name}); victim told.")

    @imu_close.validator
    def _check_imu_close(self, action: ImuClose) -> None:
        self._check("imu-close")

    @workflow.update
    async def imu_investigate(self, action: ImuInvestigate) -> ActionResult:
        async with self._acting("imu-investigate", action):
            now = workflow.now()
            ref = await workflow.execute_local_activity_method(
                CaseStore.issue_reference,
                IssueReference(workflow_id=self._id, kind="investigation", year=now.year),
                retry_policy=_DB_RETRY,
                summary="Investigation reference issued",
                start_to_close_timeout=_DB_TIMEOUT,
            )
            self.s.investigation_reference = ref
            report = self._inp.report
            flags = report.incident.flags
            team = await workflow.execute_local_activity(
                route_case,
                RouteRequest(
                    category=self.s.category,
                    domestic_abuse=bool(flags and flags.domestic_abuse),
                    hate_crime=bool(flags and flags.hate_crime),
                    under_18=report.reporter.under_18,
                    district=self.s.district,
                ),
                retry_policy=_DB_RETRY,
                summary="Team chosen by the routing table",
                start_to_close_timeout=_DB_TIMEOUT,
            )
            self.s.tasks = {step: None for step in INVESTIGATION_STEPS}
            await self._record(
                "investigation_opened",
                action.actor,
                {"investigation_reference": ref},
                fields={"investigation_reference": ref},
            )
            await self._notify(
                "investigation-opened",
                "reporter",
                "investigation_opened",
                to=report.reporter.email,
                extra={"team_name": _team_name(team)},
            )
            await self._allocate_to(team, action.actor)
            return self._result(f"Investigation {ref} opened; allocated to {team}.", reference=ref)

    @imu_investigate.validator
    def _check_imu_investigate(self, action: ImuInvestigate) -> None:
        self._check("imu-investigate")

    @workflow.update
    async def allocate(self, action: Allocate) -> ActionResult:
        async with self._acting("allocate", action):
            await self._allocate_to(action.team, action.actor)
            return self._result(
                f"Allocated to {action.team}; waiting for an officer to acknowledge."
            )

    @allocate.validator
    def _check_allocate(self, action: Allocate) -> None:
        self._check("allocate")
        if action.team not in TEAMS:
            raise ValueError(f"unknown team {action.team!r}; teams: {', '.join(TEAMS)}")

    @workflow.update
    async def acknowledge(self, action: Acknowledge) -> ActionResult:
        async with self._acting("acknowledge", action):
            now = workflow.now()
            self.s.officer = action.officer
            self._meet("team_acknowledgement")
            self.s.next_update_at = now + self._inp.timings.update_interval
            await workflow.execute_local_activity_method(
                TeamHandoff.mark_acknowledged,
                (self._id, f"handoff-{self.s.handoffs}", action.officer),
                retry_policy=_DB_RETRY,
                summary=f"Acknowledged by {action.officer}",
                start_to_close_timeout=_DB_TIMEOUT,
            )
            await self._set_stage(
                Stage.INVESTIGATING,
                action.actor,
                f"acknowledged by {action.officer}",
                fields={"officer": action.officer},
            )
            return self._result(f"{action.officer} has the case; investigation under way.")

    @acknowledge.validator
    def _check_acknowledge(self, action: Acknowledge) -> None:
        self._check("acknowledge")

    @workflow.update
    async def record_step(self, action: RecordStep) -> ActionResult:
        async with self._acting("record-step", action):
            self.s.tasks[action.step] = workflow.now().isoformat()
            await self._record(f"step:{action.step}", action.actor, {"note": action.note})
            open_steps = [k for k, v in self.s.tasks.items() if v is None]
            return self._result(
                f"Step {action.step} recorded; open: {', '.join(open_steps) or 'none'}."
            )

    @record_step.validator
    def _check_record_step(self, action: RecordStep) -> None:
        self._check("record-step")

    @workflow.update
    async def close(self, action: CloseCase) -> ActionResult:
        async with self._acting("close", action):
            name = await workflow.execute_local_activity(
                name_outcome,
                action.outcome,
                retry_policy=_DB_RETRY,
                summary="Outcome named",
                start_to_close_timeout=_DB_TIMEOUT,
            )
            self.s.outcome = action.outcome
            await self._notify(
                "case-closed",
                "reporter",
                "case_closed",
                to=self._inp.report.reporter.email,
                extra={"outcome": action.outcome, "outcome_name": name, "note": action.note},
            )
            await self._set_stage(
                Stage.CLOSED,
                action.actor,
                f"closed with outcome {action.outcome}",
                fields={"outcome": action.outcome, "closed_at": workflow.now()},
            )
            return self._result(f"Closed with outcome {action.outcome} ({name}); victim told.")

    @close.validator
    def _check_close(self, action: CloseCase) -> None:
        self._check("close")

    async def _allocate_to(self, team: str, actor: str) -> None:
        """Step 4: the case goes to a team, which must acknowledge it in time."""
        self.s.team = team
        self.s.officer = None
        self.s.handoffs += 1
        self.s.handoff_pending = True
        self._meet("team_acknowledgement")  # a previous team's, if any, is superseded
        self._deadline("team_acknowledgement", workflow.now() + self._inp.timings.ack_deadline)
        await self._set_stage(
            Stage.ALLOCATED, actor, f"allocated to {team}", fields={"team": team, "officer": None}
        )

    async def _stage_work(self) -> None:
        """Work a stage starts that nobody waits for: assessment, hand-off, intelligence."""
        if self.s.stage == Stage.WITH_IMU and self.s.assessment is None:
            assessment: Assessment = await workflow.execute_local_activity(
                assess_report,
                self._inp.report,
                retry_policy=_DB_RETRY,
                summary="IMU decision support: solvability and vulnerability",
                start_to_close_timeout=_DB_TIMEOUT,
            )
            self.s.assessment = assessment.model_dump(mode="json")
            await self._record(
                "assessed",
                "system",
                {"summary": assessment.summary},
                fields={"assessment": self.s.assessment},
            )
        if self.s.handoff_pending and self.s.team and not self.s.stage.is_closed:
            self.s.handoff_pending = False
            await self._hand_off(self.s.team)
        if self.s.tasks and self.s.intelligence is None:
            await self._search_intelligence()

    async def _hand_off(self, team: str) -> None:
        assert self.s.investigation_reference is not None
        try:
            how = await workflow.execute_activity_method(
                TeamHandoff.hand_off,
                Handoff(
                    workflow_id=self._id,
                    team=team,
                    attempt_key=f"handoff-{self.s.handoffs}",
                    investigation_reference=self.s.investigation_reference,
                    crime_reference=self.s.crime_reference,
                    category=self.s.category,
                    priority=self.s.priority.value,
                    acknowledged_by=self.s.officer,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_HANDOFF_RETRY,
                summary=f"Hand-off to {team}",
            )
        except ActivityError as err:
            # The case stays allocated and on our own records; a person takes it from here.
            self._flag("handoff_failed")
            reason = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
            await self._escalate(
                f"hand-off to {team} failed: {reason}", f"handoff-{self.s.handoffs}"
            )
            await self._record("handoff_failed", "system", {"team": team, "reason": reason})
            return
        if "handoff_failed" in self.s.flags:
            self.s.flags.remove("handoff_failed")
        if self.s.officer is not None:
            # Acknowledged while the hand-off was still on its way: say so on the queue too.
            await workflow.execute_local_activity_method(
                TeamHandoff.mark_acknowledged,
                (self._id, f"handoff-{self.s.handoffs}", self.s.officer),
                retry_policy=_DB_RETRY,
                summary=f"Acknowledged by {self.s.officer}",
                start_to_close_timeout=_DB_TIMEOUT,
            )
        await self._notify(
            f"team-handoff-{self.s.handoffs}",
            "team",
            "team_handoff",
            to=None,
            extra={"team": team, "team_name": _team_name(team), "offence": self.s.category},
        )
        await self._record("handed_off", "system", {"team": team, "how": how})

    async def _search_intelligence(self) -> None:
        """The seed's initial step: search the intelligence database, at once."""
        report = self._inp.report
        suspect = report.incident.suspect
        location = report.incident.location
        summary: IntelSummary = await workflow.execute_activity_method(
            IntelligenceSearch.search_intelligence,
            IntelQuery(
                workflow_id=self._id,
                latitude=location.latitude,
                longitude=location.longitude,
                occurred_at=report.incident.occurred_from,
                category=self.s.category,
                suspect_name=suspect.name if suspect else None,
                vehicle_registration=suspect.vehicle_registration if suspect else None,
                phone=report.reporter.phone,
                email=report.reporter.email,
            ),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_DB_RETRY,
            summary="Intelligence database searched",
        )
        self.s.intelligence = summary.model_dump(mode="json")
        self.s.tasks["intelligence"] = workflow.now().isoformat()
        await self._record(
            "step:intelligence",
            "system",
            {"summary": summary.summary},
            fields={"intelligence": self.s.intelligence},
        )

    async def _send_victim_update(self) -> None:
        """Victims' Code: keep the victim informed at the agreed interval."""
        self.s.updates_sent += 1
        self.s.next_update_at = workflow.now() + self._inp.timings.update_interval
        done = [k for k, v in self.s.tasks.items() if v]
        await self._notify(
            f"victim-update-{self.s.updates_sent}",
            "reporter",
            "victim_update",
            to=self._inp.report.reporter.email,
            extra={
                "team_name": _team_name(self.s.team or ""),
                "officer": self.s.officer or "to be confirmed",
                "steps_done": ", ".join(done) or "none yet",
            },
        )
        await self._record("victim_updated", "system", {"update": self.s.updates_sent})

    # --- reading the case ----------------------------------------------------------------

    @workflow.query
    def view(self) -> CaseView:
        s = self.s
        return CaseView(
            workflow_id=self._id,
            receipt_code=self._inp.receipt_code,
            stage=s.stage,
            priority=s.priority,
            category=s.category,
            crime_reference=s.crime_reference,
            investigation_reference=s.investigation_reference,
            outcome=s.outcome,
            redirected_to=s.redirected_to,
            team=s.team,
            officer=s.officer,
            flags=list(s.flags),
            overdue=self._overdue(),
            enhanced_rights=s.enhanced_rights,
            deadlines=[d.model_copy() for d in s.deadlines],
            timeline=list(s.timeline),
            tasks=dict(s.tasks),
            assessment=s.assessment,
            intelligence=s.intelligence,
            victim_updates=s.updates_sent,
            runs=s.runs,
        )

    # --- helpers ---------------------------------------------------------------------------

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

    def _victim_support_wanted(self) -> bool:
        reporter = self._inp.report.reporter
        return reporter.relationship.value == "victim" and reporter.consents_to_victim_support

    async def _refer_to_victim_support(self) -> None:
        """Victims' Code Right 4: a referral within 2 working days, recorded now."""
        due: datetime = await workflow.execute_local_activity(
            working_days_after,
            WorkingDays(start=workflow.now(), days=2),
            retry_policy=_DB_RETRY,
            summary="Victim support referral due date",
            start_to_close_timeout=_DB_TIMEOUT,
        )
        self._deadline("victim_support_referral", due)
        await workflow.execute_local_activity_method(
            CaseStore.record_referral,
            Referral(
                workflow_id=self._id, kind="victim_support", agency="Victim Support", due_at=due
            ),
            retry_policy=_DB_RETRY,
            summary="Victim support referral recorded",
            start_to_close_timeout=_DB_TIMEOUT,
        )
        sent = await self._notify(
            "victim-support-referral",
            "victim_support",
            "victim_support_referral",
            extra={
                "offence": self.s.category,
                "due_at": due.isoformat(),
                "enhanced_rights": "yes" if self.s.enhanced_rights else "no",
                **self._personal_context(),
            },
        )
        if sent.sent:
            self._meet("victim_support_referral")

    async def _redirect(
        self, *, actor: str, agency_name: str, reason: str, contact: str, agency_email: str | None
    ) -> None:
        self.s.redirected_to = agency_name
        self._meet("crime_recording_decision")
        self._close_open_request()
        await workflow.execute_local_activity_method(
            CaseStore.record_referral,
            Referral(workflow_id=self._id, kind="redirect", agency=agency_name),
            retry_policy=_DB_RETRY,
            summary=f"Referral to {agency_name} recorded",
            start_to_close_timeout=_DB_TIMEOUT,
        )
        context = {"agency_name": agency_name, "reason": reason, "agency_contact": contact}
        told, _ = await asyncio.gather(
            self._notify(
                "redirected",
                "reporter",
                "redirected",
                to=self._inp.report.reporter.email,
                extra=context,
            ),
            self._notify(
                "agency-copy",
                "agency",
                "agency_copy",
                to=agency_email,
                extra={**context, **self._personal_context()},
            ),
        )
        if told.sent:
            self._meet("crn_or_explanation")
        await self._set_stage(
            Stage.REDIRECTED,
            actor,
            f"redirected to {agency_name}",
            fields={"redirected_to": agency_name, "closed_at": workflow.now()},
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
        self.s.deadlines.append(Deadline(name=name, due_at=due_at))

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

    def _history_too_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > _HISTORY_LIMIT
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
        return await workflow.execute_activity_method(
            Mailer.notify,
            Notify(
                workflow_id=self._id,
                purpose=purpose,
                audience=audience,
                to=to,
                letter=letter,
                context=context,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_MAIL_RETRY,
            summary=f"Email: {purpose.replace('-', ' ')}",
        )

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
            ),
            retry_policy=_DB_RETRY,
            summary=f"Recorded: {event.replace('_', ' ')}",
            start_to_close_timeout=_DB_TIMEOUT,
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
            fields={"stage": stage.value, "priority": self.s.priority.value, **(fields or {})},
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

    def __init__(self, case: CaseWorkflow, action: str, who: StaffAction) -> None:
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
                retry_policy=_DB_RETRY,
                summary=f"Authorised {self._action} for {self._who.actor}",
                start_to_close_timeout=_DB_TIMEOUT,
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
