"""Step 2: call-handler review: details requests, crime recording, not a crime, redirect.

What falls due here (``_review_due``): the details reminder and lapse. No stage work.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.rules import working_days_after
    from domain.actions import (
        ActionResult,
        NotACrime,
        RecordCrime,
        Redirect,
        RequestDetails,
    )
    from domain.case import DetailsReply, DetailsRequestState, Stage
    from domain.effects import CaseNote, Referral, WorkingDays

from workflows.acting import staff_action
from workflows.base import DB_RETRY, DB_TIMEOUT
from workflows.due import Due
from workflows.receipt import ReceiptSteps

# workflow.patched ids: one per change to workflow code made while cases are open.
PATCH_DETAILS_RECEIPT = "details-reply-acknowledged"
# record-crime's ``CaseStore.begin`` also works out the Victim Support referral's due
# date (Right 4) and, for a crime going to the IMU, the IMU's decision support: two
# local activities fewer (the due date's, inside the action; the assessment's, with its
# commit, in the main loop after it). In bundle-2026-12-letters (workflows.base).
PATCH_BEGIN_PREPARES = "begin-prepares"


def _crime_needs(case: ReviewSteps, action: RecordCrime) -> dict[str, Any]:
    needs: dict[str, Any] = {"reference": case._reference_request("crime")}
    if case._patched(PATCH_BEGIN_PREPARES):
        if case._victim_support_wanted():
            needs["working_days"] = WorkingDays(start=workflow.now(), days=2)
        if not action.no_investigation and case.case.assessment is None:
            needs["assess"] = case._inp.report  # as _imu_work would (once per case)
    return needs


class ReviewSteps(ReceiptSteps):
    """The control room's and call handlers' actions, and the reporter's replies."""

    def _review_due(self) -> list[Due]:
        """Step 1-2 timers, each with its default on silence."""
        due: list[Due] = []
        request = self._open_request()
        if request is not None:
            timings = self._inp.timings
            if not request.reminded:
                due.append(
                    Due(
                        request.asked_at + timings.details_reminder,
                        "Remind the reporter",
                        lambda: self._remind(request),
                    )
                )
            due.append(
                Due(
                    request.asked_at + timings.details_expiry,
                    "Details request lapses",
                    lambda: self._lapse(request),
                )
            )
        return due

    async def _remind(self, request: DetailsRequestState) -> None:
        request.reminded = True
        carried = self._carries()  # PATCH_LETTERS_CARRY_COMMIT: recorded with its letter
        if carried:
            await self._record("details_reminder_sent", "system", {"request": request.number})
        await self._send(
            "details_reminder",
            f"details-reminder-{request.number}",
            question=request.question,
            expires_at=(request.asked_at + self._inp.timings.details_expiry).isoformat(),
        )
        if not carried:
            await self._record("details_reminder_sent", "system", {"request": request.number})

    async def _lapse(self, request: DetailsRequestState) -> None:
        # Default on silence: the request lapses and the case goes back to review.
        request.lapsed = True
        self._meet(f"details_reply_{request.number}", missed=True)
        self._flag("details_not_received")
        await self._set_stage(
            Stage.AWAITING_REVIEW, "system", f"details request {request.number} lapsed"
        )

    @workflow.signal
    def details_reply(self, reply: DetailsReply) -> None:
        """The reporter's answer: kept, and handled by the main loop."""
        self._inbox.append(reply)

    async def _process_inbox(self) -> None:
        while self._inbox:
            reply = self._inbox.pop(0)
            digest = hashlib.sha256(" ".join(reply.text.split()).encode()).hexdigest()[:32]
            if digest in self.case.reply_digests:
                continue  # the same reply again: recorded once
            self.case.reply_digests.append(digest)
            request = self._open_request()
            await self._record(
                "details_received",
                "reporter",
                {"request": request.number if request else None, "length": len(reply.text)},
                notes=[
                    CaseNote(
                        kind="details_reply",
                        text=reply.text,
                        request=request.number if request else None,
                    )
                ],
            )
            if request is not None:
                request.answered_at = workflow.now()
                self._meet(f"details_reply_{request.number}")
                if self.case.stage == Stage.AWAITING_DETAILS:
                    await self._set_stage(Stage.AWAITING_REVIEW, "reporter", "details received")
                # Added while cases were open: cases that took a reply before this change
                # replay without the letter (see docs/versioning.md).
                if self._patched(PATCH_DETAILS_RECEIPT):
                    await self._send("details_received", f"details-received-{request.number}")

    @staff_action(Redirect)
    async def redirect(self, action: Redirect) -> ActionResult:
        await self._redirect(
            actor=action.actor, agency_name=action.agency, reason=action.reason, agency=None
        )
        return self._result(f"Redirected to {action.agency}.")

    @staff_action(RequestDetails)
    async def request_details(self, action: RequestDetails) -> ActionResult:
        number = len(self.case.details) + 1
        now = workflow.now()
        previous = self._open_request()
        if previous is not None:
            previous.lapsed = True  # superseded by the new question
            self._meet(f"details_reply_{previous.number}")
        self.case.details.append(
            DetailsRequestState(
                number=number, question=action.question, asked_by=action.actor, asked_at=now
            )
        )
        self._deadline(f"details_reply_{number}", now + self._inp.timings.details_expiry)
        await self._send(
            "details_request",
            f"details-request-{number}",
            after_decision=True,
            question=action.question,
        )
        await self._set_stage(
            Stage.AWAITING_DETAILS,
            action.actor,
            f"details requested ({number})",
            notes=[CaseNote(kind="details_question", text=action.question, request=number)],
        )
        return self._result("Question recorded and on its way to the reporter.")

    @staff_action(RecordCrime, needs=_crime_needs)
    async def record_crime(self, action: RecordCrime) -> ActionResult:
        now = workflow.now()
        crn = await self._issue_reference("crime", now)
        self.case.crime_reference = crn
        self.case.category = action.category
        self._meet("crime_recording_decision")
        self._close_open_request()
        support = self._victim_support_wanted()
        await self._send(
            "crime_recorded",
            "crime-recorded",
            after_decision=True,
            meets="crn_or_explanation",
            offence=action.category,
            outcome=action.outcome,
            victim_support_referred=support,
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
        if action.no_investigation:
            self.case.outcome = action.outcome
            await self._set_stage(
                Stage.CLOSED,
                action.actor,
                f"recorded and closed with outcome {action.outcome}",
                fields={"outcome": action.outcome, "closed_at": now},
            )
            return self._result(f"Crime {crn} recorded and closed.", reference=crn)
        await self._set_stage(Stage.WITH_IMU, action.actor, f"crime {crn} recorded; with the IMU")
        assessment = self._prepared("assessment")
        if assessment is not None:
            # PATCH_BEGIN_PREPARES: in the action's commit, not the main loop's (_assess).
            await self._assessed(assessment)
        return self._result(f"Crime {crn} recorded; passed to the IMU.", reference=crn)

    @staff_action(NotACrime)
    async def not_a_crime(self, action: NotACrime) -> ActionResult:
        self._meet("crime_recording_decision")
        self._close_open_request()
        await self._send(
            "not_a_crime",
            "not-a-crime",
            after_decision=True,
            meets="crn_or_explanation",
            advice=action.advice,
            agency_list=list(action.agencies),
        )
        await self._set_stage(
            Stage.NOT_A_CRIME,
            action.actor,
            "not a crime; reporter advised",
            fields={"closed_at": workflow.now()},
        )
        return self._result("Case closed as not a crime; the reporter's advice is on its way.")

    async def _refer_to_victim_support(self) -> None:
        """Victims' Code Right 4: a referral within 2 working days, recorded now."""
        due: datetime = self._prepared("due") or await workflow.execute_local_activity(
            working_days_after,
            WorkingDays(start=workflow.now(), days=2),
            retry_policy=DB_RETRY,
            summary="Victim support referral due date",
            start_to_close_timeout=DB_TIMEOUT,
        )  # PATCH_BEGIN_PREPARES: worked out with the action's authorisation
        self._deadline("victim_support_referral", due)
        await self._refer(
            Referral(
                workflow_id=self._id, kind="victim_support", agency="Victim Support", due_at=due
            ),
            "Victim support referral recorded",
        )
        await self._send(
            "victim_support_referral",
            "victim-support-referral",
            after_decision=True,
            meets="victim_support_referral",
            offence=self.case.category,
            due_at=due.isoformat(),
            enhanced=self.case.enhanced_rights,
            **self._reporter_facts(),
        )

    def _victim_support_wanted(self) -> bool:
        reporter = self._inp.report.reporter
        return reporter.relationship.value == "victim" and reporter.consents_to_victim_support
