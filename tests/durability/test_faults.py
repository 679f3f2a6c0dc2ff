"""Faults with real processes: workers killed and terminated, servers stopped mid-flight.

Every test ends by counting what the world holds for its own cases: one email per case
and purpose in the SMTP sink, one outbox row, one reference of each kind, and reference
counters that moved exactly once per case (gapless).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle

from domain.case import ImuClose, RecordCrime, Stage, Timings
from starter.intake import submit
from tests.durability.conftest import Workers, retrying
from tests.durability.ledger import assert_gapless, counter, ledger
from tests.helpers import example, until, wait_stage, wait_view
from whn.devstack.temporal_server import free_port
from whn.settings import Settings
from workflows.case import CaseWorkflow

Handle = WorkflowHandle[Any, Any]


async def _submit(client: Client, task_queue: str, n: int) -> list[Handle]:
    handles = []
    for _ in range(n):
        report = example("ordinary")  # resubmitted as it is until Temporal takes it
        submitted = await retrying(partial(submit, client, report, task_queue=task_queue))
        handles.append(client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id))
    return handles


async def _all_at(handles: list[Handle], stage: Stage, timeout: float = 60) -> None:
    await asyncio.gather(*(wait_stage(h, stage, timeout=timeout) for h in handles))


def _record_crime(handle: Handle) -> Any:
    # A fixed update id per case and action: a caller that retries never acts twice.
    return retrying(
        lambda: handle.execute_update(
            CaseWorkflow.record_crime,
            RecordCrime(actor="handler-1", category="burglary"),
            id=f"record-crime-{handle.id}",
        )
    )


async def _assert_once(pool, mail_sink, handles: list[Handle], purposes: set[str]):  # type: ignore[no-untyped-def]
    ids = [h.id for h in handles]
    book = await ledger(pool, mail_sink, ids)
    assert book.twice() == {}
    for workflow_id in ids:
        assert book.purposes(workflow_id) >= purposes, workflow_id
        for purpose in purposes:
            row = book.outbox[(workflow_id, purpose)]
            assert row["sent_at"] is not None and row["last_error"] is None, dict(row)
    return book


async def _locked_waiters(pool) -> int:  # type: ignore[no-untyped-def]
    return int(
        await pool.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock'
                 AND query ILIKE '%reference_counters%'"""
        )
    )


