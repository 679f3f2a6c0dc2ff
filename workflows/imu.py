"""Step 3: the Investigations Management Unit decides: close, or investigate.

What falls due here: no timers; stage work (``_imu_work``): the IMU's decision support
(solvability and vulnerability), as soon as the case reaches the IMU.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.rules import assess_report, imu_outcome, route_case
    from domain.actions import ActionResult, ImuClose, ImuInvestigate
    from domain.assessment import Assessment
    from domain.case import INVESTIGATION_STEPS, Stage
    from domain.effects import ImuOutcomeRequest, RouteRequest, WorkingDays

from workflows.acting import staff_action
from workflows.base import DB_RETRY, DB_TIMEOUT
from workflows.due import Work
from workflows.investigation import InvestigationSteps


def _imu_close_needs(case: ImuSteps, action: ImuClose) -> dict[str, Any]:
    days = 1 if case.case.enhanced_rights else 5
    return {
        "imu_outcome": case._imu_outcome_request(action),
        "working_days": WorkingDays(start=workflow.now(), days=days),
    }


def _investigate_needs(case: ImuSteps, action: ImuInvestigate) -> dict[str, Any]:
    return {"reference": case._reference_request("investigation"), "route": case._route_request()}


class ImuSteps(InvestigationSteps):
    """The IMU's decision; an investigation opened goes on to Step 4 (allocation)."""

    def _route_request(self) -> RouteRequest:
        report = self._inp.report
        flags = report.incident.flags
        return RouteRequest(
            category=self.case.category,
            domestic_abuse=bool(flags and flags.domestic_abuse),
            hate_crime=bool(flags and flags.hate_crime),
            under_18=report.reporter.under_18,
            district=self.case.district,
        )

    def _imu_outcome_request(self, action: ImuClose) -> ImuOutcomeRequest:
        suspect = self._inp.report.incident.suspect
        identified = bool(
            suspect and (suspect.named or suspect.name or suspect.vehicle_registration)
        )
        return ImuOutcomeRequest(reason=action.reason, suspect_identified=identified)

    def _imu_work(self) -> list[Work]:
        if self.case.stage == Stage.WITH_IMU and self.case.assessment is None:
            return [Work("assess", self._assess)]
        return []

    @staff_action(ImuClose, needs=_imu_close_needs)
    async def imu_close(self, action: ImuClose) -> ActionResult:
        now = workflow.now()
        decided = self._prepared("imu_outcome") or await self._rule(
            imu_outcome,
            self._imu_outcome_request(action),
            f"Outcome for IMU closure: {action.reason}",
        )
        outcome, name = decided.outcome, decided.name
        days = 1 if self.case.enhanced_rights else 5
        due = await self._right6_due(now, days)
        self._deadline("right6_decision_explained", due)
        self._meet("imu_decision")  # a reopened case's
        self.case.outcome = outcome
        await self._send(
            "imu_closed",
            "imu-closed",
            after_decision=True,
            meets="right6_decision_explained",
            reason=action.reason,
            outcome=outcome,
            outcome_name=name,
        )
        await self._set_stage(
            Stage.CLOSED_BY_IMU,
            action.actor,
            f"closed by the IMU: {action.reason} (outcome {outcome})",
            fields={"outcome": outcome, "closed_at": now},
        )
        return self._result(
            f"Closed by the IMU with outcome {outcome} ({name}); the victim's letter is on its way."
        )

    @staff_action(ImuInvestigate, needs=_investigate_needs)
    async def imu_investigate(self, action: ImuInvestigate) -> ActionResult:
        now = workflow.now()
        ref = await self._issue_reference("investigation", now)
        self.case.investigation_reference = ref
        self._meet("imu_decision")  # a reopened case's
        team = self._prepared("team") or await self._rule(
            route_case, self._route_request(), "Team chosen by the routing table"
        )
        self.case.tasks = {step: None for step in INVESTIGATION_STEPS}
        await self._record(
            "investigation_opened",
            action.actor,
            {"investigation_reference": ref},
            fields={"investigation_reference": ref},
        )
        await self._send(
            "investigation_opened", "investigation-opened", after_decision=True, team=team
        )
        await self._allocate_to(team, action.actor)
        return self._result(f"Investigation {ref} opened; allocated to {team}.", reference=ref)

    async def _assess(self) -> None:
        """Decision support for the IMU: solvability and vulnerability (a case that
        reached the IMU by a record-crime from before patch begin-prepares)."""
        assessment: Assessment = await workflow.execute_local_activity(
            assess_report,
            self._inp.report,
            retry_policy=DB_RETRY,
            summary="IMU decision support: solvability and vulnerability",
            start_to_close_timeout=DB_TIMEOUT,
        )
        await self._assessed(assessment)
