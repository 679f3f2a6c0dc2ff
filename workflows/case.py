"""The case workflow: one per report, from receipt to an explicit, recorded end.

``run()`` reads like the four steps of the force's #WhatHappensNext email. Staff act
through updates (validated against the stage before anything reaches history, then
authorised against the roster by an activity); the reporter replies through a signal.
Every human wait has a timer and a stated default: see ``_on_time``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.rules import (
        screen_report,
    )
    from activities.store import CaseStore
    from domain.case import (
        CaseInput,
        CaseState,
        CaseView,
        DetailsReply,
        Stage,
        TimelineEntry,
    )
    from domain.effects import (
        OpenCase,
        ScreenRequest,
    )
    from domain.screening import Screening

from workflows.base import DB_RETRY, DB_TIMEOUT, HISTORY_LIMIT, RECEIPT_GRACE
from workflows.investigation import InvestigationSteps
from workflows.review import ReviewSteps


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow(ReviewSteps, InvestigationSteps):
    """A crime report's case, walked through the force's process."""

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        self._inp = inp
        self._id = workflow.info().workflow_id
        self._received_at = inp.received_at or workflow.info().workflow_start_time
        self.s = inp.state or CaseState(category=inp.report.incident.category)
        self._lock = asyncio.Lock()
        self._inbox: list[DetailsReply] = []
        self._changes = 0
        self._letters: list[asyncio.Task[None]] = []

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
                await workflow.wait_condition(self._settled)
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
        await workflow.wait_condition(self._settled)
        workflow.set_current_details(f"Closed: {self.s.stage.value}")
        return self.view()

    def _settled(self) -> bool:
        return workflow.all_handlers_finished() and self.letters_sent()

    async def _step1_receipt_and_screening(self) -> None:
        inp = self._inp
        report = inp.report
        # "Immediately": a few minutes' grace for the mail server, then it is a missed promise.
        self._deadline("receipt", self._received_at + RECEIPT_GRACE)
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
            retry_policy=DB_RETRY,
            summary="Case opened in the case store",
            start_to_close_timeout=DB_TIMEOUT,
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
            retry_policy=DB_RETRY,
            summary="Screened: triage and right agency",
            start_to_close_timeout=DB_TIMEOUT,
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

    def _history_too_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT
        )
