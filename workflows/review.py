"""Steps 1 and 2: emergency escalation, redirection, details requests, crime recording."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.rules import (
        working_days_after,
    )
    from activities.store import CaseStore
    from domain.case import (
        AckEmergency,
        ActionResult,
        DetailsReply,
        DetailsRequestState,
        NotACrime,
        Priority,
        RecordCrime,
        Redirect,
        RequestDetails,
        Stage,
    )
    from domain.effects import (
        ControlRoomAlert,
        IssueReference,
        Referral,
        WorkingDays,
    )

from workflows.base import (
    DB_RETRY,
    DB_TIMEOUT,
    PATCH_LETTERS_AFTER_DECISION,
    CaseBase,
)

# workflow.patched ids: one per change to workflow code made while cases are open.
PATCH_DETAILS_RECEIPT = "details-reply-acknowledged"


class ReviewSteps(CaseBase):
    """The control room's and call handlers' actions, and the reporter's replies."""

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
            retry_policy=DB_RETRY,
            summary=f"Control room alert {attempt} recorded",
            start_to_close_timeout=DB_TIMEOUT,
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
                # Added while cases were open: cases that took a reply before this change
                # replay without the letter (see docs/versioning.md).
                if workflow.patched(PATCH_DETAILS_RECEIPT):
                    await self._notify(
                        f"details-received-{request.number}",
                        "reporter",
                        "details_received",
                        to=self._inp.report.reporter.email,
                    )

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
            await self._notify_after(
                self._letter(
                    f"details-request-{number}",
                    "reporter",
                    "details_request",
                    to=self._inp.report.reporter.email,
                    extra={"question": action.question},
                )
            )
            await self._set_stage(
                Stage.AWAITING_DETAILS, action.actor, f"details requested ({number})"
            )
            return self._result("Question recorded and on its way to the reporter.")

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
                retry_policy=DB_RETRY,
                summary="Crime reference issued",
                start_to_close_timeout=DB_TIMEOUT,
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
            await self._notify_after(
                self._letter(
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
                ),
                then=self._meet_if_sent("crn_or_explanation"),
            )
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
            await self._notify_after(
                self._letter(
                    "not-a-crime",
                    "reporter",
                    "not_a_crime",
                    to=self._inp.report.reporter.email,
                    extra={
                        "advice": action.advice,
                        "agencies": "\n".join(f"- {a}" for a in action.agencies) or "- none named",
                    },
                ),
                then=self._meet_if_sent("crn_or_explanation"),
            )
            await self._set_stage(
                Stage.NOT_A_CRIME,
                action.actor,
                "not a crime; reporter advised",
                fields={"closed_at": workflow.now()},
            )
            return self._result("Case closed as not a crime; the reporter's advice is on its way.")

    @not_a_crime.validator
    def _check_not_a_crime(self, action: NotACrime) -> None:
        self._check("not-a-crime")

    async def _refer_to_victim_support(self) -> None:
        """Victims' Code Right 4: a referral within 2 working days, recorded now."""
        due: datetime = await workflow.execute_local_activity(
            working_days_after,
            WorkingDays(start=workflow.now(), days=2),
            retry_policy=DB_RETRY,
            summary="Victim support referral due date",
            start_to_close_timeout=DB_TIMEOUT,
        )
        self._deadline("victim_support_referral", due)
        await workflow.execute_local_activity_method(
            CaseStore.record_referral,
            Referral(
                workflow_id=self._id, kind="victim_support", agency="Victim Support", due_at=due
            ),
            retry_policy=DB_RETRY,
            summary="Victim support referral recorded",
            start_to_close_timeout=DB_TIMEOUT,
        )
        await self._notify_after(
            self._letter(
                "victim-support-referral",
                "victim_support",
                "victim_support_referral",
                extra={
                    "offence": self.s.category,
                    "due_at": due.isoformat(),
                    "enhanced_rights": "yes" if self.s.enhanced_rights else "no",
                    **self._personal_context(),
                },
            ),
            then=self._meet_if_sent("victim_support_referral"),
        )

    async def _redirect(
        self, *, actor: str, agency_name: str, reason: str, contact: str, agency_email: str | None
    ) -> None:
        self.s.redirected_to = agency_name
        self._meet("crime_recording_decision")
        self._close_open_request()
        await workflow.execute_local_activity_method(
            CaseStore.record_referral,
            Referral(workflow_id=self._id, kind="redirect", agency=agency_name),
            retry_policy=DB_RETRY,
            summary=f"Referral to {agency_name} recorded",
            start_to_close_timeout=DB_TIMEOUT,
        )
        context = {"agency_name": agency_name, "reason": reason, "agency_contact": contact}
        told = self._letter(
            "redirected",
            "reporter",
            "redirected",
            to=self._inp.report.reporter.email,
            extra=context,
        )
        copy = self._letter(
            "agency-copy",
            "agency",
            "agency_copy",
            to=agency_email,
            extra={**context, **self._personal_context()},
        )
        if workflow.patched(PATCH_LETTERS_AFTER_DECISION):
            await self._notify_after(told, then=self._meet_if_sent("crn_or_explanation"))
            await self._notify_after(copy)
        else:
            sent, _ = await asyncio.gather(self._send(told), self._send(copy))
            if sent.sent:
                self._meet("crn_or_explanation")
        await self._set_stage(
            Stage.REDIRECTED,
            actor,
            f"redirected to {agency_name}",
            fields={"redirected_to": agency_name, "closed_at": workflow.now()},
        )

    def _victim_support_wanted(self) -> bool:
        reporter = self._inp.report.reporter
        return reporter.relationship.value == "victim" and reporter.consents_to_victim_support
