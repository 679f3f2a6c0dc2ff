"""The two baselines our case workflow is measured against, in the same run.

One workflow class, ``BaselineCaseWorkflow``, with the case's own messages: the same
updates (``request_details``, ``record_crime``, ``imu_investigate``, ``acknowledge``,
``close``, each with a stage validator and a lock), the same ``details_reply`` signal,
a ``view`` query, and the ``CaseStage`` search attribute set at every change of stage
(the contract asks that of any implementation, and the driver reads it to know when a
case is ready for its next step).

- **naive same-shape**: ``plan`` holds, for each step, one entry per side effect our
  workflow has at that step (read from a real case's history, see ``bench.history``);
  each becomes one ordinary (non-local) activity with an empty body, and every human
  wait has a timer, as ours does.
- **floor**: an empty plan and no timers: only the signals, updates, query and search
  attribute; the engine's own ceiling for this conversation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.common import RawValue, RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.case import (
        Acknowledge,
        ActionResult,
        CloseCase,
        DetailsReply,
        ImuInvestigate,
        RecordCrime,
        RequestDetails,
        Stage,
        Timings,
    )
    from domain.report import Report

CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")

_WINDOW = {
    "request_details": frozenset({Stage.AWAITING_REVIEW, Stage.AWAITING_DETAILS}),
    "record_crime": frozenset({Stage.AWAITING_REVIEW, Stage.AWAITING_DETAILS}),
    "imu_investigate": frozenset({Stage.WITH_IMU}),
    "acknowledge": frozenset({Stage.ALLOCATED}),
    "close": frozenset({Stage.INVESTIGATING}),
}


class BaselineInput(BaseModel):
    """A baseline case: the same report and timings ours gets, and the plan of effects."""

    report: Report
    receipt_code: str
    timings: Timings = Field(default_factory=Timings)
    plan: dict[str, list[str]] = Field(default_factory=dict)
    timers: bool = True


class BaselineView(BaseModel):
    stage: Stage
    done: list[str] = Field(default_factory=list)


@activity.defn(dynamic=True)
async def no_op(args: Sequence[RawValue]) -> None:
    """Every side effect of the naive baseline: registered under any name, does nothing."""


@workflow.defn(name="BaselineCaseWorkflow")
class BaselineCaseWorkflow:
    @workflow.init
    def __init__(self, inp: BaselineInput) -> None:
        self._inp = inp
        self._stage = Stage.RECEIVED
        self._inbox: list[DetailsReply] = []
        self._pending: list[str] = []
        self._done: list[str] = []
        self._lock = asyncio.Lock()
        self._effect = 0

    @workflow.run
    async def run(self, inp: BaselineInput) -> BaselineView:
        await self._effects("start")
        self._set_stage(Stage.AWAITING_REVIEW)
        while self._stage != Stage.CLOSED:
            woken = lambda: bool(self._inbox or self._pending) or self._stage == Stage.CLOSED  # noqa: E731
            try:
                await workflow.wait_condition(
                    woken, timeout=inp.timings.review_deadline if inp.timers else None
                )
            except TimeoutError:
                continue
            while self._inbox:
                self._inbox.pop(0)
                await self._effects("details_reply")
                if self._stage == Stage.AWAITING_DETAILS:
                    self._set_stage(Stage.AWAITING_REVIEW)
            while self._pending:
                step = self._pending.pop(0)
                await self._effects(step)
                self._done.append(step)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.view()

    async def _effects(self, step: str) -> None:
        for name in self._inp.plan.get(step, []):
            self._effect += 1
            await workflow.execute_activity(
                name,
                f"{workflow.info().workflow_id}.{self._effect}",
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
            )

    def _set_stage(self, stage: Stage) -> None:
        self._stage = stage
        workflow.upsert_search_attributes([CASE_STAGE.value_set(stage.value)])

    async def _act(self, step: str, stage: Stage) -> ActionResult:
        async with self._lock:
            if self._stage not in _WINDOW[step]:
                raise ApplicationError(f"{step} not allowed", type="WrongStage")
            await self._effects(step)
            self._set_stage(stage)
            if f"after:{step}" in self._inp.plan:
                self._pending.append(f"after:{step}")
            return ActionResult(receipt_code=self._inp.receipt_code, stage=stage, detail=step)

    def _check(self, step: str) -> None:
        if self._stage not in _WINDOW[step]:
            raise ApplicationError(f"{step} not allowed while {self._stage}", type="WrongStage")

    @workflow.signal
    def details_reply(self, reply: DetailsReply) -> None:
        self._inbox.append(reply)

    @workflow.query
    def view(self) -> BaselineView:
        return BaselineView(stage=self._stage, done=list(self._done))

    @workflow.update
    async def touch(self, action: RequestDetails) -> ActionResult:
        """The floor of one update (``bench.updatefloor``): validated, locked, the stage
        search attribute set, answered; the stage stays, so it can be repeated."""
        async with self._lock:
            self._set_stage(self._stage)
            return ActionResult(
                receipt_code=self._inp.receipt_code, stage=self._stage, detail="touch"
            )

    @touch.validator
    def _check_touch(self, action: RequestDetails) -> None:
        if self._stage == Stage.CLOSED:
            raise ApplicationError("closed", type="WrongStage")

    @workflow.update
    async def request_details(self, action: RequestDetails) -> ActionResult:
        return await self._act("request_details", Stage.AWAITING_DETAILS)

    @request_details.validator
    def _check_request_details(self, action: RequestDetails) -> None:
        self._check("request_details")

    @workflow.update
    async def record_crime(self, action: RecordCrime) -> ActionResult:
        return await self._act("record_crime", Stage.WITH_IMU)

    @record_crime.validator
    def _check_record_crime(self, action: RecordCrime) -> None:
        self._check("record_crime")

    @workflow.update
    async def imu_investigate(self, action: ImuInvestigate) -> ActionResult:
        return await self._act("imu_investigate", Stage.ALLOCATED)

    @imu_investigate.validator
    def _check_imu_investigate(self, action: ImuInvestigate) -> None:
        self._check("imu_investigate")

    @workflow.update
    async def acknowledge(self, action: Acknowledge) -> ActionResult:
        return await self._act("acknowledge", Stage.INVESTIGATING)

    @acknowledge.validator
    def _check_acknowledge(self, action: Acknowledge) -> None:
        self._check("acknowledge")

    @workflow.update
    async def close(self, action: CloseCase) -> ActionResult:
        return await self._act("close", Stage.CLOSED)

    @close.validator
    def _check_close(self, action: CloseCase) -> None:
        self._check("close")