async def test_sigkill_inside_and_between_activities(
    temporal_client, workers: Workers, task_queue, db_pool, mail_sink
):
    """Worker A dies inside issue_reference (a transaction waiting on the counter's row
    lock); worker B dies between attempts of the email after the CRN was issued; worker C
    finishes every case. One CRN each, gapless, and one email per case and purpose."""
    a = await workers.start()
    handles = await _submit(temporal_client, task_queue, 6)
    await _all_at(handles, Stage.AWAITING_REVIEW)

    year = datetime.now(UTC).year
    before = await counter(db_pool, "crime", year)
    async with db_pool.acquire() as conn:
        lock = conn.transaction()
        await lock.start()
        await conn.execute(
            "SELECT value FROM reference_counters WHERE kind = 'crime' AND year = $1 FOR UPDATE",
            year,
        )
        updates = [asyncio.create_task(_record_crime(h)) for h in handles]

        async def all_inside() -> bool:
            return await _locked_waiters(db_pool) >= len(handles)

        await until(all_inside, what="every record-crime waiting inside issue_reference")
        await a.kill()
        await lock.rollback()

    # B's mail server is down: each case issues its CRN, then waits between email attempts.
    b = await workers.start(smtp_port=free_port())
    ids = [h.id for h in handles]

    async def all_waiting_on_mail() -> bool:
        rows = await db_pool.fetch(
            """SELECT attempts FROM notifications
               WHERE workflow_id = ANY($1) AND purpose = 'crime-recorded' AND sent_at IS NULL""",
            ids,
        )
        return len(rows) == len(ids) and all(r["attempts"] >= 1 for r in rows)

    await until(all_waiting_on_mail, what="every crime-recorded email failing on worker B")

    async def between_attempts() -> bool:
        # Killed only while no attempt is running on B: an attempt B had started would
        # wait out the email's 3-minute start-to-close timeout before anyone retried it.
        soon = datetime.now(UTC) + timedelta(seconds=1.5)
        for handle in handles:
            pending = (await handle.describe()).raw_description.pending_activities
            if not any(p.activity_type.name.startswith("notify") for p in pending):
                return False
            for p in pending:
                if (
                    p.state != PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
                    or p.attempt < 2
                    or p.next_attempt_schedule_time.ToDatetime(UTC) < soon
                ):
                    return False
        return True

    await until(
        between_attempts, within=120, what="every email on worker B waiting between attempts"
    )
    await b.kill()

    await workers.start()
    results = await asyncio.wait_for(asyncio.gather(*updates), 90)
    for handle in handles:
        await wait_view(handle, lambda v: v.assessment is not None, timeout=60)
        await handle.execute_update(
            CaseWorkflow.imu_close, ImuClose(actor="imu-1", reason="no-witnesses")
        )
        assert (await handle.result()).stage == Stage.CLOSED_BY_IMU

    book = await _assert_once(
        db_pool,
        mail_sink,
        handles,
        {"receipt", "crime-recorded", "victim-support-referral", "imu-closed"},
    )
    after = await counter(db_pool, "crime", year)
    assert after - before == len(handles)
    assert_gapless(book, "crime", before, after)
    for handle, result in zip(handles, results, strict=True):
        assert book.reference_of[(handle.id, "crime")] == result.reference
        assert book.outbox[(handle.id, "crime-recorded")]["attempts"] >= 2  # failed on B
        assert book.events[(handle.id, "crime_recorded")] == 1


async def test_temporal_restart_mid_flight(
    temporal, temporal_client, workers, task_queue, db_pool, mail_sink
):
    """The dev server stops while CRNs are being issued and emailed, and intake keeps
    submitting; after the restart every case carries on to where it was going."""
    worker = await workers.start()
    handles = await _submit(temporal_client, task_queue, 6)
    await _all_at(handles, Stage.AWAITING_REVIEW)
    year = datetime.now(UTC).year
    before = await counter(db_pool, "crime", year)

    updates = [asyncio.create_task(_record_crime(h)) for h in handles]
    ids = {h.id for h in handles}
    await mail_sink.await_for(
        lambda m: m["X-WHN-Case"] in ids and m["X-WHN-Purpose"] == "crime-recorded"
    )
    await temporal.stop()
    # Intake goes on submitting (and resubmitting) while Temporal is away.
    late = asyncio.create_task(_submit(temporal_client, task_queue, 3))
    await asyncio.sleep(3)
    await temporal.start()

    results = await asyncio.wait_for(asyncio.gather(*updates), 90)
    late_handles = await asyncio.wait_for(late, 90)
    await _all_at(late_handles, Stage.AWAITING_REVIEW)
    for handle in handles:
        view = await wait_view(handle, lambda v: v.assessment is not None, timeout=60)
        assert view.stage == Stage.WITH_IMU

    assert worker.proc.poll() is None  # the same worker rode out the restart

    book = await _assert_once(
        db_pool, mail_sink, handles, {"receipt", "crime-recorded", "victim-support-referral"}
    )
    await _assert_once(db_pool, mail_sink, late_handles, {"receipt"})
    after = await counter(db_pool, "crime", year)
    assert_gapless(book, "crime", before, after)
    assert [r.reference for r in results] == [book.reference_of[(h.id, "crime")] for h in handles]


