"""Claims: a case is held by at most one person at a time, and the hold lapses.

``claim`` takes the case (again: renews it) for ``Timings.claim_timeout``; ``release``
gives it back; a supervisor's ``reassign`` hands it to someone else. While a case is
held, another person's action is refused before it reaches the history, naming the
holder, unless a supervisor acts (``CaseBase._check_holder``, called for every action by
``workflows.acting``: the admin client marks a supervisor's action ``override_claim``,
and the roster check refuses that mark to anyone else). The claim ends by itself when it
lapses (a timer on the case's list of what falls due) or when the case passes to another
role's work. Every claim, release, lapse and reassignment is an event of the case
(timeline, event log and audit log), and the holder is the ``Assignee`` search attribute.

Nothing here runs for a case nobody has claimed, so histories from before claims replay
unchanged.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.store import CaseStore
    from domain.actions import ActionResult, Claim, Reassign, Release
    from domain.case import Stage
    from domain.effects import StaffCheck
    from domain.queue import STAGE_ROLE

from workflows.acting import staff_action
from workflows.base import DB_RETRY, DB_TIMEOUT, CaseBase
from workflows.due import Due


def _not_held(message: str) -> ApplicationError:
    return ApplicationError(message, type="NotHeld", non_retryable=True)


def _check_claim(case: ClaimSteps, action: Claim) -> None:
    # Even a supervisor does not claim over someone: they reassign.
    case._check_holder(action.actor, override=False)


def _check_release(case: ClaimSteps, action: Release) -> None:
    holder = case._holder()
    if holder is None:
        raise _not_held("nobody holds this case: nothing to release")
    if holder != action.actor and not action.override_claim:
        raise _not_held(f"you do not hold this case: {holder} does")


def _check_reassign(case: ClaimSteps, action: Reassign) -> None:
    if case._holder() == action.to:
        raise ApplicationError(
            f"--to: {action.to} already holds this case", type="Held", non_retryable=True
        )


class ClaimSteps(CaseBase):
    """The claim updates, the lapse, and the end of a claim with its stage."""

    def _claims_due(self) -> list[Due]:
        """The claim's lapse, with its default: the case is back on its queue."""
        if self.case.holder is None or self.case.claimed_until is None:
            return []
        return [Due(self.case.claimed_until, "Claim lapses", self._lapse_claim)]

    async def _lapse_claim(self) -> None:
        await self._end_claim("claim_lapsed", "system", "claim timeout")

    async def _hold(self, holder: str, actor: str, event: str, detail: dict[str, str]) -> datetime:
        until = workflow.now() + self._inp.timings.claim_timeout
        self.case.holder = holder
        self.case.claimed_until = until
        self.case.claims += 1
        self._upsert_attributes()
        await self._record(
            event,
            actor,
            {**detail, "until": until.isoformat()},
            fields={"claimed_by": holder, "claimed_until": until},
        )
        return until

    async def _end_claim(self, event: str, actor: str, why: str) -> None:
        holder = self.case.holder
        self.case.holder = None
        self.case.claimed_until = None
        self._upsert_attributes()
        await self._record(
            event,
            actor,
            {"holder": holder or "", "why": why},
            fields={"claimed_by": None, "claimed_until": None},
        )

    async def _claim_follows_stage(self, old: Stage, new: Stage) -> None:
        """A case that passes to another role's work (or closes) is held by nobody."""
        if self.case.holder is not None and STAGE_ROLE.get(old) != STAGE_ROLE.get(new):
            await self._end_claim("released", "system", f"case now {new.value}")

    @staff_action(Claim, check=_check_claim)
    async def claim(self, action: Claim) -> ActionResult:
        renewed = self._holder() == action.actor
        until = await self._hold(action.actor, action.actor, "claimed", {"renewed": str(renewed)})
        return self._result(f"{action.actor} holds the case until {until:%Y-%m-%d %H:%M} UTC.")

    @staff_action(Release, check=_check_release)
    async def release(self, action: Release) -> ActionResult:
        await self._end_claim("released", action.actor, "released")
        return self._result("Released: the case is back on its queue.")

    @staff_action(Reassign, check=_check_reassign, decide_first=False)  # checks --to first
    async def reassign(self, action: Reassign) -> ActionResult:
        role = STAGE_ROLE[self.case.stage]
        try:
            await workflow.execute_local_activity_method(
                CaseStore.check_staff,
                StaffCheck(
                    workflow_id=self._id, actor=action.actor, staff_id=action.to, roles=[role]
                ),
                retry_policy=DB_RETRY,
                summary=f"Checked {action.to} for {role.replace('_', ' ')} work",
                start_to_close_timeout=DB_TIMEOUT,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "NotAuthorised":
                raise ApplicationError(
                    cause.message, type="BadAssignee", non_retryable=True
                ) from None
            raise
        until = await self._hold(
            action.to, action.actor, "reassigned", {"from": self._holder() or "", "to": action.to}
        )
        return self._result(f"{action.to} holds the case until {until:%Y-%m-%d %H:%M} UTC.")
