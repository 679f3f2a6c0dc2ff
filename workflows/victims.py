"""After the crime is recorded: a reopening, suspect events (Right 6), agreed updates.

The mechanism of a reopening is in ``docs/reopening.md``: ``whn-admin reopen`` starts a
new run under the case's workflow id with the closed case's state and a ``Reopen`` in
its input, and ``_reopen`` (called by ``run()`` before anything else) performs it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.case import ActionResult, Reopen, Stage
    from domain.effects import WorkingDays
    from domain.letters import NO_NOTE
    from domain.victims import (
        RecordSuspectEvent,
        SetUpdates,
        SuspectEvent,
        describe_interval,
        reopen_target,
        right6_days,
    )

from workflows.acting import staff_action
from workflows.letters import CaseLetters

# Each victim update has a deadline: its planned time and this much grace.
UPDATE_GRACE = timedelta(hours=1)
PATCH_AGREED_UPDATES = "agreed-updates"


def _suspect_event_needs(case: AfterRecording, action: RecordSuspectEvent) -> dict[str, Any]:
    days = right6_days(enhanced_rights=case.case.enhanced_rights)
    return {"working_days": WorkingDays(start=workflow.now(), days=days)}


class AfterRecording(CaseLetters):
    """Reopening, suspect events and agreed updates."""

    _reopen_done = False  # this run's reopening is recorded (``reopened`` answers then)

    async def _reopen(self, reopen: Reopen) -> None:
        """Bring the closed case back at the step its closure came from."""
        async with self._lock:
            c = self.case
            target = reopen_target(c.stage)  # the starter checked; a closed stage is certain
            closed_at = c.stage
            now = workflow.now()
            for deadline in c.deadlines:
                if deadline.met_at is None:
                    deadline.superseded = True
            c.reopenings = reopen.number
            c.outcome = None
            c.handoff_pending = False
            timings = self._inp.timings
            if target == Stage.AWAITING_REVIEW:
                self._deadline("crime_recording_decision", now + timings.review_deadline)
                self._deadline("crn_or_explanation", now + timings.crn_deadline)
            else:
                self._deadline("imu_decision", now + timings.review_deadline)
            await self._record(
                "reopened",
                reopen.actor,
                {"reason": reopen.reason, "from": closed_at.value, "reopening": reopen.number},
                fields={"outcome": None, "closed_at": None},
            )
            await self._send(f"reopened_{target.value}", "reopened", after_decision=True)
            await self._set_stage(
                target, reopen.actor, f"reopened from {closed_at.value}: new information"
            )
            await self._commit()
            self._reopen_done = True
            self._changes += 1

    @workflow.update
    async def reopened(self) -> ActionResult:
        """Answers once this run's reopening is recorded (``whn-admin reopen`` waits on it)."""
        await workflow.wait_condition(lambda: self._reopen_done)
        return self._result(f"Reopened: the case is {self.case.stage.value}; the reporter is told.")

    @reopened.validator
    def _check_reopened(self) -> None:
        if self._inp.reopen is None:
            raise ValueError("this run of the case was not started by a reopening")

    @staff_action(RecordSuspectEvent, needs=_suspect_event_needs)
    async def suspect_event(self, action: RecordSuspectEvent) -> ActionResult:
        now = workflow.now()
        event = action.event
        days = right6_days(enhanced_rights=self.case.enhanced_rights)
        due = await self._right6_due(now, days)
        name = f"right6_{event.value.replace('-', '_')}"
        self._deadline(name, due)
        number = sum(1 for e in self.case.timeline if e.event.startswith("suspect:")) + 1
        offers_vps = event == SuspectEvent.CHARGED
        if offers_vps and self.case.vps_offered_at is None:
            self.case.vps_offered_at = now  # Right 7: offered in the charged letter
        await self._record(
            f"suspect:{event.value}",
            action.actor,
            {"note": action.note, "due_at": due.isoformat(), "vps_offered": offers_vps},
        )
        await self._send(
            event.letter,
            f"suspect-{event.value}-{number}",
            after_decision=True,
            meets=name,
            note=action.note or NO_NOTE,
        )
        return self._result(
            f"Suspect event {event.value} recorded; the victim is told by"
            f" {due:%Y-%m-%d %H:%M} UTC ({days} working day{'s' if days > 1 else ''})."
        )

    @staff_action(SetUpdates)
    async def set_updates(self, action: SetUpdates) -> ActionResult:
        now = workflow.now()
        every = action.every
        previous = self._update_interval()
        self.case.update_interval = every
        if self.case.next_update_at is not None and self.case.stage == Stage.INVESTIGATING:
            # From the next update on: planned from the last one (or from when the
            # officer took the case) at the new frequency, never in the past.
            last = self.case.next_update_at - previous
            self._plan_update(max(now, last + every))
            next_at = self.case.next_update_at
        else:
            next_at = now + every
        await self._record("updates_agreed", action.actor, {"every": every.total_seconds()})
        agreed = sum(1 for e in self.case.timeline if e.event == "updates_agreed")
        words = describe_interval(every)
        await self._send(
            "updates_agreed",
            f"updates-agreed-{agreed}",
            after_decision=True,
            every_words=words,
            next_update=f"{next_at:%d %B %Y}",
        )
        return self._result(f"Updates every {words}; next due {next_at:%Y-%m-%d %H:%M} UTC.")

    def _update_interval(self) -> timedelta:
        """The frequency agreed with the victim, or the default the case started with."""
        return self.case.update_interval or self._inp.timings.update_interval

    def _plan_update(self, at: datetime) -> None:
        """The next victim update is due ``at``; from this change on, with a deadline."""
        self.case.next_update_at = at
        if not self._patched(PATCH_AGREED_UPDATES):
            return
        owed = {(o.meets, o.due_at) for o in self.case.owed_letters if o.delivered_at is None}
        for deadline in self.case.deadlines:
            # An update still owed to a reporter with no email keeps its deadline
            # (workflows.owed): letter-sent meets it, on time or late.
            open_ = deadline.met_at is None and (deadline.name, deadline.due_at) not in owed
            if deadline.name == "victim_update" and open_:
                deadline.superseded = True
        self._deadline("victim_update", at + UPDATE_GRACE)