@pytest.mark.slow
async def test_postgres_down_for_30_seconds(
    postgres_server, workers, task_queue, temporal_client, db_pool, mail_sink
):
    """PostgreSQL stops for 30 s while staff act and new reports arrive; the activities
    retry, and every case reaches its stage afterwards with nothing recorded twice."""
    await workers.start()
    first = await _submit(temporal_client, task_queue, 4)
    await _all_at(first, Stage.AWAITING_REVIEW)
    year = datetime.now(UTC).year
    before = await counter(db_pool, "crime", year)

    await postgres_server.stop()
    loop = asyncio.get_running_loop()
    stopped_at = loop.time()
    try:
        updates = [asyncio.create_task(_record_crime(h)) for h in first]
        second = await _submit(temporal_client, task_queue, 4)
        await asyncio.sleep(max(0.0, 30 - (loop.time() - stopped_at)))
        # Nothing could be written: every action is still waiting for the case store.
        assert not any(u.done() for u in updates)
    finally:
        await postgres_server.start()

    results = await asyncio.wait_for(asyncio.gather(*updates), 120)
    await _all_at(second, Stage.AWAITING_REVIEW, timeout=120)
    for handle in first:
        await wait_view(handle, lambda v: v.assessment is not None, timeout=60)

    book = await _assert_once(
        db_pool, mail_sink, first, {"receipt", "crime-recorded", "victim-support-referral"}
    )
    await _assert_once(db_pool, mail_sink, second, {"receipt"})
    after = await counter(db_pool, "crime", year)
    assert_gapless(book, "crime", before, after)
    assert [r.reference for r in results] == [book.reference_of[(h.id, "crime")] for h in first]


async def test_smtp_down_emails_wait_in_the_outbox(
    workers, task_queue, temporal_client, db_pool, mail_sink
):
    """With the mail server down, receipts wait in the outbox with their error; each is
    sent exactly once when it is back, and the cases move on."""
    await workers.start()
    mail_sink.stop()
    try:
        handles = await _submit(temporal_client, task_queue, 3)
        ids = [h.id for h in handles]

        async def waiting() -> list[Any]:
            rows = await db_pool.fetch(
                """SELECT * FROM notifications WHERE workflow_id = ANY($1)
                   AND purpose = 'receipt' AND sent_at IS NULL AND attempts >= 2
                   AND last_error IS NOT NULL""",
                ids,
            )
            return rows if len(rows) == len(ids) else []

        rows = await until(waiting, what="receipts retried in the outbox")
        assert {r["last_error"] for r in rows} <= {"SMTPConnectError", "ConnectionRefusedError"}
        for handle in handles:
            assert (await handle.query(CaseWorkflow.view)).stage == Stage.RECEIVED
    finally:
        mail_sink.start()

    await _all_at(handles, Stage.AWAITING_REVIEW)
    book = await _assert_once(db_pool, mail_sink, handles, {"receipt"})
    for handle in handles:
        assert book.emails[(handle.id, "receipt")] == 1
        assert book.outbox[(handle.id, "receipt")]["attempts"] >= 3


