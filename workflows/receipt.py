"""Step 1: receipt and screening; an emergency escalated to the control room; a report
that belongs to another agency redirected (screening's or, in Step 2, a handler's).

What falls due here (``_receipt_due``): the emergency re-alert. No stage work.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.mail import Mailer
    from activities.rules import screen_report
    from activities.store import CaseStore
    from domain.actions import AckEmergency, ActionResult
    from domain.agency import Agency
    from domain.case import Priority, Stage, TimelineEntry
    from domain.effects import ControlRoomAlert, Notified, OpenCase, Referral, ScreenRequest
    from domain.screening import Screening

from workflows.acting import staff_action
from workflows.base import RECEIPT_GRACE
from workflows.due import Due
from workflows.letters import (
    LOCAL_MAIL_RETRY,
    MAIL_TIMEOUT,
    PATCH_LETTERS_AFTER_DECISION,
    PATCH_LETTERS_LOCAL,
    CaseLetters,
)

# Step 1 in two local activities, not three: the receipt's (``Mailer.notify`` with
# ``Notify.open``) also opens the case and screens the report, then one commit. If the
# mail server (or PostgreSQL) does not answer that one attempt, the case is opened and
# screened by ``CaseStore.open_and_screen`` as before, and the receipt goes to the
# activity. In bundle-2026-12-letters (workflows.base).
PATCH_RECEIPT_OPENS_CASE = "receipt-opens-case"


class ReceiptSteps(CaseLetters):
    """Receipt, screening, the control room's confirmation, and redirection."""

    def _receipt_due(self) -> list[Due]:
        if self.case.stage == Stage.EMERGENCY and self.case.next_emergency_alert_at:
            return [
                Due(self.case.next_emergency_alert_at, "Re-alert the control room", self._realert)
            ]
        return []

    async def _receive_and_screen(self) -> None:
        """Step 1: open the case, send the receipt, screen the report."""
        inp = self._inp
        report = inp.report
        self._deadline("receipt", self._received_at + RECEIPT_GRACE)
        self._deadline("crime_recording_decision", self._received_at + inp.timings.review_deadline)
        self._deadline("crn_or_explanation", self._received_at + inp.timings.crn_deadline)
        # Under PATCH_ONE_TRANSACTION the case is opened and the report screened in one
        # local activity, and screening is committed with its answer after the receipt
        # (the case is ``received`` while the receipt waits for the mail server).
        one = self._one_transaction
        opening = OpenCase(
            workflow_id=self._id,
            receipt_code=inp.receipt_code,
            submission_id=report.submission_id,
            report=report,
            received_at=self._received_at,
            stage=Stage.RECEIVED.value,
            priority=self.case.priority.value,
            category=self.case.category,
        )
        # The new patch asked first: a history without it asks letters-local where it
        # always did (at the receipt, after the case was opened).
        if one and self._patched(PATCH_RECEIPT_OPENS_CASE) and self._patched(PATCH_LETTERS_LOCAL):
            await self._screened(await self._open_with_receipt(opening))
            await self._commit()
            return
        opened = await self._in_store(
            CaseStore.open_and_screen if one else CaseStore.open_case,
            opening,
            "Case opened and screened: triage and right agency"
            if one
            else "Case opened in the case store",
        )
        self.case.timeline.append(
            TimelineEntry(at=self._received_at, event="received", actor="intake")
        )
        self._upsert_attributes()
        await self._send("receipt", "receipt", meets="receipt")  # the attributes go first
        await self._set_stage(Stage.SCREENING, "system", "screening started")
        screening: Screening = (
            opened
            if one
            else await self._rule(
                screen_report,
                ScreenRequest(report=report, received_at=self._received_at),
                "Screened: triage and right agency",
            )
        )
        await self._screened(screening)
        await self._commit()

    async def _open_with_receipt(self, opening: OpenCase) -> Screening:
        """PATCH_RECEIPT_OPENS_CASE: the case opened, screened and its receipt sent by one
        local activity, one attempt; else as before, in two (and the receipt retried by
        the activity). Then the case is screening, with the receipt's answer applied."""
        self.case.timeline.append(
            TimelineEntry(at=self._received_at, event="received", actor="intake")
        )
        self._upsert_attributes()  # the attributes go first
        notify = self._letter("receipt", "receipt", None, {})
        try:
            sent: Notified = await workflow.execute_local_activity_method(
                Mailer.notify,
                notify.model_copy(update={"open": opening}),
                start_to_close_timeout=MAIL_TIMEOUT,
                retry_policy=LOCAL_MAIL_RETRY,
                summary="Case opened and screened; email: receipt",
            )
        except (ActivityError, ApplicationError) as err:
            # A local activity's last failure may come unwrapped (no ActivityError).
            cause = err.cause if isinstance(err, ActivityError) else err
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                raise
            screening: Screening = await self._in_store(
                CaseStore.open_and_screen,
                opening,
                "Case opened and screened: triage and right agency",
            )
            await self._commit()  # the attributes, before the activity's wait
            await self._deliver(notify, "receipt")
        else:
            assert sent.screening is not None  # Notify.open asks for it
            screening = sent.screening
            await self._sent(notify, "receipt", sent)
        await self._set_stage(Stage.SCREENING, "system", "screening started")
        return screening

    async def _screened(self, screening: Screening) -> None:
        """Step 1's answer: an emergency, another agency's, or on to a call handler."""
        t = screening.triage
        self.case.priority = t.priority
        self.case.enhanced_rights = t.enhanced_rights
        self.case.district = screening.agency.district
        if t.emergency:
            await self._escalate_emergency(list(t.indicators))
            return
        decision = screening.agency
        if decision.kind == "redirect" and decision.agency is not None:
            await self._redirect(
                actor="system",
                agency_name=decision.agency.name,
                reason=decision.reason,
                agency=decision.agency,
            )
            return
        manual = decision.kind == "manual_area_check"
        if manual:
            self._flag("manual_area_check")
        await self._set_stage(
            Stage.AWAITING_REVIEW,
            "system",
            "awaiting call-handler review" + (" (manual area check)" if manual else ""),
        )

    async def _escalate_emergency(self, indicators: list[str]) -> None:
        """Step 1, Grade 1: alert the control room and wait for it to confirm."""
        self.case.emergency_indicators = indicators
        self.case.priority = Priority.EMERGENCY
        await self._set_stage(Stage.EMERGENCY, "system", "emergency: " + ", ".join(indicators))
        self._deadline(
            "emergency_acknowledgement", workflow.now() + self._inp.timings.emergency_ack_deadline
        )
        await self._alert_control_room()

    async def _alert_control_room(self) -> None:
        self.case.emergency_alerts += 1
        attempt = self.case.emergency_alerts
        self.case.next_emergency_alert_at = (
            workflow.now() + self._inp.timings.emergency_ack_deadline
        )
        alert = ControlRoomAlert(
            workflow_id=self._id, attempt=attempt, indicators=self.case.emergency_indicators
        )
        if self._one_transaction:
            self._kept[2].append(alert)  # committed before the alert's letter goes
        else:
            await self._in_store(
                CaseStore.raise_control_room_alert, alert, f"Control room alert {attempt} recorded"
            )
        await self._send(
            "control_room_alert",
            f"control-room-alert-{attempt}",
            attempt=attempt,
            indicator_list=list(self.case.emergency_indicators),
        )

    async def _realert(self) -> None:
        # Default on silence: re-alert, escalate to a supervisor, keep waiting.
        await self._alert_control_room()
        await self._escalate("emergency escalation not acknowledged", "emergency_acknowledgement")

    @staff_action(AckEmergency)
    async def ack_emergency(self, action: AckEmergency) -> ActionResult:
        self._meet("emergency_acknowledgement")
        self.case.next_emergency_alert_at = None
        await self._set_stage(
            Stage.AWAITING_REVIEW, action.actor, "emergency acknowledged by control room"
        )
        return self._result("Emergency acknowledged; the case goes to review at high priority.")

    async def _redirect(
        self, *, actor: str, agency_name: str, reason: str, agency: Agency | None
    ) -> None:
        """To another agency: by screening (``agency`` from the table) or by a handler."""
        self.case.redirected_to = agency_name
        self._meet("crime_recording_decision")
        self._close_open_request()
        await self._refer(
            Referral(workflow_id=self._id, kind="redirect", agency=agency_name),
            f"Referral to {agency_name} recorded",
        )
        facts: dict[str, Any] = {"agency_name": agency_name, "reason": reason}
        if agency is not None:
            facts["agency_contacts"] = agency.model_dump(
                include={"contact_url", "contact_phone", "contact_email", "how_to_report"}
            )
        told = {"meets": "crn_or_explanation", **facts}
        copy = {"to": agency.contact_email if agency else None, **facts, **self._reporter_facts()}
        if self._patched(PATCH_LETTERS_AFTER_DECISION):
            await self._send("redirected", "redirected", after_decision=True, **told)
            await self._send("agency_copy", "agency-copy", after_decision=True, **copy)
        else:
            # Before the patch both letters went at once, in place.
            await asyncio.gather(
                self._send("redirected", "redirected", **told),
                self._send("agency_copy", "agency-copy", **copy),
            )
        await self._set_stage(
            Stage.REDIRECTED,
            actor,
            f"redirected to {agency_name}",
            fields={"redirected_to": agency_name, "closed_at": workflow.now()},
        )
