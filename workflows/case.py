"""The case workflow: one per report, from receipt to an explicit, recorded end.

``run()`` is the process's main loop, not a script of it: Step 1 (receipt and screening)
runs once, then until the case is closed the loop waits for something to happen and
handles it, in this order: the reporter's replies (the inbox), the work a stage starts
(stage work), the timers that have come due. Staff move a case on through updates
(``@staff_action`` handlers), which run beside the loop. Where each step lives:

=====================  ==============================================================
``workflows.receipt``  Step 1: receipt, screening, emergency escalation (re-alert
                       timer), redirection; ``ack-emergency``
``workflows.review``   Step 2: details requests (reminder and lapse timers), the
                       reply signal, ``record-crime``, ``not-a-crime``, ``redirect``
``workflows.imu``      Step 3: decision support (stage work), ``imu-close``,
                       ``imu-investigate``
``workflows.investigation``  Step 4: allocation, hand-off and intelligence search
                       (stage work), victim updates (timer), ``allocate``,
                       ``acknowledge``, ``record-step``, ``close``
this module            the loop, the deadlines every step sets (missed: escalated),
                       continue-as-new, the ``view`` query
=====================  ==============================================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import email_validator  # noqa: F401  (pydantic's EmailStr loads it lazily: load it here)

    from domain.case import CaseInput, CaseState, CaseView, Deadline, DetailsReply

from workflows.base import HISTORY_LIMIT, PATCH_KEEP_DUE_TIMER
from workflows.claims import ClaimSteps
from workflows.due import Due, DueTimer, Work, earliest, fire
from workflows.imu import ImuSteps
from workflows.owed import OwedSteps
from workflows.review import ReviewSteps
from workflows.victims import AfterRecording


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow(ReviewSteps, ImuSteps, AfterRecording, ClaimSteps, OwedSteps):
    """A crime report's case, walked through the force's process."""

    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        self._inp = inp
        self._id = workflow.info().workflow_id
        self._received_at = inp.received_at or workflow.info().workflow_start_time
        self.case = inp.state or CaseState(category=inp.report.incident.category)
        self._lock = asyncio.Lock()
        self._inbox: list[DetailsReply] = []
        self._changes = 0
        self._letters: list[asyncio.Task[None]] = []
        self._start_keeping()  # before any handler runs: the patch marker comes first
        self._keep_due_timer = self._patched(PATCH_KEEP_DUE_TIMER)
        self._due_timer = DueTimer()

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseView:
        if inp.state is None:
            await self._receive_and_screen()
        elif inp.reopen is not None and self.case.reopenings < inp.reopen.number:
            await self._reopen(inp.reopen)
        while not self.case.stage.is_closed:
            await self._wait_for_change_or_time()
            await self._process_inbox()
            await self._commit()
            await fire(self._stage_work, then=self._commit)
            await self._on_time()
            if self._history_too_long():
                await workflow.wait_condition(self._settled)
                await self._commit()
                self.case.runs += 1
                workflow.continue_as_new(
                    CaseInput(
                        report=inp.report,
                        receipt_code=inp.receipt_code,
                        received_at=self._received_at,
                        timings=inp.timings,
                        state=self.case,
                    )
                )
        # A letter still owed to a reporter without email keeps the case open for
        # letter-sent (workflows.owed; none are owed in cases from before the patch).
        await workflow.wait_condition(lambda: self._settled() and self.owed_done())
        await self._commit()
        workflow.set_current_details(f"Closed: {self.case.stage.value}")
        # The whole state goes in the result: a reopening starts from it.
        return self._view().model_copy(update={"final_state": self.case})

    # --- what falls due: each step file's lists, in the order they are acted on ---------

    def _timers(self) -> list[Due]:
        return [
            *self._review_due(),
            *self._receipt_due(),
            *self._investigation_due(),
            *self._deadlines_due(),
            *self._claims_due(),
        ]

    def _stage_work(self) -> list[Work]:
        return [*self._imu_work(), *self._investigation_work()]

    def _deadlines_due(self) -> list[Due]:
        """Every pending deadline: when it passes, it is missed and a supervisor is told."""
        return [
            Due(d.due_at, f"Deadline: {d.name.replace('_', ' ')}", self._missed(d))
            for d in self.case.deadlines
            if d.met_at is None and not d.missed and not d.superseded
        ]

    def _missed(self, deadline: Deadline) -> Callable[[], Awaitable[None]]:
        async def act() -> None:
            deadline.missed = True
            if deadline.name != "emergency_acknowledgement":  # the control room is re-alerted
                await self._escalate(f"deadline missed: {deadline.name}", deadline.name)
            self._upsert_attributes()

        return act

    async def _wait_for_change_or_time(self) -> None:
        if self._stage_work() or self._inbox:
            return
        seen = self._changes

        def woken() -> bool:
            return self._changes != seen or bool(self._inbox) or bool(self._stage_work())

        upcoming = earliest(self._timers())
        if self._keep_due_timer:
            if upcoming is not None and upcoming.when <= workflow.now():
                return  # due now: the loop acts on it (the timer, if running, is kept)
            self._due_timer.wait_for(upcoming)
            # Parked: a staff action may decide first meanwhile (PATCH_BEGIN_IN_COMMIT).
            await self._park(lambda: woken() or self._due_timer.fired())
            return
        if upcoming is None:
            await workflow.wait_condition(woken)
            return
        delay = upcoming.when - workflow.now()
        if delay <= timedelta(0):
            return
        try:
            await workflow.wait_condition(
                woken,
                timeout=delay,
                timeout_summary=f"{upcoming.label} at {upcoming.when:%Y-%m-%d %H:%M} UTC",
            )
        except TimeoutError:
            pass

    async def _on_time(self) -> None:
        """Act on every timer that has come due; each has a stated default."""
        now = workflow.now()
        await fire(lambda: [t for t in self._timers() if t.when <= now], then=self._commit)

    def _settled(self) -> bool:
        return workflow.all_handlers_finished() and self.letters_sent()

    def _history_too_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT
        )

    @workflow.query
    def view(self) -> CaseView:
        with self._as_decided():  # not what an action still deciding changed
            return self._view()

    def _view(self) -> CaseView:
        c = self.case
        return CaseView(
            workflow_id=self._id,
            receipt_code=self._inp.receipt_code,
            stage=c.stage,
            priority=c.priority,
            category=c.category,
            crime_reference=c.crime_reference,
            investigation_reference=c.investigation_reference,
            outcome=c.outcome,
            redirected_to=c.redirected_to,
            team=c.team,
            officer=c.officer,
            flags=list(c.flags),
            overdue=self._overdue(),
            enhanced_rights=c.enhanced_rights,
            deadlines=[d.model_copy() for d in c.deadlines],
            timeline=list(c.timeline),
            tasks=dict(c.tasks),
            assessment=c.assessment,
            intelligence=c.intelligence,
            victim_updates=c.updates_sent,
            runs=c.runs,
            reopenings=c.reopenings,
            update_interval=c.update_interval,
            vps_offered_at=c.vps_offered_at,
            claimed_by=self._holder(),
            claimed_until=c.claimed_until if self._holder() else None,
            owed_letters=[o.model_copy() for o in c.owed_letters],
        )
