"""Every letter of every path, as the workflow orders it, renders with no placeholder empty.

The cases below walk every path of the process (the paths of
``scripts/record_histories.py``, plus victim updates) on one time-skipping server; the
letters are the mail activity's inputs as the worker ran it (the facts the workflow
passed; a letter sent by a local activity has no input in the history) and rendered with ``domain.letters`` the way the mail
activity does. Between them the paths must order every letter of ``LETTERS``, so a new
letter without a path here fails too.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from functools import partial
from operator import contains
from typing import Any

from temporalio import activity
from temporalio import client as temporal_client
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from domain.case import (
    AckEmergency,
    Acknowledge,
    CloseCase,
    DetailsReply,
    ImuClose,
    ImuInvestigate,
    NotACrime,
    RecordCrime,
    RecordStep,
    Redirect,
    Reopen,
    RequestDetails,
    Stage,
)
from domain.effects import Notify
from domain.letters import LETTERS, fill, render
from domain.victims import RecordSuspectEvent, SetUpdates, SuspectEvent
from starter.intake import submit
from starter.reopen import reopen
from tests.helpers import example, skip_time, until, wait_stage, wait_view
from tests.workflows.conftest import FAST
from worker import build_worker
from workflows.case import CaseWorkflow

Handle = WorkflowHandle[Any, Any]

# Letters no case path orders: the morning summary comes from its own workflow
# (tests/workflows/test_summary.py); reopening, suspect events and agreed updates are
# written (domain.victims) but their actions are not in the workflow yet. When one is,
# its path goes above and it comes off this list (the test says so).
NOT_FROM_A_CASE_PATH = {
    "supervisor_daily_summary",
}

# Placeholders whose wording is rightly empty for some facts: no Victim Support line
# when nobody was referred, no "(REPEAT n)" on the first alert.
MAY_BE_EMPTY = {"support_line", "attempt_label"}


async def _start(client, queue, name: str = "ordinary", stage: Stage = Stage.AWAITING_REVIEW):
    submitted = await submit(client, example(name), task_queue=queue, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, stage)
    return handle


async def _to_imu(handle: Handle) -> None:
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    await wait_view(handle, lambda v: v.assessment is not None)


async def _investigated(client, queue) -> Handle:
    h = await _start(client, queue)
    await _to_imu(h)
    await h.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await h.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    await wait_view(h, lambda v: v.intelligence is not None)
    await h.execute_update(
        CaseWorkflow.record_step, RecordStep(actor="officer-1", step="cctv", note="Requested.")
    )
    await h.execute_update(
        CaseWorkflow.close, CloseCase(actor="officer-1", outcome=1, note="Charged.")
    )
    return h


async def _details_reply(client, queue) -> Handle:
    h = await _start(client, queue)
    await h.execute_update(
        CaseWorkflow.request_details, RequestDetails(actor="handler-1", question="Which door?")
    )
    await h.signal(CaseWorkflow.details_reply, DetailsReply(text="The back door."))
    await wait_stage(h, Stage.AWAITING_REVIEW)
    await h.execute_update(
        CaseWorkflow.not_a_crime,
        NotACrime(actor="handler-1", advice="Speak to your insurer.", agencies=["Citizens Advice"]),
    )
    return h


async def _not_a_crime_no_agencies(client, queue) -> Handle:
    h = await _start(client, queue)
    await h.execute_update(
        CaseWorkflow.not_a_crime, NotACrime(actor="handler-1", advice="A civil matter.")
    )
    return h


async def _redirected_by_handler(client, queue) -> Handle:
    h = await _start(client, queue)
    await h.execute_update(
        CaseWorkflow.redirect,
        Redirect(actor="handler-1", agency="Norfolk Constabulary", reason="In King's Lynn."),
    )
    return h


async def _redirected_by_screening(client, queue) -> Handle:
    return await _start(client, queue, "fraud", Stage.REDIRECTED)


async def _imu_close(client, queue) -> Handle:
    h = await _start(client, queue)
    await _to_imu(h)
    await h.execute_update(
        CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason="victim-no-statement")
    )
    return h


async def _no_investigation(client, queue) -> Handle:
    h = await _start(client, queue)
    await h.execute_update(
        CaseWorkflow.record_crime,
        RecordCrime(actor="handler-1", category="other-theft", no_investigation=True, outcome=18),
    )
    return h


async def _emergency_acknowledged(client, queue) -> Handle:
    h = await _start(client, queue, "emergency", Stage.EMERGENCY)
    await h.execute_update(CaseWorkflow.ack_emergency, AckEmergency(actor="control-1"))
    return h


class _LetterLog(temporal_client.Interceptor, Interceptor):
    """Every letter the mail activity was asked for, by case (whatever way it ran)."""

    def __init__(self) -> None:
        self.letters: dict[str, dict[str, Notify]] = defaultdict(dict)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        log = self

        class _Seen(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                if activity.info().activity_type.startswith("notify"):
                    arg = input.args[0]
                    for notify in arg if isinstance(arg, list) else [arg]:
                        log.letters[notify.workflow_id].setdefault(notify.purpose, notify)
                return await super().execute_activity(input)

        return _Seen(next)


LOG = _LetterLog()


def _letters_of(handle: Handle) -> list[Notify]:
    """The letters ``handle``'s case ordered (once per purpose)."""
    return list(LOG.letters[handle.id].values())


