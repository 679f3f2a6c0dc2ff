"""Steps 3 and 4: the IMU's decision, the investigation, allocation and hand-off."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.handoff import TeamHandoff
    from activities.intel import IntelligenceSearch
    from activities.rules import (
        assess_report,
        imu_outcome,
        name_outcome,
        route_case,
        working_days_after,
    )
    from activities.store import CaseStore
    from domain.assessment import Assessment
    from domain.case import (
        INVESTIGATION_STEPS,
        TEAMS,
        Acknowledge,
        ActionResult,
        Allocate,
        CloseCase,
        ImuClose,
        ImuInvestigate,
        RecordStep,
        Stage,
    )
    from domain.effects import (
        Handoff,
        ImuOutcomeRequest,
        IssueReference,
        RouteRequest,
        WorkingDays,
    )
    from domain.intel import IntelQuery, IntelSummary

from workflows.base import (
    DB_RETRY,
    DB_TIMEOUT,
    HANDOFF_RETRY,
    IMU_REASON_TEXT,
    CaseBase,
    team_name,
)


class InvestigationSteps(CaseBase):
    """The IMU's, supervisors' and officers' actions, and the work a stage starts."""

    def _has_stage_work(self) -> bool:
        s = self.s
        return (
            (s.stage == Stage.WITH_IMU and s.assessment is None)
            or (s.handoff_pending and s.team is not None and not s.stage.is_closed)
            or (bool(s.tasks) and s.intelligence is None)
        )

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
                retry_policy=DB_RETRY,
                summary=f"Outcome for IMU closure: {action.reason}",
                start_to_close_timeout=DB_TIMEOUT,
            )
            outcome, name = decided.outcome, decided.name
            days = 1 if self.s.enhanced_rights else 5
            due: datetime = await workflow.execute_local_activity(
                working_days_after,
                WorkingDays(start=now, days=days),
                retry_policy=DB_RETRY,
                summary=f"Right 6 due in {days} working day(s)",
                start_to_close_timeout=DB_TIMEOUT,
            )
            self._deadline("right6_decision_explained", due)
            self.s.outcome = outcome
            await self._notify_after(
                self._letter(
                    "imu-closed",
                    "reporter",
                    "imu_closed",
                    to=self._inp.report.reporter.email,
                    extra={
                        "reason_text": IMU_REASON_TEXT[action.reason],
                        "outcome": outcome,
                        "outcome_name": name,
                    },
                ),
                then=self._meet_if_sent("right6_decision_explained"),
            )
            await self._set_stage(
                Stage.CLOSED_BY_IMU,
                action.actor,
                f"closed by the IMU: {action.reason} (outcome {outcome})",
                fields={"outcome": outcome, "closed_at": now},
            )
            return self._result(
                f"Closed by the IMU with outcome {outcome} ({name}); the victim's letter is on"
                " its way."
            )

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
                retry_policy=DB_RETRY,
                summary="Investigation reference issued",
                start_to_close_timeout=DB_TIMEOUT,
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
                retry_policy=DB_RETRY,
                summary="Team chosen by the routing table",
                start_to_close_timeout=DB_TIMEOUT,
            )
            self.s.tasks = {step: None for step in INVESTIGATION_STEPS}
            await self._record(
                "investigation_opened",
                action.actor,
                {"investigation_reference": ref},
                fields={"investigation_reference": ref},
            )
            await self._notify_after(
                self._letter(
                    "investigation-opened",
                    "reporter",
                    "investigation_opened",
                    to=report.reporter.email,
                    extra={"team_name": team_name(team)},
                )
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
                retry_policy=DB_RETRY,
                summary=f"Acknowledged by {action.officer}",
                start_to_close_timeout=DB_TIMEOUT,
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
                retry_policy=DB_RETRY,
                summary="Outcome named",
                start_to_close_timeout=DB_TIMEOUT,
            )
            self.s.outcome = action.outcome
            await self._notify_after(
                self._letter(
                    "case-closed",
                    "reporter",
                    "case_closed",
                    to=self._inp.report.reporter.email,
                    extra={"outcome": action.outcome, "outcome_name": name, "note": action.note},
                )
            )
            await self._set_stage(
                Stage.CLOSED,
                action.actor,
                f"closed with outcome {action.outcome}",
                fields={"outcome": action.outcome, "closed_at": workflow.now()},
            )
            return self._result(
                f"Closed with outcome {action.outcome} ({name}); the victim's letter is on its way."
            )

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
                retry_policy=DB_RETRY,
                summary="IMU decision support: solvability and vulnerability",
                start_to_close_timeout=DB_TIMEOUT,
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
                retry_policy=HANDOFF_RETRY,
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
                retry_policy=DB_RETRY,
                summary=f"Acknowledged by {self.s.officer}",
                start_to_close_timeout=DB_TIMEOUT,
            )
        await self._notify(
            f"team-handoff-{self.s.handoffs}",
            "team",
            "team_handoff",
            to=None,
            extra={"team": team, "team_name": team_name(team), "offence": self.s.category},
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
            retry_policy=DB_RETRY,
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
                "team_name": team_name(self.s.team or ""),
                "officer": self.s.officer or "to be confirmed",
                "steps_done": ", ".join(done) or "none yet",
            },
        )
        await self._record("victim_updated", "system", {"update": self.s.updates_sent})
