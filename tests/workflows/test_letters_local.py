"""Letters under patch ``letters-local``: in place by a local activity, a staff
action's together in one activity; each once.

The receipt is the letter every case sends in place. With the mail server up it costs
the history one marker, not an activity and a workflow task; a local activity that runs
again (its answer lost, as after a worker lost mid-task) finds the outbox row sent and
sends nothing (tests/durability/test_idempotency.py, with the real sink). Here the mail
server is down: the letter falls back to the activity after one local attempt, an outage
of half an hour adds no event to the history while the activity retries, and the letter
goes once the server is back. Recording a crime orders two letters: one ``notify_all``;
when the mail server refuses one of them (a real SMTP server answering 550 for it), the
other is sent and meets its deadline, and only the refused one is sent again.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.api.enums.v1 import EventType

from domain.case import RecordCrime, Stage
from starter.intake import submit
from tests.helpers import example, skip_time, until, wait_stage, wait_view
from tests.workflows.conftest import FAST
from whn.devstack.mailsink import MailSink, _KeepHandler
from whn.devstack.temporal_server import free_port
from worker import build_worker
from workflows.case import CaseWorkflow


async def _events(handle) -> Counter[str]:  # type: ignore[no-untyped-def]
    history = await handle.fetch_history()
    return Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events)


async def _attempts(db_pool, workflow_id: str) -> int:  # type: ignore[no-untyped-def]
    attempts = await db_pool.fetchval(
        "SELECT attempts FROM notifications WHERE workflow_id = $1 AND purpose = 'receipt'",
        workflow_id,
    )
    return int(attempts or 0)


async def test_the_receipt_goes_by_a_local_activity(client, case_worker, mail_sink):
    submitted = await submit(client, example("ordinary"), task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    await mail_sink.await_for(lambda m: m["X-WHN-Case"] == handle.id)
    events = await _events(handle)
    assert events["ACTIVITY_TASK_SCHEDULED"] == 0  # sent from the case's first task
    # Patch receipt-opens-case: the receipt's local activity also opened the case and
    # screened it; Step 1 is that one and its commit.
    assert _local_activities(await handle.fetch_history()) == ["notify", "commit"]


async def test_mail_server_down_step_1_opens_and_screens_the_case_without_it(
    client, db_pool, settings, task_queue
):
    down = settings.model_copy(update={"smtp_port": free_port()})
    async with build_worker(client, db_pool, down, task_queue=task_queue):
        submitted = await submit(client, example("ordinary"), task_queue=task_queue, timings=FAST)
        handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
        await until(lambda: _fell_back(handle), what="the receipt handed to the activity")
        history = await handle.fetch_history()
        # One local attempt of the receipt with the opening; then the opening and
        # screening alone, and the receipt left to the activity (nothing is kept to
        # commit yet: the case is received until it goes).
        assert _local_activities(history) == ["notify", "open_and_screen"]
        assert _activities(history) == ["notify"]
        stage = await db_pool.fetchval(
            "SELECT stage FROM cases WHERE workflow_id = $1", submitted.workflow_id
        )
        assert stage == Stage.RECEIVED.value


async def test_mail_server_down_the_letter_waits_in_the_activity_and_history_stays_small(
    client, db_pool, settings, task_queue, time_env, tmp_path: Path
):
    port = free_port()  # nothing listens here yet: every connection is refused
    down = settings.model_copy(update={"smtp_port": port})
    async with build_worker(client, db_pool, down, task_queue=task_queue):
        submitted = await submit(client, example("ordinary"), task_queue=task_queue, timings=FAST)
        handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)

        # One local attempt, then the activity's.
        await until(lambda: _attempts(db_pool, handle.id), what="a refused attempt")
        await until(lambda: _fell_back(handle), what="the receipt handed to the activity")
        at_fallback = await _events(handle)
        assert at_fallback["ACTIVITY_TASK_SCHEDULED"] == 1

        # Half an hour down: the activity retries (at most a minute apart), the history
        # does not grow.
        await skip_time(time_env, timedelta(minutes=30))
        tried = await _attempts(db_pool, handle.id)
        assert tried >= 4, tried
        assert await _events(handle) == at_fallback

        sink = MailSink(tmp_path / "mail", port=port)
        sink.start()
        try:
            await skip_time(time_env, timedelta(minutes=2))  # the next retry finds it up
            await wait_stage(handle, Stage.AWAITING_REVIEW, timeout=30)
            [receipt] = [m for m in sink.messages() if m["X-WHN-Case"] == handle.id]
            assert receipt["X-WHN-Purpose"] == "receipt"
        finally:
            sink.stop()
        after = await _events(handle)
        added = sum(after.values()) - sum(at_fallback.values())
        # The activity's start and completion, the task its result wakes, what follows.
        assert after["ACTIVITY_TASK_COMPLETED"] == 1
        assert added <= 12, after
        print(f"outage of 32 min: {sum(after.values())} events ({added} after the fallback)")


async def _fell_back(handle) -> bool:  # type: ignore[no-untyped-def]
    return (await _events(handle))["ACTIVITY_TASK_SCHEDULED"] == 1


def _local_activities(history: Any) -> list[str]:
    return [
        json.loads(attrs.details["data"].payloads[0].data)["activity_type"]
        for e in history.events
        if (attrs := e.marker_recorded_event_attributes).marker_name == "core_local_activity"
    ]


def _activities(history: Any) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def test_a_staff_actions_letters_go_in_one_activity(client, case_worker, mail_sink):
    submitted = await submit(client, example("ordinary"), task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    await handle.execute_update(
        CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
    )
    view = await wait_view(handle, lambda v: sum(e.event == "letter_sent" for e in v.timeline) == 2)
    met = {d.name for d in view.deadlines if d.met_at is not None}
    assert {"crn_or_explanation", "victim_support_referral"} <= met
    assert _activities(await handle.fetch_history()) == ["notify_all"]
    purposes = Counter(
        m["X-WHN-Purpose"] for m in mail_sink.messages() if m["X-WHN-Case"] == handle.id
    )
    assert purposes == {"receipt": 1, "crime-recorded": 1, "victim-support-referral": 1}


class _Refusing(_KeepHandler):
    """The sink's handler, answering 550 for ``address`` the first ``times`` times."""

    def __init__(self, directory: Path, address: str, times: int) -> None:
        super().__init__(directory)
        self.address, self.left = address, times

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == self.address and self.left > 0:
            self.left -= 1
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_letter_refused_in_the_batch_is_sent_again_alone(
    client, db_pool, settings, task_queue, time_env, tmp_path: Path
):
    (tmp_path / "mail").mkdir()
    refusing = _Refusing(tmp_path / "mail", settings.victim_support_email, times=2)
    server = Controller(refusing, hostname="127.0.0.1", port=free_port())
    server.start()
    sink = MailSink(tmp_path / "mail")  # reads what the refusing server kept
    try:
        picky = settings.model_copy(update={"smtp_port": server.port})
        async with build_worker(client, db_pool, picky, task_queue=task_queue):
            submitted = await submit(
                client, example("ordinary"), task_queue=task_queue, timings=FAST
            )
            handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
            await wait_stage(handle, Stage.AWAITING_REVIEW)
            await handle.execute_update(
                CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
            )
            crn = await wait_view(
                handle,
                lambda v: any(d.name == "crn_or_explanation" and d.met_at for d in v.deadlines),
            )
            assert not any(d.name == "victim_support_referral" and d.met_at for d in crn.deadlines)
            await skip_time(time_env, timedelta(seconds=5))  # the lone letter's retry
            await wait_view(
                handle,
                lambda v: any(
                    d.name == "victim_support_referral" and d.met_at for d in v.deadlines
                ),
            )
            history = await handle.fetch_history()
    finally:
        server.stop()
    assert _activities(history) == ["notify_all", "notify"]
    purposes = Counter(m["X-WHN-Purpose"] for m in sink.messages() if m["X-WHN-Case"] == handle.id)
    assert purposes == {"receipt": 1, "crime-recorded": 1, "victim-support-referral": 1}
    attempts = dict(
        await db_pool.fetch(
            "SELECT purpose, attempts FROM notifications WHERE workflow_id = $1", handle.id
        )
    )
    assert attempts["crime-recorded"] == 1  # sent once, never tried again
    assert attempts["victim-support-referral"] == 3  # refused twice, then sent


