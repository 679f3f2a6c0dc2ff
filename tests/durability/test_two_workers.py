"""Scaling out on one machine: two worker processes on one task queue, one killed mid-run.

Two ``python -m worker`` processes (the ``whn-worker`` of the compose stack, configured
from the environment alone) poll one task queue of the dev server. Twenty cases reach
review, then a call handler records a crime on each, a few at a time; after the first
few, the worker holding most cases is killed with SIGKILL: no drain, no goodbye. Its
cached cases, its half-done updates and activities, move to the survivor once Temporal's
timeouts notice (sticky queue 10 s, workflow task 10 s, activity start-to-close 10 to 60 s;
an email caught mid-send waits out its 3-minute start-to-close, see ``CaseLetters._deliver``).

Every case must end ``with_imu`` with exactly one crime reference and exactly one
crime-recorded notification, and the survivor must have finished cases the victim began.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.case import RecordCrime, Stage
from starter.intake import submit
from tests.helpers import example, until, wait_stage
from whn.devstack import _process
from workflows.case import CaseWorkflow

ROOT = Path(__file__).resolve().parents[2]
CASES = 20
IN_FLIGHT = 5  # record-crime updates running at once
KILL_AFTER = 5  # completed updates before the kill

pytestmark = pytest.mark.timeout(720)


class WorkerProcess:
    """One ``python -m worker`` child, its log in a file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._out = self.log.open("wb")
        self.proc = _process.spawn(
            [sys.executable, "-m", "worker"], output=self._out, env=env, cwd=ROOT
        )

    @property
    def identity_prefix(self) -> str:
        return f"{self.proc.pid}@"  # the SDK's default identity is pid@hostname

    def tail(self) -> str:
        return f"--- {self.name} (pid {self.proc.pid}) ---\n{_process.tail(self.log, 30)}"

    async def stop(self) -> None:
        if self.proc.poll() is None:
            await _process.terminate(self.proc, name=self.name, sig=signal.SIGTERM, grace=30)
        self._out.close()