class _SlowSmtp:
    """A TCP relay to the sink that holds each connection a while: an email in flight."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.port = free_port()
        self._target = target_port
        self._delay = delay
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> _SlowSmtp:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await asyncio.sleep(self._delay)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_sigterm_drains_in_flight_work(
    workers, task_queue, temporal_client, db_pool, mail_sink
):
    """SIGTERM while the receipt email is being sent: the worker finishes the send, records
    it, completes the workflow task that sent it and exits 0 within its graceful timeout
    (20 s), on the event loop the worker ships with (WHN_EVENT_LOOP's default)."""
    async with _SlowSmtp(mail_sink.port, delay=3) as slow:
        worker = await workers.start(smtp_port=slow.port)
        shipped = Settings.model_fields["event_loop"].default
        assert f"(event loop: {shipped})" in worker.output()
        (handle,) = await _submit(temporal_client, task_queue, 1)
        await until(lambda: slow.connections > 0, what="the receipt email in flight")
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        code = await worker.terminate(within=25)
        assert code == 0, worker.output()
        assert loop.time() - signalled < 20
        assert "draining in-flight work" in worker.output()

    row = await db_pool.fetchrow(
        "SELECT sent_at, attempts FROM notifications WHERE workflow_id = $1 AND purpose = 'receipt'",
        handle.id,
    )
    assert row["sent_at"] is not None and row["attempts"] == 1
    events = [e async for e in handle.fetch_history_events()]
    # Patch letters-local: the receipt goes by a local activity, its marker recorded by
    # the task that ran it, completed by the worker that was told to stop (pid@host).
    [marker] = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and b'"activity_type":"notify"' in e.SerializeToString()
    ]
    assert not [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    by_id = {e.event_id: e for e in events}
    task = by_id[marker.marker_recorded_event_attributes.workflow_task_completed_event_id]
    identity = task.workflow_task_completed_event_attributes.identity
    assert identity.startswith(f"{worker.proc.pid}@"), identity
    timed_out = (
        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    )
    assert not [e for e in events if e.event_type in timed_out]

    await workers.start()  # a fresh worker takes the case on from there
    await wait_stage(handle, Stage.AWAITING_REVIEW, timeout=60)
    await _assert_once(db_pool, mail_sink, [handle], {"receipt"})


async def test_a_local_letter_run_again_after_a_crash_mid_task_is_sent_once(
    workers, task_queue, temporal_client, db_pool, mail_sink
):
    """Patch letters-local: the receipt goes by a local activity inside the case's first
    workflow task. SIGKILL once it has gone and is recorded sent, before the task completes
    (the commit after it waits on a lock): the next worker runs the whole task again, the
    receipt's local activity too, which finds the outbox row sent and sends nothing."""
    async with _SlowSmtp(mail_sink.port, delay=2) as slow:
        worker = await workers.start(smtp_port=slow.port)
        (handle,) = await _submit(temporal_client, task_queue, 1)
        await until(lambda: slow.connections > 0, what="the receipt email in flight")
        async with db_pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE case_events IN EXCLUSIVE MODE")  # the commit waits

            async def sent() -> bool:
                return bool(
                    await db_pool.fetchval(
                        """SELECT sent_at IS NOT NULL FROM notifications
                           WHERE workflow_id = $1 AND purpose = 'receipt'""",
                        handle.id,
                    )
                )

            await until(sent, what="the receipt sent and recorded")
            await mail_sink.await_for(lambda m: m["X-WHN-Case"] == handle.id)
            await worker.kill()
        events = [e async for e in handle.fetch_history_events()]
        assert not [e for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]

    await workers.start()
    await wait_stage(handle, Stage.AWAITING_REVIEW, timeout=60)
    book = await _assert_once(db_pool, mail_sink, [handle], {"receipt"})
    assert book.emails[(handle.id, "receipt")] == 1
    assert book.outbox[(handle.id, "receipt")]["attempts"] == 1  # the re-run sent nothing
    events = [e async for e in handle.fetch_history_events()]
    kinds = [e.event_type for e in events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT in kinds  # the task the kill lost
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds


async def test_case_whose_first_task_was_slow_survives_a_replay(
    workers, task_queue, temporal_client, db_pool
):
    """The case store is locked while a case opens, so its first workflow task runs past
    the 8 s heartbeat; the review deadline then passes (escalation), the worker dies, and
    the next worker must replay the case to the same decisions.

    Found by the soak: received_at was workflow.info().start_time, the first activation's
    time, which is later on replay after such a task; the deadline moved and the case
    failed replay (non-determinism) for good. It is now the workflow's start time."""
    worker = await workers.start()
    timings = Timings(review_deadline=timedelta(seconds=15), crn_deadline=timedelta(minutes=5))
    async with db_pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE cases IN EXCLUSIVE MODE")  # open_case waits on it
        submitted = await submit(
            temporal_client, example("ordinary"), task_queue=task_queue, timings=timings
        )
        await asyncio.sleep(10)
    handle = temporal_client.get_workflow_handle_for(CaseWorkflow.run, submitted.workflow_id)
    await wait_view(handle, lambda v: any(e.event == "escalated" for e in v.timeline), timeout=60)

    await worker.kill()
    await workers.start()  # has nothing cached: replays the case from its history
    view = await wait_view(handle, lambda v: v.stage == Stage.AWAITING_REVIEW, timeout=20)
    assert [e.event for e in view.timeline].count("escalated") == 1