async def _after_recording(client, queue, dsn) -> list[Handle]:
    """Updates agreed, every Right 6 event, closed and reopened; a not-a-crime reopened."""
    h = await _start(client, queue)
    await _to_imu(h)
    await h.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await h.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    await h.execute_update(
        CaseWorkflow.set_updates, SetUpdates(actor="officer-1", every=timedelta(days=7))
    )
    for event in SuspectEvent:
        await h.execute_update(
            CaseWorkflow.suspect_event, RecordSuspectEvent(actor="officer-1", event=event)
        )
    await h.execute_update(
        CaseWorkflow.close, CloseCase(actor="officer-1", outcome=1, note="Charged.")
    )
    other = await _start(client, queue)
    await other.execute_update(
        CaseWorkflow.not_a_crime, NotACrime(actor="handler-1", advice="A civil matter.")
    )
    runs = []
    for case in (h, other):
        await case.result()
        closed = (await case.describe()).run_id
        runs.append(client.get_workflow_handle(case.id, run_id=closed))
        code = case.id.removeprefix("case-")
        await reopen(client, code, Reopen(actor="supervisor-1", reason="New."), database_url=dsn)
        # The reopening's letter goes after its commit, once the reopening has answered.
        await until(partial(contains, LOG.letters[case.id], "reopened-r1"), what="its letter")
        runs.append(client.get_workflow_handle(case.id))
    return runs


async def test_every_letter_of_every_path_renders_with_no_placeholder_empty(
    client, db_pool, settings, task_queue, time_env, pg_dsn
):
    queue = task_queue
    watched = Client(**{**client.config(), "interceptors": [LOG]})
    async with build_worker(watched, db_pool, settings, task_queue=queue):
        await _every_path(client, queue, time_env, pg_dsn)


async def _every_path(client, queue, time_env, pg_dsn) -> None:  # type: ignore[no-untyped-def]
    # Paths without a timer, side by side.
    handles = list(
        await asyncio.gather(
            _investigated(client, queue),
            _details_reply(client, queue),
            _not_a_crime_no_agencies(client, queue),
            _redirected_by_handler(client, queue),
            _redirected_by_screening(client, queue),
            _imu_close(client, queue),
            _no_investigation(client, queue),
            _emergency_acknowledged(client, queue),
        )
    )
    # An emergency nobody confirms: re-alerted, a supervisor told; then confirmed.
    unconfirmed = await _start(client, queue, "emergency", Stage.EMERGENCY)
    await skip_time(time_env, FAST.emergency_ack_deadline + timedelta(minutes=1))
    await wait_view(unconfirmed, lambda v: sum(e.event == "escalated" for e in v.timeline) >= 1)
    await unconfirmed.execute_update(CaseWorkflow.ack_emergency, AckEmergency(actor="control-1"))
    handles.append(unconfirmed)
    # The timers of weeks: a details request reminded and lapsed, the review deadline
    # missed (a supervisor told), an investigation's victim update.
    lapsing = await _start(client, queue)
    await lapsing.execute_update(
        CaseWorkflow.request_details, RequestDetails(actor="handler-1", question="When?")
    )
    investigating = await _start(client, queue)
    await _to_imu(investigating)
    await investigating.execute_update(CaseWorkflow.imu_investigate, ImuInvestigate(actor="imu-1"))
    await investigating.execute_update(
        CaseWorkflow.acknowledge, Acknowledge(actor="officer-1", officer="officer-1")
    )
    await skip_time(time_env, FAST.update_interval + timedelta(hours=1))
    await wait_view(lapsing, lambda v: "details_not_received" in v.flags)
    await wait_view(investigating, lambda v: v.victim_updates >= 1)
    handles += [lapsing, investigating, *await _after_recording(client, queue, pg_dsn)]

    ordered: dict[str, int] = {}
    for handle in handles:
        for notify in _letters_of(handle):
            facts = {"force_name": "Cambridgeshire Constabulary", **notify.context}
            values = fill(notify.letter, facts)
            empty = [k for k, v in values.items() if not v.strip() and k not in MAY_BE_EMPTY]
            assert not empty, f"{notify.purpose}: empty {empty}"
            subject, body = render(notify.letter, facts)
            assert "$" not in subject + body, notify.purpose
            ordered[notify.letter] = ordered.get(notify.letter, 0) + 1
    unordered = set(LETTERS) - set(ordered) - NOT_FROM_A_CASE_PATH
    assert not unordered, f"letters no path ordered: {unordered}"
    assert not set(ordered) & NOT_FROM_A_CASE_PATH, "now ordered by a path: off the list"