@pytest.fixture
async def two_workers(
    dev_server: Any, pg_dsn: str, mail_sink: Any, task_queue: str, tmp_path: Path
) -> AsyncIterator[list[WorkerProcess]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHN_")}
    if "WHN_CODEC_KEYS" in os.environ:  # the suite's payload keys, as the clients use them
        env["WHN_CODEC_KEYS"] = os.environ["WHN_CODEC_KEYS"]
    env |= {
        "WHN_TEMPORAL_ADDRESS": dev_server.address,
        "WHN_TEMPORAL_NAMESPACE": dev_server.namespace,
        "WHN_TASK_QUEUE": task_queue,
        "WHN_DATABASE_URL": pg_dsn,
        "WHN_SMTP_HOST": mail_sink.host,
        "WHN_SMTP_PORT": str(mail_sink.port),
        "WHN_DATA_DIR": str(tmp_path / "whn"),
        "WHN_DB_POOL_SIZE": "5",
    }
    started = [WorkerProcess(f"worker-{i}", env, tmp_path) for i in (1, 2)]
    try:
        yield started
    finally:
        for worker in started:
            await worker.stop()


async def test_two_workers_one_killed_every_case_completed_once(
    two_workers: list[WorkerProcess], dev_client: Client, db_pool: Any, task_queue: str
) -> None:
    try:
        await _run(two_workers, dev_client, db_pool, task_queue)
    except BaseException:
        print("\n".join(w.tail() for w in two_workers))
        raise


async def _run(workers: list[WorkerProcess], client: Client, db_pool: Any, task_queue: str) -> None:
    await _wait_for_pollers(client, task_queue, workers)
    submitted = await asyncio.gather(
        *(submit(client, example("ordinary"), task_queue=task_queue) for _ in range(CASES))
    )
    handles = [client.get_workflow_handle_for(CaseWorkflow.run, s.workflow_id) for s in submitted]
    try:
        await asyncio.gather(*(wait_stage(h, Stage.AWAITING_REVIEW, timeout=60) for h in handles))

        # Each case is cached on the worker that ran it (its sticky queue): the victim is
        # the worker holding the most, so the kill strands as much as it can.
        owner = {h.id: (await _identities(h))[-1] for h in handles}
        held = {
            w.name: sum(o.startswith(w.identity_prefix) for o in owner.values()) for w in workers
        }
        victim, survivor = sorted(workers, key=lambda w: held[w.name], reverse=True)
        # Every case is on one of the two (no third poller, identities read right), and
        # both took some: one that took every case would show a restart, not scaling out.
        assert sum(held.values()) == CASES, f"cases held by neither worker: {owner}"
        assert held[survivor.name] > 0, f"one worker took every case: {held}"

        done = 0
        gate = asyncio.Semaphore(IN_FLIGHT)
        time_to_kill = asyncio.Event()

        async def record(handle: WorkflowHandle[Any, Any]) -> None:
            nonlocal done
            async with gate:
                await _record_crime(handle)
            done += 1
            if done >= KILL_AFTER:
                time_to_kill.set()

        updates = [asyncio.create_task(record(h)) for h in handles]
        await asyncio.wait_for(time_to_kill.wait(), timeout=120)
        killed_at = asyncio.get_running_loop().time()
        victim.proc.send_signal(signal.SIGKILL)
        assert victim.proc.wait(timeout=10) == -signal.SIGKILL
        done_at_kill = done
        assert done_at_kill < CASES, "every case finished before the kill"

        await asyncio.wait_for(asyncio.gather(*updates), timeout=330)
        recovered_in = asyncio.get_running_loop().time() - killed_at

        for handle in handles:
            assert (await handle.query(CaseWorkflow.view)).stage == Stage.WITH_IMU
        ids = [h.id for h in handles]
        references = await db_pool.fetch(
            "SELECT workflow_id, count(*) AS n FROM case_references"
            " WHERE workflow_id = ANY($1) AND kind = 'crime' GROUP BY workflow_id",
            ids,
        )
        assert {r["workflow_id"]: r["n"] for r in references} == dict.fromkeys(ids, 1)
        # The crime-recorded letter follows the answer: one the killed worker was sending
        # waits out the notify activity's 3-minute start-to-close before the survivor
        # retries it, so allow for that after the last answer.

        async def letters_sent() -> list[Any]:
            rows = await db_pool.fetch(
                "SELECT workflow_id, count(*) AS n, bool_and(sent_at IS NOT NULL) AS sent"
                " FROM notifications WHERE workflow_id = ANY($1) AND purpose = 'crime-recorded'"
                " GROUP BY workflow_id",
                ids,
            )
            return rows if len(rows) == len(ids) and all(r["sent"] for r in rows) else []

        notices = await until(letters_sent, within=200, what="every crime-recorded letter sent")
        assert {r["workflow_id"]: r["n"] for r in notices} == dict.fromkeys(ids, 1)
        assert all(r["sent"] for r in notices), "a reporter was never told the reference"

        # The survivor finished cases the victim had started.
        taken_over = []
        for handle in handles:
            if owner[handle.id].startswith(victim.identity_prefix):
                later = await _identities(handle)
                if any(i.startswith(survivor.identity_prefix) for i in later):
                    taken_over.append(handle.id)
        assert taken_over, "no case moved from the killed worker to the survivor"
        assert survivor.proc.poll() is None, "the survivor died too"
        print(
            f"\n{CASES} cases; killed {victim.name} holding {held[victim.name]} of them after"
            f" {done_at_kill} updates; {survivor.name} finished {len(taken_over)} of its cases;"
            f" all done {recovered_in:.1f} s after the kill"
        )
    finally:
        for handle in handles:  # the cases wait months for the IMU: end them here
            try:
                await handle.terminate("test finished")
            except RPCError:
                pass


async def _record_crime(handle: WorkflowHandle[Any, Any]) -> None:
    """Record the crime, as a call handler would: retrying until the case says it is done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 300  # an email caught mid-send by the kill: 3 min
    while True:
        try:
            await handle.execute_update(
                CaseWorkflow.record_crime, RecordCrime(actor="handler-1", category="burglary")
            )
            return
        except (WorkflowUpdateFailedError, RPCError) as err:
            # A retry after the first attempt did land is refused by the validator: the
            # case has moved on. Anything else (the update lost with its worker) retries.
            view = await handle.query(CaseWorkflow.view)
            if view.stage == Stage.WITH_IMU:
                return
            if loop.time() > deadline:
                raise AssertionError(f"{handle.id} stuck at {view.stage}") from err
            await asyncio.sleep(0.5)


async def _identities(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Who completed each workflow task of the case, in order."""
    return [
        event.workflow_task_completed_event_attributes.identity
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]


async def _wait_for_pollers(client: Client, task_queue: str, workers: list[WorkerProcess]) -> None:
    """Until both workers poll the task queue (each has connected and checked its set-up)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        for worker in workers:
            if (code := worker.proc.poll()) is not None:
                raise AssertionError(f"{worker.name} exited with {code}")
        pollers = (await client.workflow_service.describe_task_queue(request)).pollers
        if all(any(p.identity.startswith(w.identity_prefix) for p in pollers) for w in workers):
            return
        if loop.time() > deadline:
            raise AssertionError(f"workers not polling: {[p.identity for p in pollers]}")
        await asyncio.sleep(0.2)
