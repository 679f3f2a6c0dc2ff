"""Step 4: the investigation: allocation, the team's hand-off and acknowledgement, its
first steps (the intelligence search at once), victim updates, closure.

What falls due here: the victim update (``_investigation_due``); stage work
(``_investigation_work``), in this order: the hand-off to the team, the intelligence
search.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from activities.handoff import TeamHandoff
    from activities.intel import IntelligenceSearch
    from activities.rules import (
        name_outcome,
    )
    from activities.store import CaseStore
    from domain.actions import (
        Acknowledge,
        ActionResult,
        Allocate,
        CloseCase,
        RecordStep,
    )
    from domain.case import Stage
    from domain.effects import (
        CaseNote,
        Handoff,
        SearchRecord,
        TeamAcknowledged,
    )
    from domain.intel import IntelQuery, IntelSummary

from workflows.acting import staff_action
from workflows.base import DB_RETRY, DB_TIMEOUT
from workflows.due import Due, Work
from workflows.victims import AfterRecording

# A team's system may be down for a while: back off, give up after about an hour, and
# never retry a refusal the team's system meant (unknown team, 4xx).
HANDOFF_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=10,
    non_retryable_error_types=["UnknownTeam", "TeamSystemRefused"],
)
INTEL_TIMEOUT = timedelta(seconds=60)
# The intelligence search is a short read of our own PostgreSQL (activities/intel.py):
# a local activity, in the workflow task that runs it, retried like the case's other
# reads; and the hand-off before it leaves its commit to the search's, one commit for
# both (``Work.commit``). In bundle-2026-12-letters (workflows.base).
PATCH_INTEL_LOCAL = "intel-local"
# The team queue's entry taken by the officer is written by the commit of what says so
# (the acknowledgement, or the hand-off that arrived after it), not by a local activity
# of its own. In bundle-2026-12-letters (workflows.base).
PATCH_ACKNOWLEDGED_IN_COMMIT = "acknowledged-in-commit"
# The intelligence search records its own outcome (IntelligenceSearch.search_and_record):
# the case's step:intelligence event, numbered before the search, and what the case kept
# before it (the hand-off's, in a bundled case) are written by the search's local
# activity in one transaction, so no commit follows it. In bundle-2026-12-actions
# (workflows.base).
PATCH_SEARCH_RECORDS = "search-records"


def _close_needs(case: InvestigationSteps, action: CloseCase) -> dict[str, Any]:
    return {"outcome": action.outcome}


class InvestigationSteps(AfterRecording):
    """Supervisors' and officers' actions on an investigation, and the work it starts."""

    def _investigation_due(self) -> list[Due]:
        c = self.case
        if c.stage == Stage.INVESTIGATING and c.next_update_at:
            return [Due(c.next_update_at, "Victim update due", self._send_victim_update)]
        return []

    def _investigation_work(self) -> list[Work]:
        c = self.case
        work: list[Work] = []
        search = bool(c.tasks) and c.intelligence is None
        if c.handoff_pending and c.team is not None and not c.stage.is_closed:
            # PATCH_INTEL_LOCAL: the search right after commits what the hand-off changed.
            # Bundled cases only (this list is read in wait conditions: no marker here).
            commit = not (search and PATCH_INTEL_LOCAL in self._bundled)
            work.append(Work("hand off", self._hand_off, commit=commit))
        if search:
            work.append(Work("search intelligence", self._search_intelligence))
        return work

    @staff_action(Allocate)
    async def allocate(self, action: Allocate) -> ActionResult:
        await self._allocate_to(action.team, action.actor)
        return self._result(f"Allocated to {action.team}; waiting for an officer to acknowledge.")

    @staff_action(Acknowledge)
    async def acknowledge(self, action: Acknowledge) -> ActionResult:
        now = workflow.now()
        self.case.officer = action.officer
        self._meet("team_acknowledgement")
        self._plan_update(now + self._update_interval())
        await self._mark_acknowledged(action.officer)
        await self._set_stage(
            Stage.INVESTIGATING,
            action.actor,
            f"acknowledged by {action.officer}",
            fields={"officer": action.officer},
        )
        return self._result(f"{action.officer} has the case; investigation under way.")

    @staff_action(RecordStep)
    async def record_step(self, action: RecordStep) -> ActionResult:
        if action.step == "vps":
            # Right 7: the offer of a Victim Personal Statement, made in person.
            self.case.vps_offered_at = self.case.vps_offered_at or workflow.now()
            await self._record("vps_offered", action.actor, {"note": action.note})
            return self._result("Victim Personal Statement offer recorded.")
        self.case.tasks[action.step] = workflow.now().isoformat()
        # The note is kept sealed (case_notes); the event log has its length only.
        await self._record(
            f"step:{action.step}",
            action.actor,
            {"note_length": len(action.note)},
            notes=[CaseNote(kind="step_note", text=action.note, step=action.step)],
        )
        open_steps = [k for k, v in self.case.tasks.items() if v is None]
        return self._result(
            f"Step {action.step} recorded; open: {', '.join(open_steps) or 'none'}."
        )

    @staff_action(CloseCase, needs=_close_needs)
    async def close(self, action: CloseCase) -> ActionResult:
        name = self._prepared("outcome_name") or await self._rule(
            name_outcome, action.outcome, "Outcome named"
        )
        self.case.outcome = action.outcome
        await self._send(
            "case_closed",
            "case-closed",
            after_decision=True,
            outcome=action.outcome,
            outcome_name=name,
            note=action.note,
        )
        await self._set_stage(
            Stage.CLOSED,
            action.actor,
            f"closed with outcome {action.outcome}",
            fields={"outcome": action.outcome, "closed_at": workflow.now()},
            notes=[CaseNote(kind="closing_note", text=action.note)],
        )
        return self._result(
            f"Closed with outcome {action.outcome} ({name}); the victim's letter is on its way."
        )

    async def _allocate_to(self, team: str, actor: str) -> None:
        """Step 4: the case goes to a team, which must acknowledge it in time."""
        self.case.team = team
        self.case.officer = None
        self.case.handoffs += 1
        self.case.handoff_pending = True
        self._meet("team_acknowledgement")  # a previous team's, if any, is superseded
        self._deadline("team_acknowledgement", workflow.now() + self._inp.timings.ack_deadline)
        await self._set_stage(
            Stage.ALLOCATED, actor, f"allocated to {team}", fields={"team": team, "officer": None}
        )

    async def _mark_acknowledged(self, officer: str) -> None:
        """The team's queue entry of the latest hand-off: taken by ``officer``."""
        attempt_key = f"handoff-{self.case.handoffs}"
        if self._one_transaction and self._patched(PATCH_ACKNOWLEDGED_IN_COMMIT):
            self._acknowledged.append(TeamAcknowledged(attempt_key=attempt_key, officer=officer))
            return
        await workflow.execute_local_activity_method(
            TeamHandoff.mark_acknowledged,
            (self._id, attempt_key, officer),
            retry_policy=DB_RETRY,
            summary=f"Acknowledged by {officer}",
            start_to_close_timeout=DB_TIMEOUT,
        )

    async def _hand_off(self) -> None:
        c = self.case
        assert c.team is not None and c.investigation_reference is not None
        c.handoff_pending = False
        team = c.team
        try:
            how = await workflow.execute_activity_method(
                TeamHandoff.hand_off,
                Handoff(
                    workflow_id=self._id,
                    team=team,
                    attempt_key=f"handoff-{c.handoffs}",
                    investigation_reference=c.investigation_reference,
                    crime_reference=c.crime_reference,
                    category=c.category,
                    priority=c.priority.value,
                    acknowledged_by=c.officer,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=HANDOFF_RETRY,
                summary=f"Hand-off to {team}",
            )
        except ActivityError as err:
            # The case stays allocated and on our own records; a person takes it from here.
            self._flag("handoff_failed")
            reason = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
            await self._escalate(f"hand-off to {team} failed: {reason}", f"handoff-{c.handoffs}")
            await self._record("handoff_failed", "system", {"team": team, "reason": reason})
            return
        if "handoff_failed" in c.flags:
            c.flags.remove("handoff_failed")
        if c.officer is not None:
            # Acknowledged while the hand-off was still on its way: say so on the queue too.
            await self._mark_acknowledged(c.officer)
        await self._send(
            "team_handoff", f"team-handoff-{c.handoffs}", team=team, offence=c.category
        )
        await self._record("handed_off", "system", {"team": team, "how": how})

    async def _search_intelligence(self) -> None:
        """The seed's initial step: search the intelligence database, at once."""
        report = self._inp.report
        suspect = report.incident.suspect
        location = report.incident.location
        query = IntelQuery(
            workflow_id=self._id,
            latitude=location.latitude,
            longitude=location.longitude,
            occurred_at=report.incident.occurred_from,
            category=self.case.category,
            suspect_name=suspect.name if suspect else None,
            vehicle_registration=suspect.vehicle_registration if suspect else None,
            phone=report.reporter.phone,
            email=report.reporter.email,
        )
        search = IntelligenceSearch.search_intelligence
        how: dict[str, Any] = {
            "start_to_close_timeout": INTEL_TIMEOUT,
            "retry_policy": DB_RETRY,
            "summary": "Intelligence database searched",
        }
        summary: IntelSummary
        if self._patched(PATCH_INTEL_LOCAL):
            if self._one_transaction and self._patched(PATCH_SEARCH_RECORDS):
                await self._search_and_record(query, how)
                return
            summary = await workflow.execute_local_activity_method(search, query, **how)
        else:
            summary = await workflow.execute_activity_method(search, query, **how)
        self.case.intelligence = summary
        self.case.tasks["intelligence"] = workflow.now().isoformat()
        await self._record(
            "step:intelligence",
            "system",
            {"summary": summary.summary},
            fields={"intelligence": summary.model_dump(mode="json")},
        )

    async def _search_and_record(self, query: IntelQuery, how: dict[str, Any]) -> None:
        """PATCH_SEARCH_RECORDS: the search's local activity writes its outcome, as the
        case's next event, with what the case kept before it: in order with the case's
        commits (it holds the commit lock), the search attributes first. What it changes
        on the case is what ``_search_intelligence`` changes after the search, at the
        time the search was asked. If it fails, its timeline entry is taken back and
        what it carried is kept again for the next commit."""
        self._write_attributes()
        async with self._commit_lock:
            carried = self._take_kept()
            if carried is not None and any(c.notes for c in carried.changes):
                # Notes are sealed by the case store's key: its own commit writes them,
                # before the search's event (event order is the store's).
                try:
                    await self._in_store(CaseStore.commit, carried, "Recorded: notes")
                except BaseException:
                    self._keep_again(carried)
                    raise
                self._changes += 1
                carried = None
            change = self._change("step:intelligence", "system")
            entry = self.case.timeline[-1]
            try:
                summary: IntelSummary = await workflow.execute_local_activity_method(
                    IntelligenceSearch.search_and_record,
                    SearchRecord(query=query, change=change, commit=carried),
                    **how,
                )
            except BaseException:
                # The search's outcome is not the case's: its timeline entry goes, what
                # it carried is kept again (written once, by key, whoever writes it). Its
                # number stays taken: numbers need only be unique, and an attempt may
                # have written the event before the last one failed.
                self.case.timeline.remove(entry)
                if carried is not None:
                    self._keep_again(carried)
                raise
        self.case.intelligence = summary
        self.case.tasks["intelligence"] = change.at.isoformat()
        self._changes += 1  # as a commit does: the main loop looks again

    async def _send_victim_update(self) -> None:
        """Victims' Code: keep the victim informed at the agreed interval."""
        self.case.updates_sent += 1
        planned = workflow.now() + self._update_interval()
        self.case.next_update_at = planned
        sent = await self._send(
            "victim_update",
            f"victim-update-{self.case.updates_sent}",
            meets="victim_update",  # by letter-sent, when owed to a reporter with no email
            team=self.case.team or "",
            officer_id=self.case.officer,
            steps=[k for k, v in self.case.tasks.items() if v],
        )
        if sent is not None and sent.sent:
            self._meet("victim_update")  # late if the update went after its deadline
        self._plan_update(planned)
        await self._record("victim_updated", "system", {"update": self.case.updates_sent})