async def _stored(db_pool, workflow_id: str) -> tuple[list[str], bool, str]:  # type: ignore[no-untyped-def]
    """The case store's events, overdue mark and review deadline state for a case."""
    events = [
        r["event"]
        for r in await db_pool.fetch(
            "SELECT event FROM case_events WHERE workflow_id = $1 ORDER BY id", workflow_id
        )
    ]
    overdue = await db_pool.fetchval(
        "SELECT overdue FROM cases WHERE workflow_id = $1", workflow_id
    )
    state = await db_pool.fetchval(
        "SELECT state FROM case_deadlines WHERE workflow_id = $1"
        " AND name = 'crime_recording_decision'",
        workflow_id,
    )
    return events, overdue, state


async def test_an_escalation_letter_writes_what_the_case_kept(
    client, case_worker, mail_sink, time_env, db_pool
):
    """Patch letters-carry-commit: the missed deadline's escalation is recorded before its
    letter and written by the letter's local activity; no commit of its own after it."""
    submitted = await submit(client, example("ordinary"), task_queue=case_worker, timings=FAST)
    handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_stage(handle, Stage.AWAITING_REVIEW)
    await skip_time(time_env, FAST.review_deadline + timedelta(minutes=1))
    await mail_sink.await_for(
        lambda m: m["X-WHN-Case"] == handle.id and m["X-WHN-Letter"] == "supervisor_escalation"
    )

    async def escalated() -> bool:
        events, _, _ = await _stored(db_pool, handle.id)
        return bool(events) and events[-1] == "escalated"

    await until(escalated, what="the escalation in the case store")
    events, overdue, state = await _stored(db_pool, handle.id)
    assert events.count("escalated") == 1
    assert overdue is True and state == "missed"
    # Step 1's two, then the escalation's letter alone.
    assert _local_activities(await handle.fetch_history()) == ["notify", "commit", "notify"]


async def test_mail_server_down_an_escalation_is_committed_before_its_letter_waits(
    client, db_pool, settings, task_queue, time_env, tmp_path: Path
):
    """The letter's one local attempt fails: what it carried is kept again and committed
    by the case store, and the letter goes to the activity."""
    port = free_port()
    sink = MailSink(tmp_path / "mail", port=port)
    sink.start()  # up for the receipt, down by the time the review deadline passes
    up = settings.model_copy(update={"smtp_port": port})
    async with build_worker(client, db_pool, up, task_queue=task_queue):
        submitted = await submit(client, example("ordinary"), task_queue=task_queue, timings=FAST)
        handle = client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
        await wait_stage(handle, Stage.AWAITING_REVIEW)
        sink.stop()
        await skip_time(time_env, FAST.review_deadline + timedelta(minutes=1))

        async def escalated() -> bool:
            events, _, _ = await _stored(db_pool, handle.id)
            return "escalated" in events

        await until(escalated, what="the escalation in the case store")
        events, overdue, state = await _stored(db_pool, handle.id)
        assert events.count("escalated") == 1
        assert overdue is True and state == "missed"
        history = await handle.fetch_history()
        # After Step 1: the escalation's local attempt, then its commit; the letter waits
        # in the activity.
        assert _local_activities(history) == ["notify", "commit", "notify", "commit"]
        assert _activities(history) == ["notify"]
